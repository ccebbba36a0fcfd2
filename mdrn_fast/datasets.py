"""The standard image sets: where they live on disk, and fetching them from their original public repositories.

``datasets.json`` lists, for each set, the repository and commit it comes from and every file with its path
there, size and SHA-256 (the bytes of these files are the ones every published number was measured on).
``fetch`` downloads what is missing or wrong, resumes partial files, retries, verifies each checksum and only
then moves the file into place: a set on disk is either complete and verified or reported as incomplete.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

MANIFEST = json.loads(Path(__file__).with_name("datasets.json").read_text())
DEFAULT_URL = "https://raw.githubusercontent.com"  # files at <url>/<repo>/<commit>/<path>
URL_ENV = "MDRN_FAST_DATA_URL"  # another server with the same layout (a mirror; the tests' local server)
ROOT_ENV = "MDRN_FAST_DATA"
GIVE_UP_AFTER = 3  # files of a set failing in a row: the server or the network is down, the rest would too


class FetchError(ConnectionError):
    """Files could not be downloaded and verified; the message names each, its address and the last failure,
    and how to fix it."""


def default_root() -> Path:
    """$MDRN_FAST_DATA, else the per-user cache folder ($XDG_CACHE_HOME or ~/.cache)/mdrn_fast/data."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mdrn_fast" / "data"


def folder(name: str, root: str | os.PathLike | None = None, manifest: dict = MANIFEST) -> Path:
    return Path(root if root is not None else default_root()) / manifest[name]["folder"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def status(name: str, root=None, verify: bool = False, manifest: dict = MANIFEST) -> tuple[int, int]:
    """(files present, files in the set); ``verify`` also checks every checksum (slower)."""
    base, files = folder(name, root, manifest), manifest[name]["files"]
    ok = 0
    for fname, _, size, sha in files:
        p = base / fname
        if p.is_file() and p.stat().st_size == size and (not verify or _sha256(p) == sha):
            ok += 1
    return ok, len(files)


def fetch(names, root=None, base_url: str | None = None, retries: int = 3, timeout: float = 60,
          progress: bool = True, manifest: dict = MANIFEST, deadline: float = 900) -> list[Path]:
    """Download the sets ``names`` (all when empty) into ``root``; returns their folders. Files already there
    with the right checksum are kept; others are (re)downloaded, each within ``deadline`` seconds. A file that
    fails after ``retries`` attempts is reported at the end (FetchError) while the others go on; every verified
    file stays in place, and no empty folder is left behind."""
    names = list(names) or list(manifest)
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise KeyError(f"unknown image set(s) {unknown}; known: {', '.join(manifest)}")
    base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    root = Path(root if root is not None else default_root())
    folders, failures, untried = [], [], []  # untried: after GIVE_UP_AFTER failures in a row
    for name in names:
        entry, target = manifest[name], folder(name, root, manifest)
        todo = [f for f in entry["files"] if not _verified(target / f[0], f[2], f[3])]
        total = sum(f[2] for f in todo)
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"{name} ({len(todo)} files)",
                  disable=not progress or not todo) as bar:
            in_a_row = 0
            for i, (fname, path, size, sha) in enumerate(todo):
                if in_a_row == GIVE_UP_AFTER:
                    untried.append(f"{len(todo) - i} of {name}")
                    break
                url = f"{base_url}/{entry['repo']}/{entry['commit']}/{path}"
                target.mkdir(parents=True, exist_ok=True)
                try:
                    _download(url, target / fname, size, sha, retries, timeout, deadline, bar)
                except FetchError as e:
                    failures.append(f"{name}/{e}")
                    in_a_row += 1
                    continue
                in_a_row = 0
        _remove_if_empty(target, root)
        folders.append(target)
    if failures:
        shown = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
        if untried:
            shown += f"; not tried after {GIVE_UP_AFTER} failures in a row: {', '.join(untried)} file(s)"
        raise FetchError(f"{len(failures)} file(s) not fetched: {shown}. Check the network connection (and "
                         "HTTPS_PROXY where a proxy is needed) and run the command again (verified files are "
                         "kept), or place the files by hand as README's Data section lays out under "
                         f"{root}")
    return folders


def _remove_if_empty(path: Path, root: Path) -> None:
    """Remove ``path`` and its parents up to (not including) ``root`` while they are empty folders."""
    while path != root and root in path.parents and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        path = path.parent


def _verified(path: Path, size: int, sha: str) -> bool:
    return path.is_file() and path.stat().st_size == size and _sha256(path) == sha


def _download(url: str, dest: Path, size: int, sha: str, retries: int, timeout: float, deadline: float,
              bar) -> None:
    """url -> dest through dest's ".part" file: resumed with an HTTP Range request when a part exists, never
    more than ``size`` bytes taken, checked against ``sha``, fsynced, then renamed into place (atomic)."""
    part = dest.with_name(f".{dest.name}.part")
    last, counted = "no attempt", 0  # counted: this file's bytes the progress bar shows
    give_up = time.monotonic() + deadline
    for attempt in range(retries):
        if attempt:
            time.sleep(min(8.0, 0.5 * 2 ** attempt))
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        try:
            request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if have and response.status != 206:  # the server sent the whole file: start over
                    have = 0
                bar.update(have - counted)
                counted = have
                with open(part, "ab" if have else "wb") as f:
                    while block := response.read(min(1 << 16, size + 1 - have)):  # one byte past size says "too long"
                        f.write(block)
                        bar.update(len(block))
                        counted += len(block)
                        have += len(block)
                        if have > size or time.monotonic() > give_up:
                            break
                    f.flush()
                    os.fsync(f.fileno())
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code} {e.reason}"
            continue
        except OSError as e:
            if e.errno == errno.ENOSPC:
                part.unlink(missing_ok=True)
                raise OSError(errno.ENOSPC, "no space left on the disk (the partial file is removed)",
                              str(dest)) from None
            last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            continue  # the next attempt resumes from the part file
        got = part.stat().st_size
        if got > size:  # a server sending more than the manifest's size is not sending this file
            last = f"the server sent more than the {size} bytes expected"
            part.unlink()
            continue
        if time.monotonic() > give_up and got < size:
            raise FetchError(f"{dest.name}: {url} took longer than {deadline:g} s ({got} of {size} bytes; run "
                             "again to resume)")
        if got < size:  # the connection ended early: resume
            last = f"the transfer stopped at {got} of {size} bytes"
            continue
        if _sha256(part) == sha:
            os.replace(part, dest)
            return
        last = f"checksum mismatch ({got} bytes, {size} expected)"
        part.unlink()  # wrong bytes: never resume from them
    raise FetchError(f"{dest.name}: could not download {url} after {retries} attempts ({last})")
