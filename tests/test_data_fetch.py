"""`mdrn-fast data`: fetching image sets from a local HTTP server on 127.0.0.1 (never the network): checksums,
atomic files, resume of partial downloads, retries, and the errors that name what is missing."""
import functools
import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from mdrn_fast import datasets
from mdrn_fast.cli import main
from mdrn_fast.paths import dataset


class Server:
    """Serves a folder laid out as <repo>/<commit>/<path>, with HTTP Range support, counting requests and
    failing the first ``fail_first`` requests of each file (connection dropped mid-body)."""

    def __init__(self, root: Path, fail_first: int = 0, ignore_range: bool = False, pad: int = 0):
        self.root, self.fail_first, self.ignore_range, self.pad = root, fail_first, ignore_range, pad
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = server.root / self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes() + b"\0" * server.pad  # pad: a hostile mirror's endless file
                start = int(rng.split("=")[1].split("-")[0]) if rng and not server.ignore_range else 0
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if sum(p == self.path for p, _ in server.requests) <= server.fail_first:
                    self.wfile.write(body[: len(body) // 2])  # then drop the connection
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_set(tmp_path, n=3, size=5000):
    """A manifest with one set of n random files, and a server folder holding them."""
    served = tmp_path / "served" / "owner" / "repo" / "abc123" / "imgs"
    served.mkdir(parents=True)
    files = []
    for i in range(n):
        data = os.urandom(size + i)
        (served / f"{i}.png").write_bytes(data)
        files.append([f"{i}.png", f"imgs/{i}.png", len(data), hashlib.sha256(data).hexdigest()])
    manifest = {"Toy": {"folder": "test/Toy", "about": "a toy set", "repo": "owner/repo", "commit": "abc123",
                        "files": files}}
    return manifest, tmp_path / "served"


@pytest.fixture
def toy(tmp_path):
    manifest, served = make_set(tmp_path)
    server = Server(served)
    yield manifest, server, tmp_path / "data"
    server.close()


def test_fetch_downloads_verifies_and_then_has_nothing_to_do(toy):
    manifest, server, root = toy
    (folder,) = datasets.fetch(["Toy"], root, base_url=server.url, manifest=manifest, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.png", "2.png"]
    assert datasets.status("Toy", root, verify=True, manifest=manifest) == (3, 3)
    n = len(server.requests)
    datasets.fetch(["Toy"], root, base_url=server.url, manifest=manifest, progress=False)
    assert len(server.requests) == n, "verified files are not downloaded again"


def test_a_corrupt_file_is_replaced(toy):
    manifest, server, root = toy
    datasets.fetch(["Toy"], root, base_url=server.url, manifest=manifest, progress=False)
    bad = root / "test" / "Toy" / "1.png"
    bad.write_bytes(b"x" * bad.stat().st_size)
    assert datasets.status("Toy", root, verify=True, manifest=manifest) == (2, 3)
    datasets.fetch(["Toy"], root, base_url=server.url, manifest=manifest, progress=False)
    assert datasets.status("Toy", root, verify=True, manifest=manifest) == (3, 3)


def test_dropped_connections_are_retried_and_resumed_with_range(tmp_path):
    manifest, served = make_set(tmp_path, n=2, size=200_000)
    server = Server(served, fail_first=1)
    try:
        datasets.fetch(["Toy"], tmp_path / "d", base_url=server.url, manifest=manifest, progress=False)
    finally:
        server.close()
    assert datasets.status("Toy", tmp_path / "d", verify=True, manifest=manifest) == (2, 2)
    resumed = [r for _, r in server.requests if r]
    assert resumed and all(r.startswith("bytes=") and r != "bytes=0-" for r in resumed), server.requests


def test_a_server_that_ignores_range_still_gives_the_right_file(tmp_path):
    manifest, served = make_set(tmp_path, n=1, size=100_000)
    server = Server(served, fail_first=1, ignore_range=True)
    try:
        datasets.fetch(["Toy"], tmp_path / "d", base_url=server.url, manifest=manifest, progress=False)
    finally:
        server.close()
    assert datasets.status("Toy", tmp_path / "d", verify=True, manifest=manifest) == (1, 1)


def test_missing_file_fails_after_retries_and_keeps_the_others(toy):
    manifest, server, root = toy
    (server.root / "owner" / "repo" / "abc123" / "imgs" / "2.png").unlink()
    with pytest.raises(datasets.FetchError, match=r"2.png: could not download .* after 2 attempts .*404"):
        datasets.fetch(["Toy"], root, base_url=server.url, manifest=manifest, progress=False, retries=2)
    assert datasets.status("Toy", root, manifest=manifest) == (2, 3)
    assert not list((root / "test" / "Toy").glob("2.png")), "nothing unverified is left under the real name"


def test_the_shipped_manifest_names_every_standard_set():
    assert set(datasets.MANIFEST) == {"Set12", "BSD68", "CBSD68", "Train400", "BSDS200", "BSD432"}
    counts = {name: len(e["files"]) for name, e in datasets.MANIFEST.items()}
    assert counts == {"Set12": 12, "BSD68": 68, "CBSD68": 68, "Train400": 400, "BSDS200": 200, "BSD432": 432}
    for e in datasets.MANIFEST.values():
        assert len(e["commit"]) == 40 and all(len(f[3]) == 64 for f in e["files"])


def _real_set12():
    src = Path(os.environ.get("MDRN_FAST_DATA", "/nonexistent")) / "test" / "Set12"
    if not src.is_dir():
        pytest.skip("MDRN_FAST_DATA has no test/Set12 to serve as a mirror of the original repository")
    return src


def test_cli_fetches_the_real_set12_manifest_from_a_mirror(tmp_path, monkeypatch, capsys):
    """The shipped checksums match the standard Set12 files, fetched through the command line."""
    src = _real_set12()
    entry = datasets.MANIFEST["Set12"]
    for name, path, _, _ in entry["files"]:
        dest = tmp_path / "mirror" / entry["repo"] / entry["commit"] / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((src / name).read_bytes())
    server = Server(tmp_path / "mirror")
    monkeypatch.setenv(datasets.URL_ENV, server.url)
    monkeypatch.setenv(datasets.ROOT_ENV, str(tmp_path / "data"))
    try:
        assert main(["data", "fetch", "Set12"]) == 0
    finally:
        server.close()
    assert len(dataset("Set12")) == 12
    assert main(["data", "list", "--verify"]) == 0
    assert "| Set12 | 12 | 1.2 | yes |" in capsys.readouterr().out


def test_missing_set_error_says_how_to_fetch_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(datasets.ROOT_ENV, str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="mdrn-fast data fetch BSD68"):
        dataset("BSD68")
    assert main(["eval", "--set", "BSD68"]) == 2
    err = capsys.readouterr().err
    assert "mdrn-fast data fetch BSD68" in err and err.count("\n") == 1


def test_unknown_set_is_a_usage_error(capsys):
    assert main(["data", "fetch", "Set13"]) == 2
    assert "unknown set(s) Set13" in capsys.readouterr().err


def test_default_root_is_a_per_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.ROOT_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets.default_root() == tmp_path / "mdrn_fast" / "data"
    assert json.dumps(str(datasets.default_root())).count("shared") == 0


def test_a_failed_file_does_not_stop_the_others_and_the_error_says_the_fix(toy):
    manifest, server, root = toy
    (server.root / "owner" / "repo" / "abc123" / "imgs" / "0.png").unlink()
    with pytest.raises(datasets.FetchError) as caught:
        datasets.fetch(["Toy"], root, base_url=server.url, manifest=manifest, progress=False, retries=1)
    assert datasets.status("Toy", root, manifest=manifest) == (2, 3), "the files after the failed one are fetched"
    text = str(caught.value)
    assert "1 file(s) not fetched: Toy/0.png" in text and "Check the network" in text and "by hand" in text


def test_offline_fetch_leaves_no_empty_folder_and_says_the_fix(tmp_path, monkeypatch, capsys):
    manifest, _ = make_set(tmp_path)
    monkeypatch.setattr(datasets, "MANIFEST", manifest)
    monkeypatch.setattr(datasets, "fetch", functools.partial(datasets.fetch, manifest=manifest, retries=1))
    server = Server(tmp_path / "nothing")
    url = server.url
    server.close()  # nothing listens there now: as offline
    monkeypatch.setenv(datasets.URL_ENV, url)
    assert main(["data", "fetch", "Toy", "--data", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert err.startswith("mdrn-fast data: error: 3 file(s) not fetched") and "Traceback" not in err
    assert "Check the network" in err and "README" in err, err
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*")), "no empty folder is left"


def test_a_server_sending_more_than_the_manifest_size_is_cut_off(tmp_path):
    manifest, served = make_set(tmp_path, n=1, size=1000)
    server = Server(served, pad=10_000_000)
    try:
        with pytest.raises(datasets.FetchError, match="sent more than the 1000 bytes expected"):
            datasets.fetch(["Toy"], tmp_path / "d", base_url=server.url, manifest=manifest, progress=False,
                           retries=1)
    finally:
        server.close()
    assert not list((tmp_path / "d").rglob("*.part")), "nothing of it is kept"


def test_a_download_past_its_deadline_stops_and_keeps_its_part(tmp_path):
    manifest, served = make_set(tmp_path, n=1, size=100_000)
    server = Server(served)
    try:
        with pytest.raises(datasets.FetchError, match="took longer than 0 s"):
            datasets.fetch(["Toy"], tmp_path / "d", base_url=server.url, manifest=manifest, progress=False,
                           deadline=0)
    finally:
        server.close()


def test_a_set_whose_files_all_fail_stops_after_three(tmp_path):
    manifest, served = make_set(tmp_path, n=6, size=100)
    server = Server(tmp_path / "elsewhere")  # serves nothing: every file is a 404
    try:
        with pytest.raises(datasets.FetchError, match=r"3 file\(s\) not fetched: .*not tried after 3 failures in a row: 3 of Toy file\(s\)"):
            datasets.fetch(["Toy"], tmp_path / "d", base_url=server.url, manifest=manifest, progress=False,
                           retries=1)
    finally:
        server.close()
    assert len(server.requests) == 3
