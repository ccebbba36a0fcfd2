"""Publishing a file atomically: written under a temporary name of its own beside the target, fsynced, then
renamed (or, when an existing file must not be replaced, hard-linked) into place.

The temporary name carries the process id and a random part, so that two processes writing one target never
share (and clobber) a temporary file; ``overwrite=False`` publishes with os.link, which fails when the target
exists, so that of two processes only one result lands and the other is told (FileExistsError).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


_UMASK = os.umask(0o022)  # read once (umask can only be read by setting it), then put back
os.umask(_UMASK)


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object], overwrite: bool = True) -> Path:
    """``write(tmp)`` writes the file's content to ``tmp``; then it is fsynced and published as ``path``
    (FileExistsError, and nothing published, when ``overwrite`` is False and ``path`` exists)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it (some writers make their files 0600)
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync(path.parent)  # the rename itself survives a crash
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
