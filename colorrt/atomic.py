"""Write-to-a-temporary-name-then-rename: every writer's way to never leave a half-written file.

The temporary file is hidden (``.name.<random>.tmp``) in the destination's own folder, so the final
``os.replace`` is a rename on one filesystem: readers see the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unused name beside ``path`` (same folder, so renaming it over ``path`` is atomic)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def replaced_when_done(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    Missing folders are created; on any error the temporary file is removed and ``path`` is untouched.
    ``suffix`` lets writers that choose a format by extension (ONNX, video muxers) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_name(path, suffix)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_with(path: str | os.PathLike[str], write: Callable[[BinaryIO], None], mode: int = 0o666) -> None:
    """Call ``write(handle)`` on a new temporary file, fsync it, then rename it over ``path``.

    ``mode`` goes through the umask as for any new file (0o666 gives the usual 0o644).
    """
    with replaced_when_done(path) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_with`)."""
    write_with(path, lambda handle: handle.write(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def replace_folder(staged: Path, target: Path) -> None:
    """Rename the complete folder ``staged`` onto ``target`` (same filesystem), replacing a folder there.

    The old folder is renamed aside first and removed afterwards (renamed back if the swap fails), so
    a reader polling ``target`` (a Triton server) never sees half of either: the old folder, the new
    one, or for an instant between the two renames none.
    """
    old = None
    if target.exists():
        old = temporary_name(target, ".old")
        os.rename(target, old)
    try:
        os.rename(staged, target)
    except BaseException:
        if old is not None and not target.exists():
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
