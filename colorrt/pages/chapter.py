"""Chapters: a folder of pages, a CBZ archive or a single page in; the same names and structure out.

:func:`colorize_pages` reads the pages of a source (:mod:`colorrt.io.archive`), colorizes them with a
:class:`~colorrt.pages.colorize.PageColorizer` and writes each finished page in its original place
among the source's other entries (``ComicInfo.xml``, folders), which are copied unchanged.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.engines.base import Engine
from colorrt.errors import ColorRTError, InputError
from colorrt.io.archive import (
    ARCHIVE_SUFFIXES,
    PageSink,
    PageSource,
    UnreadableMemberError,
    open_sink,
    open_source,
    output_name,
    same_path,
)
from colorrt.pages.colorize import PageColorizer, PageOptions, PageResult
from colorrt.pages.palette import DEFAULT_REFERENCE_STRENGTH, Palette, load_reference, model_palette
from colorrt.pages.panels import PanelConfig


@dataclass
class PageReport:
    """Outcome of :func:`colorize_pages`: which pages were colorized, passed through or failed (why)."""

    source: Path
    output: Path
    colorized: list[str] = field(default_factory=list)
    passed_through: list[str] = field(default_factory=list)  # already in colour, copied unchanged
    failed: list[tuple[str, str]] = field(default_factory=list)  # (page name, error message)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # undecodable, copied: (name, why)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # unsafe archive names: (stored, used)
    copied: int = 0  # non-page archive members (ComicInfo.xml, folders) copied unchanged
    panels: int = 0
    seconds: float = 0.0
    reference: str = ""  # "model": fed to the model as its palette input; "recolour": palette transfer

    @property
    def pages(self) -> int:
        """Pages attempted."""
        return len(self.colorized) + len(self.passed_through) + len(self.unchanged) + len(self.failed)

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every page was colorized (or passed through, already in colour)."""
        return not self.failed and not self.unchanged

    def summary(self) -> str:
        """One line for people: counts, speed, destination."""
        line = (
            f"colorized {len(self.colorized)} of {self.pages} pages ({self.panels} panels) into {self.output}"
            f" in {self.seconds:.1f} s ({self.pages_per_second:.2f} pages/s)"
        )
        if self.passed_through:
            line += f"; {len(self.passed_through)} already in colour, copied (use --force to recolour)"
        if self.unchanged:
            line += f"; {len(self.unchanged)} could not be read or decoded, copied unchanged"
        if self.renamed:
            line += f"; {len(self.renamed)} unsafe member names rewritten"
        if self.reference == "model":
            line += "; the reference went into the model as its colour palette"
        elif self.reference == "recolour":
            line += "; the model's colours recoloured towards the reference (palette transfer)"
        if self.failed:
            line += f"; {len(self.failed)} failed"
        return line


def colorize_pages(
    runtime: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    reference: str | os.PathLike[str] | np.ndarray | Palette | None = None,
    rtl: bool = False,
    force: bool = False,
    format: str | None = None,
    progress: bool = True,
    batch_size: int | None = None,
    across_pages: bool = True,
    reference_strength: float = DEFAULT_REFERENCE_STRENGTH,
    panel_config: PanelConfig | None = None,
) -> PageReport:
    """Colorize a chapter: a folder of pages, a CBZ archive or a single page, into ``dst``.

    The output keeps the source's names, order and structure (``dst`` ending in ``.cbz``/``.zip`` is
    an archive, an image suffix a single page, anything else a folder); pages keep their formats
    unless ``format`` (``"png"``, ``"jpg"``, ...) says otherwise. Archives are written atomically, folder
    pages each atomically. Pages that cannot be read or decoded are copied unchanged (listed in
    ``PageReport.unchanged``), those that cannot be colorized or written are skipped (``failed``).

    Args:
        runtime: a :class:`colorrt.Runtime` (its ``engine``, ``batch_size``, ``contract`` at its
            ``render_size`` and chroma ``strength`` are used) or an Engine.
        src: the pages.
        dst: where the colorized pages go (never the source itself).
        reference: colour reference image, palette JSON (``Palette.save``), image array or Palette;
            the panels' chroma is matched to its colour statistics (consistent characters). A model
            that takes a palette input (Comicolorization) gets the reference image's palette instead
            (default: the Runtime's ``reference``).
        rtl: right-to-left panel order (manga).
        force: colorize pages already in colour too (else they are copied unchanged).
        format: output image format for every page, e.g. ``"png"``.
        progress: show a progress bar on a terminal.
        batch_size: panels per inference call (default: the runtime's batch size).
        across_pages: batch panels of consecutive pages together (False: page at a time).
        reference_strength: 0..1, how strongly the reference's colours replace the model's (0: not
            at all, 1: fully); the default is measured (docs/pages.md).
        panel_config: panel-detection thresholds.
    """
    src, dst = Path(src), Path(dst)
    _check_destination(src, dst, format)
    engine = runtime if isinstance(runtime, Engine) else runtime.engine
    batch_size = batch_size or int(getattr(runtime, "batch_size", None) or 8)  # an Engine's may be None
    contract, ops = getattr(runtime, "contract", None), getattr(runtime, "device_ops", None)
    palette, fed = _references(runtime, contract or engine.contract, reference)
    panels, chroma = panel_config or PanelConfig(), getattr(runtime, "strength", 1.0)
    options = PageOptions(
        rtl, force, palette, reference_strength, across_pages, panels, chroma=chroma, model_palette=fed
    )
    colorizer = PageColorizer(engine, batch_size, options, contract=contract, ops=ops)  # ops: the GPU path
    used = "model" if fed is not None else "recolour" if palette is not None and reference_strength else ""
    report = PageReport(src, dst, reference=used)
    start = time.perf_counter()
    with open_source(src, exclude=dst) as source:
        _colorize_source(colorizer, source, dst, report, format, progress)
    report.seconds = time.perf_counter() - start
    return report


def _check_destination(src: Path, dst: Path, format: str | None) -> None:
    """Refuse writing over the source, and an unknown format, before any work."""
    if same_path(src, dst):
        raise InputError(
            f"output {dst} is the input itself", "write to another path: inputs are never modified"
        )
    output_name("page.png", format)


def _references(runtime: Any, contract: Any, reference: Any) -> tuple[Palette | None, np.ndarray | None]:
    """(palette to recolour towards, palette fed to the model): a model that takes a palette input gets
    the reference's (by default the Runtime's ``reference``); any other model is recoloured."""
    if contract.takes_reference:
        reference = getattr(runtime, "reference", None) if reference is None else reference
        return None, None if reference is None else model_palette(reference, contract)
    return (None if reference is None else load_reference(reference)), None


def _colorize_source(
    colorizer: PageColorizer,
    source: PageSource,
    dst: Path,
    report: PageReport,
    format: str | None,
    progress: bool,
) -> None:
    """Colorize the pages of ``source`` into ``dst``: the output is committed once every entry went
    through (failed pages recorded in ``report``), and dropped on an error that stops the run. Pages
    that cannot be read or decoded are copied unchanged (an archive member zipfile cannot read: as
    stored, into an archive) and issued as a :class:`PageCopiedWarning`."""
    from colorrt.progress import progress_bar

    report.renamed = list(getattr(source, "renamed", []))  # unsafe archive member names rewritten
    pages = [i for i, entry in enumerate(source.entries) if entry.is_image]
    if not pages:
        raise InputError(
            f"no pages (image files) in {report.source}",
            "supported: .png, .jpg, .tif, .webp, ... in a folder or .cbz",
        )
    sink = open_sink(dst, source)
    try:
        writer = _ChapterWriter(source, sink, report, format)
        with progress_bar(len(pages), enabled=progress, desc="pages", unit="page") as bar:
            for index, outcome in colorizer.stream(_read_pages(source, pages)):
                writer.page(int(index), outcome)  # type: ignore[call-overload]  # keys are ints
                bar.update(1)
        writer.rest()
        sink.commit()
    except BaseException:
        sink.abort()
        raise


def is_page_job(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, pages: bool = False, **page_flags: Any
) -> bool:
    """True when a colorize request is for comic pages: a CBZ/zip in or out, ``pages`` asked for, or
    any page-only option set (``reference``, ``rtl``, ``force``: truthy values)."""
    archive = any(Path(p).suffix.lower() in ARCHIVE_SUFFIXES for p in (src, dst))
    return archive or pages or any(bool(v) for v in page_flags.values())


class PageCopiedWarning(UserWarning):
    """A page that could not be read or decoded was copied into the output unchanged."""

    noun = "pages copied unchanged"


class _Unreadable(InputError):
    """A page that could not be read or decoded (carried through unchanged where the output allows)."""


def _read_pages(source: PageSource, indices: list[int]) -> Iterator[tuple[int, np.ndarray | Exception]]:
    for index in indices:
        try:
            yield index, source.read_image(source.entries[index].name)
        except (ColorRTError, OSError) as e:
            yield index, _Unreadable(str(e))


class _ChapterWriter:
    """Writes finished pages, and the source's other entries in their original places."""

    def __init__(self, source: PageSource, sink: PageSink, report: PageReport, format: str | None) -> None:
        self.source, self.sink, self.report, self.format = source, sink, report, format
        self.next = 0  # first source entry not yet written or skipped

    def page(self, index: int, outcome: PageResult | Exception) -> None:
        """Write page ``index`` (after the non-page entries before it) or record why it failed."""
        self._others_before(index)
        name = self.source.entries[index].name
        self.next = index + 1
        if isinstance(outcome, _Unreadable) and self.source.kind != "file":
            self._carry(name, str(outcome))
            return
        if isinstance(outcome, Exception):
            self.report.failed.append((name, str(outcome)))
            return
        try:
            if outcome.status == "passed" and not self.format:
                self.sink.write_bytes(name, self.source.read_bytes(name), name)
            else:
                self.sink.write_image(output_name(name, self.format), outcome.image, name)
        except (ColorRTError, OSError) as e:
            self.report.failed.append((name, str(e)))
            return
        (self.report.passed_through if outcome.status == "passed" else self.report.colorized).append(name)
        self.report.panels += len(outcome.panels)

    def _carry(self, name: str, why: str) -> None:
        """Copy a page that could not be read or decoded unchanged (its stored bytes if unreadable)."""
        try:
            try:
                self.sink.write_bytes(name, self.source.read_bytes(name), name)
            except UnreadableMemberError:
                self.sink.write_stored(name, *self.source.read_stored(name))  # type: ignore[attr-defined]
        except (ColorRTError, OSError):
            self.report.failed.append((name, why))
            return
        self.report.unchanged.append((name, why))
        first = why.splitlines()[0] if why else "unreadable"
        warnings.warn(f"{name}: {first}; the page is copied unchanged", PageCopiedWarning, stacklevel=2)

    def rest(self) -> None:
        """Write the non-page entries after the last page."""
        self._others_before(len(self.source.entries))

    def _others_before(self, stop: int) -> None:
        for entry in self.source.entries[self.next : stop]:
            if entry.is_image:
                continue
            try:
                if entry.name.endswith("/"):
                    self.sink.write_dir(entry.name)
                else:
                    self.sink.write_bytes(entry.name, self.source.read_bytes(entry.name), entry.name)
            except (ColorRTError, OSError) as e:
                self.report.failed.append((entry.name, str(e)))
                continue
            self.report.copied += 1
        self.next = max(self.next, stop)
