"""Zip members as colorrt can trust them: safe names, sane sizes, and raw copies of unreadable ones.

A CBZ is a zip archive, and zip member names are whatever the tool that wrote them put there:
``../../evil.png``, ``/abs/path.png``, ``C:\\x.png``. :func:`safe_names` turns every name into a
relative POSIX path inside the archive root (renaming on collision), so an output archive never
hands an unsafe name on to the next tool. :func:`check_archive_size` refuses archives whose
declared contents are absurd (zip bombs) before anything is decompressed: zipfile never inflates
a member beyond its declared size, so the declared sizes bound what reading can cost.
:func:`copy_raw_member` copies a member's stored bytes (compressed, maybe encrypted) unchanged into
another archive: a page that cannot be read is carried through instead of dropped.
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from colorrt.errors import InputError

# Zip-bomb limits. A comic archive holds at most a few thousand pages of a few to a few dozen MB each,
# and page images are compressed already (a zip rarely shrinks them 2x; an uncompressed BMP/TIFF page
# 5-20x). DEFLATE tops out near 1032:1, which is what bombs use; no real page is 256 MiB.
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 16 * 2**30  # declared uncompressed size of all members together
MAX_RATIO = 200  # uncompressed / compressed, checked for members over BIG_MEMBER_BYTES
BIG_MEMBER_BYTES = 256 * 2**20

_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header (30 bytes)
_DATA_DESCRIPTOR = struct.Struct("<4sLLL")
_DATA_DESCRIPTOR_64 = struct.Struct("<4sLQQ")
_USES_DATA_DESCRIPTOR = 0x08  # general-purpose flag bit 3: CRC and sizes follow the data


def safe_name(name: str) -> str:
    """``name`` as a relative POSIX path inside the archive root (folders keep their final ``/``).

    Backslashes count as separators, drive letters and leading slashes are dropped, ``.`` parts
    vanish and a ``..`` removes the part before it (never climbing above the root). A folder entry
    that names the root itself becomes ``""`` (nothing to write).
    """
    posix = name.replace("\\", "/")
    posix = _DRIVE.sub("", posix)
    parts: list[str] = []
    for part in posix.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    if name.endswith(("/", "\\")):
        return "/".join(parts) + "/" if parts else ""  # "": a folder entry for the root itself
    return "/".join(parts) or "unnamed"


def safe_names(names: Iterable[str]) -> list[str]:
    """:func:`safe_name` of each name, in order, made unique: ``p.png``, ``p (2).png``, ...

    Names that are already safe keep them; a rewritten or repeated name that would take one that is
    in use gets the first free ``(n)`` before its suffix.
    """
    names = list(names)
    wanted = [safe_name(n) for n in names]
    taken = {s for n, s in zip(names, wanted, strict=True) if n == s}
    result, given = [], set()
    for name, safe in zip(names, wanted, strict=True):
        if not safe or (name == safe and safe not in given):
            given.add(safe)
            result.append(safe)
            continue
        candidate, number = safe, 2
        while candidate in taken or candidate in given:
            candidate = _numbered(safe, number)
            number += 1
        given.add(candidate)
        result.append(candidate)
    return result


def _numbered(name: str, number: int) -> str:
    folder = name.endswith("/")
    path = PurePosixPath(name.rstrip("/"))
    numbered = str(path.with_name(f"{path.stem} ({number}){path.suffix}"))
    return f"{numbered}/" if folder else numbered


def check_archive_size(infos: list[zipfile.ZipInfo], path: Path) -> None:
    """Refuse an archive whose member count or declared sizes are absurd (a zip bomb)."""
    hint = "if the archive is genuine, unpack it with a tool you trust and pass the folder of pages"
    if len(infos) > MAX_MEMBERS:
        raise InputError(
            f"refusing {path}: it holds {len(infos)} members (limit {MAX_MEMBERS}); it looks like a zip bomb",
            hint,
        )
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise InputError(
            f"refusing {path}: its members unpack to {total / 2**30:.1f} GiB "
            f"(limit {MAX_TOTAL_BYTES // 2**30} GiB); it looks like a zip bomb",
            hint,
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > BIG_MEMBER_BYTES and ratio > MAX_RATIO:
            raise InputError(
                f"refusing {path}: member {info.filename!r} unpacks {ratio:.0f}x to "
                f"{info.file_size / 2**20:.0f} MiB (limit {MAX_RATIO}x for members over "
                f"{BIG_MEMBER_BYTES // 2**20} MiB); it looks like a zip bomb",
                hint,
            )


def read_raw_member(path: Path, info: zipfile.ZipInfo) -> bytes:
    """A member's stored bytes as they are in the file (compressed, maybe encrypted)."""
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
        if header[0] != b"PK\x03\x04":
            raise InputError(f"{info.filename!r}: no local header where the archive's directory says")
        handle.seek(header[10] + header[11], 1)  # the local copy of the name and the extra field
        data = handle.read(info.compress_size)
    if len(data) != info.compress_size:
        raise InputError(f"{info.filename!r}: the archive ends inside the member")
    return data


def copy_raw_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, data: bytes) -> None:
    """Append a member to ``archive`` (open for writing) as ``name`` with ``info``'s stored ``data``.

    Used for members zipfile cannot read (damaged, encrypted, Deflate64 ...): their bytes go
    through unchanged, with the CRC, sizes, method and flags of the original. zipfile has no public
    API for this, so the member is written the way ``ZipFile.writestr`` writes one.
    """
    copy = zipfile.ZipInfo(name, date_time=info.date_time)
    for field in ("compress_type", "CRC", "compress_size", "file_size", "flag_bits", "external_attr"):
        setattr(copy, field, getattr(info, field))
    copy.create_system, copy.extra = info.create_system, _without_zip64(info.extra)
    zip64 = max(copy.file_size, copy.compress_size) > zipfile.ZIP64_LIMIT
    with archive._lock:  # type: ignore[attr-defined]  # zipfile's own write lock
        archive.fp.seek(archive.start_dir)  # type: ignore[union-attr]
        copy.header_offset = archive.fp.tell()  # type: ignore[union-attr]
        archive.fp.write(copy.FileHeader(zip64))  # type: ignore[union-attr]
        archive.fp.write(data)  # type: ignore[union-attr]
        if copy.flag_bits & _USES_DATA_DESCRIPTOR:  # an encrypted member's check byte depends on it
            layout = _DATA_DESCRIPTOR_64 if zip64 else _DATA_DESCRIPTOR
            archive.fp.write(layout.pack(b"PK\x07\x08", copy.CRC, copy.compress_size, copy.file_size))  # type: ignore[union-attr]
        archive.start_dir = archive.fp.tell()  # type: ignore[union-attr]
        archive.filelist.append(copy)
        archive.NameToInfo[name] = copy
        archive._didModify = True  # type: ignore[attr-defined]


def _without_zip64(extra: bytes) -> bytes:
    """The extra field less its zip64 record (FileHeader writes a fresh one when it is needed)."""
    kept, at = b"", 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack("<HH", extra[at : at + 4])
        if kind != 0x0001:
            kept += extra[at : at + 4 + size]
        at += 4 + size
    return kept
