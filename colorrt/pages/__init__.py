"""Manga and comic pages: panel detection, per-panel colorization batched across pages, reference
palettes that keep characters' colours, and folder / CBZ input and output.

Modules: ``panels`` (detection, reading order), ``colorize`` (:class:`PageColorizer`, panels batched
across pages), ``tone`` (paper white, white-paper lightness, lightness-keeping merge, colour-page
test), ``palette`` (reference colours), ``chapter`` (:func:`colorize_pages`: folders and CBZ
archives through :mod:`colorrt.io.archive`).

Entry point: :func:`colorize_pages` (``Runtime.colorize_pages`` and ``colorrt colorize chapter.cbz``
call it). Importing this package loads no model and no SciPy; those load when pages are processed.
"""

from __future__ import annotations

from colorrt.pages.chapter import PageCopiedWarning, PageReport, colorize_pages, is_page_job
from colorrt.pages.colorize import PageColorizer, PageOptions, PageResult
from colorrt.pages.palette import Palette, load_reference
from colorrt.pages.panels import Panel, PanelConfig, detect_panels, reading_order
from colorrt.pages.tone import colour_share, is_color_page

__all__ = [
    "PageColorizer",
    "PageCopiedWarning",
    "PageOptions",
    "PageReport",
    "PageResult",
    "Palette",
    "Panel",
    "PanelConfig",
    "colour_share",
    "colorize_pages",
    "detect_panels",
    "is_color_page",
    "is_page_job",
    "load_reference",
    "reading_order",
]
