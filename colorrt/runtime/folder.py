"""Folder runs: which files of a folder are colorized into which outputs, and the report of a run.

:func:`plan_folder` pairs every image under the input folder with its output (same relative name;
the suffix changed by ``format``), leaves out what is not an image (listed by name, with why) and,
with ``resume``, the images whose output is already there (counted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from colorrt.errors import InputError
from colorrt.io.archive import output_name
from colorrt.io.images import list_images
from colorrt.io.video import VIDEO_SUFFIXES


@dataclass
class BatchReport:
    """Outcome of a folder run: images written, images that failed (with why), files left out."""

    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # not images (videos, ...), with why
    kept: int = 0  # images whose output was already there (resume), not colorized again

    @property
    def total(self) -> int:
        """Images attempted."""
        return self.done + len(self.failed)

    @property
    def ok(self) -> bool:
        """True when every image was written."""
        return not self.failed

    def summary(self, output: str | os.PathLike[str]) -> str:
        """One line for people: counts, speed and destination."""
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        line = f"colorized {self.done} of {self.total} images into {output} ({rate:.1f} images/s)"
        if self.kept:
            line += f"; {self.kept} already done, kept (--resume)"
        if self.skipped:
            line += f"; {len(self.skipped)} other file(s) skipped"
        if self.failed:
            line += f"; {len(self.failed)} failed"
        return line


@dataclass
class FolderPlan:
    """What a folder run does: the ``(input, output)`` pairs to colorize, every input image (resolved,
    so no output overwrites one) and the report, already holding what is left out."""

    pairs: list[tuple[Path, Path]]
    inputs: set[Path]
    report: BatchReport


def plan_folder(
    src_dir: Path, dst_dir: Path, *, format: str | None = None, resume: bool = False
) -> FolderPlan:
    """Pair the images under ``src_dir`` with their outputs in ``dst_dir`` (same relative names).

    ``format`` (``"png"``, ...) replaces every output's suffix. Non-image files are listed in
    ``report.skipped``; with ``resume``, images whose output file exists (outputs are renamed into
    place only when whole) are counted in ``report.kept``; two inputs that would write one output
    (``a.jpg`` and ``a.png`` with ``format="png"``) are listed as failed, the first is colorized.
    """
    files = images_outside(src_dir, dst_dir)
    plan = FolderPlan([], {(src_dir / f).resolve() for f in files}, BatchReport())
    plan.report.skipped = _other_files(src_dir, dst_dir, files)
    claimed: dict[Path, Path] = {}
    for name in files:
        src, dst = src_dir / name, dst_dir / output_name(name.as_posix(), format)
        if dst in claimed:
            why = f"its output {dst} is also the output of {claimed[dst]}; rename one of them"
            plan.report.failed.append((src, why))
            continue
        claimed[dst] = src
        if resume and dst.is_file() and dst.stat().st_size > 0:
            plan.report.kept += 1
        else:
            plan.pairs.append((src, dst))
    return plan


def check_distinct(src: Path, dst: Path) -> None:
    """Refuse a missing source, or a destination that is the source itself."""
    if not src.exists():
        raise InputError(f"no such file or folder: {src}", "check the path")
    if dst.exists() and os.path.samefile(src, dst):
        raise InputError(
            f"output {dst} is the input itself", "write to another path: inputs are never modified"
        )


def images_outside(src_dir: Path, dst_dir: Path) -> list[Path]:
    """Images under src_dir, leaving out an output folder nested inside it."""
    if not src_dir.is_dir():
        raise InputError(f"not a folder: {src_dir}", "pass a folder of images, or a single image file")
    nested = _nested(src_dir, dst_dir)
    files = [f for f in list_images(src_dir) if not _inside(f, nested)]
    if not files:
        raise InputError(f"no image files in {src_dir}", "supported suffixes: .png, .jpg, .tif, .webp, ...")
    return files


def _other_files(src_dir: Path, dst_dir: Path, images: list[Path]) -> list[tuple[Path, str]]:
    """Visible files under ``src_dir`` that are not images (outside a nested output), with why."""
    nested, known = _nested(src_dir, dst_dir), set(images)
    others = []
    for root, dirs, names in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = Path(root).relative_to(src_dir)
        for name in sorted(names):
            path = relative / name
            if name.startswith(".") or path in known or _inside(path, nested):
                continue
            if path.suffix.lower() in VIDEO_SUFFIXES:
                why = f"a video: colorize it on its own (colorrt colorize {src_dir / path} -o film.mp4)"
            else:
                why = "not an image file"
            others.append((src_dir / path, why))
    return others


def _nested(src_dir: Path, dst_dir: Path) -> Path | None:
    """The output folder relative to the input folder, when it lies inside it."""
    try:
        nested = dst_dir.resolve().relative_to(src_dir.resolve())
    except ValueError:
        return None
    return nested if nested.parts else None


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.parts[: len(folder.parts)] == folder.parts
