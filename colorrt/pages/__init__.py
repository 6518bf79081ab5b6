"""Manga and comic pages: panel detection, per-panel colorization batched across pages, reference
palettes that keep characters' colours, and folder / CBZ input and output.

Entry point: :func:`colorize_pages` (``Runtime.colorize_pages`` and ``colorrt colorize chapter.cbz``
call it). Importing this package loads no model and no SciPy; those load when pages are processed.
"""

from __future__ import annotations

from colorrt.pages.colorize import (
    PageColorizer,
    PageOptions,
    PageReport,
    PageResult,
    colorfulness,
    colorize_pages,
    is_color_page,
    is_page_job,
)
from colorrt.pages.palette import Palette, load_reference
from colorrt.pages.panels import Panel, PanelConfig, detect_panels, reading_order

__all__ = [
    "PageColorizer",
    "PageOptions",
    "PageReport",
    "PageResult",
    "Palette",
    "Panel",
    "PanelConfig",
    "colorfulness",
    "colorize_pages",
    "detect_panels",
    "is_color_page",
    "is_page_job",
    "load_reference",
    "reading_order",
]
