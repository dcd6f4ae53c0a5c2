"""Writing files safely: atomically, never through a link or over something that is not a regular file, never
over an input.

Every file the package writes goes through :func:`atomic_open`: a temporary file in the target folder, then a
rename, so a run killed mid-write leaves the previous file intact, never a truncated one. The rename would
replace whatever the name points at, so :func:`check_output` refuses first a target that is a symbolic link or
not a regular file (a device such as ``/dev/null``, a folder, a pipe): those are left as they are. Commands that
read inputs also pass them, and an output that is one of them (or lies inside an input folder) is refused.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import SkeletonMAEError


class OutputError(SkeletonMAEError):
    """An output path would destroy something: a device, a link, a folder, or an input."""


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """``path`` if writing it replaces at most a regular file that is none of ``inputs``; else OutputError."""
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(f"refusing to write {path}: it is a symbolic link (to {os.readlink(path)}); writing "
                              "would replace the link, not its target. Give the real path or another name.")
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
            raise OutputError(f"refusing to write {path}: it is {kind}, not a regular file; give a file name")
    target = path.resolve()
    for item in inputs:
        source = Path(item).resolve()
        if target == source or (source.is_dir() and source in target.parents):
            where = "is" if target == source else "lies inside"
            raise OutputError(f"refusing to write {path}: it {where} the input {item}; nothing was changed. "
                              "Write the output somewhere else.")
    return path


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", inputs: Iterable[str | os.PathLike] = ()) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename (:func:`check_output`
    first)."""
    path = check_output(path, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
