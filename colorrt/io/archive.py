"""Where pages come from and go to: a folder of images, a CBZ (zip) archive or a single page.

Sources list their entries in order; sinks write them with the same names (a format change swaps
only the suffix). A CBZ keeps every member in its original order: images are replaced by their
colorized version, everything else (``ComicInfo.xml``, folders) is copied byte for byte. A CBZ is
written to a temporary file next to the destination and renamed over it at the end, so the
destination is either the old file or the complete new one; folder pages are each written atomically.
"""

from __future__ import annotations

import lzma
import os
import warnings
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from colorrt.atomic import temporary_name
from colorrt.atomic import write_bytes as atomic_write_bytes
from colorrt.errors import InputError
from colorrt.io.images import IMAGE_SUFFIXES, decode_image, encode_image, format_for, list_images, write_image
from colorrt.io.zipmembers import check_archive_size, copy_raw_member, read_raw_member, safe_names

ARCHIVE_SUFFIXES = frozenset({".cbz", ".zip"})


class ArchiveNameWarning(UserWarning):
    """An archive member's stored name was unsafe (absolute, a drive, ``..``) and was rewritten."""

    noun = "unsafe archive member names rewritten"


class UnreadableMemberError(InputError):
    """An archive member's bytes cannot be read (damaged, encrypted, unsupported compression)."""


# What a damaged member raises while it is decompressed (zlib and lzma errors are not OSErrors).
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class Entry:
    """One item of a source: its relative POSIX name, and whether it is a page to colorize."""

    name: str
    is_image: bool


def is_page_name(name: str) -> bool:
    """True for an image file name that is a page (not hidden, not macOS resource-fork clutter)."""
    path = PurePosixPath(name)
    if any((part.startswith(".") and part != "..") or part == "__MACOSX" for part in path.parts):
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES


def output_name(name: str, format: str | None) -> str:
    """``name`` with its suffix replaced by ``format`` (``"png"``, ``".jpg"``, ...); unchanged for None."""
    if not format:
        return name
    suffix = format.lower() if format.startswith(".") else f".{format.lower()}"
    format_for(f"page{suffix}")  # unknown or unwritable formats fail here, listing the choices
    return str(PurePosixPath(name).with_suffix(suffix))


# ----------------------------------------------------------------------------------------------- sources


class PageSource(ABC):
    """Entries of a page source, in order, and their contents. A context manager."""

    kind: str
    entries: list[Entry]

    @abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """The raw bytes of an entry."""

    def read_image(self, name: str) -> np.ndarray:
        """An entry decoded as an image array (InputError when it is not a readable image)."""
        return decode_image(self.read_bytes(name), name)

    def close(self) -> None:  # noqa: B027  # only archives hold an open file
        """Release the source."""

    def __enter__(self) -> PageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderSource(PageSource):
    """Every image file under a folder (recursive, sorted, hidden files left out)."""

    kind = "folder"

    def __init__(self, root: Path, exclude: Path | None = None) -> None:
        self.root = root
        files = list_images(root)
        if exclude is not None:
            files = [f for f in files if not _is_within(root / f, exclude)]
        self.entries = [Entry(f.as_posix(), True) for f in files]

    def read_bytes(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def read_image(self, name: str) -> np.ndarray:
        from colorrt.io.images import read_image

        return read_image(self.root / name)


class ArchiveSource(PageSource):
    """Every member of a CBZ / zip archive, in archive order, under a safe name.

    Member names are made relative paths inside the archive (``../x.png``, ``/x.png``, ``C:\\x.png``
    rewritten, collisions numbered): :attr:`renamed` lists ``(stored name, name used)`` pairs, each
    also issued as an :class:`ArchiveNameWarning`. Archives with absurd declared contents (zip
    bombs) are refused before anything is read (:func:`~colorrt.io.zipmembers.check_archive_size`).
    """

    kind = "archive"

    def __init__(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise InputError(f"{path} is not a readable CBZ/zip archive: {e}", "check the file") from e
        self.path = path
        members = self.zip.infolist()
        try:
            check_archive_size(members, path)
        except InputError:
            self.zip.close()
            raise
        names = safe_names(info.filename for info in members)
        self.infos = {name: info for name, info in zip(names, members, strict=True) if name}
        self.entries = [Entry(n, not i.is_dir() and is_page_name(n)) for n, i in self.infos.items()]
        self.renamed = [(i.filename, n) for n, i in zip(names, members, strict=True) if n != i.filename]
        for stored, used in self.renamed:
            where = f"written as {used!r}" if used else "left out (it names the archive root)"
            warnings.warn(f"{path.name}: unsafe member name {stored!r} {where}", ArchiveNameWarning, 2)

    def read_bytes(self, name: str) -> bytes:
        info = self.infos[name]
        if info.flag_bits & 0x1:
            raise UnreadableMemberError(
                f"cannot read {name} from the archive: the member is encrypted",
                "repack the archive without a password",
            )
        try:
            return self.zip.read(info)
        except NotImplementedError as e:  # a compression method zipfile lacks (Deflate64, PPMd, ...)
            raise UnreadableMemberError(
                f"cannot read {name} from the archive: {e} (method {info.compress_type})",
                "repack the archive with deflate or no compression",
            ) from e
        except (*_DAMAGED, zipfile.LargeZipFile) as e:
            raise UnreadableMemberError(
                f"cannot read {name} from the archive: {e}", "the archive is damaged"
            ) from e

    def read_stored(self, name: str) -> tuple[zipfile.ZipInfo, bytes]:
        """A member's directory record and stored bytes (compressed, maybe encrypted), unread."""
        info = self.infos[name]
        return info, read_raw_member(self.path, info)

    def close(self) -> None:
        self.zip.close()


class FileSource(PageSource):
    """A single page file."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries = [Entry(path.name, True)]

    def read_bytes(self, name: str) -> bytes:
        return self.path.read_bytes()

    def read_image(self, name: str) -> np.ndarray:
        from colorrt.io.images import read_image

        return read_image(self.path)


def open_source(path: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None) -> PageSource:
    """A folder, a ``.cbz`` / ``.zip`` archive or an image file; ``exclude`` leaves out a folder
    nested in a source folder (an output folder written inside its input)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}", "check the path")
    if path.is_dir():
        return FolderSource(path, Path(exclude) if exclude is not None else None)
    if path.suffix.lower() in ARCHIVE_SUFFIXES or zipfile.is_zipfile(path):
        return ArchiveSource(path)
    return FileSource(path)


# ------------------------------------------------------------------------------------------------- sinks


class PageSink(ABC):
    """Where pages are written; ``commit`` makes the output appear (or complete), ``abort`` drops it."""

    kind: str

    @abstractmethod
    def write_image(self, name: str, image: np.ndarray, source_name: str | None = None) -> None:
        """Write a page under ``name`` (format from its suffix); ``source_name``: the entry it came from."""

    @abstractmethod
    def write_bytes(self, name: str, data: bytes, source_name: str | None = None) -> None:
        """Write an entry's bytes unchanged under ``name``."""

    def write_stored(self, name: str, info: zipfile.ZipInfo, data: bytes) -> None:
        """Copy an archive member's stored bytes (see :meth:`ArchiveSource.read_stored`) unchanged."""
        raise InputError(f"cannot copy {name} as stored in its archive into a {self.kind}")

    def write_dir(self, name: str) -> None:  # noqa: B027  # only archives record folders
        """Record a folder entry (archives only)."""

    def commit(self) -> None:  # noqa: B027  # folders and files are complete as they are written
        """Finish the output."""

    def abort(self) -> None:  # noqa: B027
        """Drop an unfinished output."""


class FolderSink(PageSink):
    """Pages written under a folder with their relative names, each atomically."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        return self.root / _safe_relative(name)

    def write_image(self, name: str, image: np.ndarray, source_name: str | None = None) -> None:
        write_image(self._path(name), image)

    def write_bytes(self, name: str, data: bytes, source_name: str | None = None) -> None:
        atomic_write_bytes(self._path(name), data)


class FileSink(FolderSink):
    """One page written to exactly ``path``."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        super().__init__(path.parent)
        self.path = path

    def _path(self, name: str) -> Path:
        return self.path


class ArchiveSink(PageSink):
    """A CBZ written to a temporary file beside the destination, renamed over it by ``commit``.

    Image members are stored uncompressed (they are compressed already), other members keep their
    original compression and dates when a source archive gives them.
    """

    kind = "archive"

    def __init__(self, path: Path, infos: dict[str, zipfile.ZipInfo] | None = None) -> None:
        self.path = path
        self.infos = infos or {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = temporary_name(path)
        self.zip = zipfile.ZipFile(self.temp, "w", zipfile.ZIP_STORED)
        self.names: set[str] = set()

    def _info(self, name: str, source_name: str | None, compress: int | None) -> zipfile.ZipInfo:
        original = self.infos.get(source_name or name)
        info = zipfile.ZipInfo(name, date_time=original.date_time if original else _now())
        info.compress_type = compress if compress is not None else (original.compress_type if original else 0)
        info.external_attr = original.external_attr if original else 0o644 << 16
        return info

    def write_image(self, name: str, image: np.ndarray, source_name: str | None = None) -> None:
        self._write(self._info(name, source_name, zipfile.ZIP_STORED), encode_image(image, name))

    def write_bytes(self, name: str, data: bytes, source_name: str | None = None) -> None:
        self._write(self._info(name, source_name, None), data)

    def write_dir(self, name: str) -> None:
        self._write(self._info(name, name, None), b"")

    def write_stored(self, name: str, info: zipfile.ZipInfo, data: bytes) -> None:
        self._claim(name)
        copy_raw_member(self.zip, info, name, data)

    def _write(self, info: zipfile.ZipInfo, data: bytes) -> None:
        self._claim(info.filename)
        self.zip.writestr(info, data)

    def _claim(self, name: str) -> None:
        if name in self.names:
            raise InputError(f"two pages would both be written as {name} in {self.path}")
        self.names.add(name)

    def commit(self) -> None:
        self.zip.close()
        with open(self.temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        self.zip.close()
        self.temp.unlink(missing_ok=True)


def open_sink(path: str | os.PathLike[str], source: PageSource) -> PageSink:
    """The sink for a destination: ``.cbz`` / ``.zip`` → archive; an image suffix (single-page
    source only) → that file; anything else → a folder."""
    path = Path(path)
    if path.suffix.lower() in ARCHIVE_SUFFIXES:
        infos = source.infos if isinstance(source, ArchiveSource) else None
        return ArchiveSink(path, infos)
    if path.suffix.lower() in IMAGE_SUFFIXES and not path.is_dir():
        if source.kind != "file":
            raise InputError(
                f"cannot write the pages of a {source.kind} into one image file {path}",
                "pass a folder or a .cbz as the output",
            )
        return FileSink(path)
    if path.exists() and not path.is_dir():
        raise InputError(
            f"output {path} exists and is not a folder", "pass a folder, a .cbz or an image path"
        )
    return FolderSink(path)


def _safe_relative(name: str) -> Path:
    """A member name as a relative path that stays inside the output folder (zip-slip guard)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise InputError(f"refusing to write {name!r} outside the output folder", "the archive is malformed")
    return Path(*path.parts)


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _now() -> tuple[int, int, int, int, int, int]:
    import time

    return time.localtime()[:6]


def same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when both paths name the same existing file or folder."""
    try:
        return Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


__all__ = [
    "ARCHIVE_SUFFIXES",
    "ArchiveNameWarning",
    "ArchiveSink",
    "ArchiveSource",
    "Entry",
    "FileSink",
    "FileSource",
    "FolderSink",
    "FolderSource",
    "PageSink",
    "PageSource",
    "UnreadableMemberError",
    "decode_image",
    "encode_image",
    "is_page_name",
    "open_sink",
    "open_source",
    "output_name",
    "same_path",
]
