"""Progress bars for long runs: tqdm on a terminal, silent when output is piped or ``--quiet``."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int | None, *, enabled: bool = True, desc: str = "", unit: str = "img") -> Any:
    """A tqdm bar writing to stderr, disabled when ``enabled`` is false or stderr is not a terminal.

    Use it as a context manager and call ``update(n)``; a disabled bar costs nothing.
    """
    from tqdm import tqdm

    show = enabled and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, file=sys.stderr, dynamic_ncols=True)
