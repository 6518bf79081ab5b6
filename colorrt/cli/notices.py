"""Warnings as a person reads them: one ``colorrt: warning: ...`` line per kind, repeats counted.

The library raises proper warning classes (callers may filter them); the CLI shows the first
warning of each kind as it happens and, at the end, how many there were of each kind that repeated.
A warning class may carry a ``noun`` (e.g. ``"damaged packets"``) for that summary line.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import TextIO


class WarningReport:
    """Counts warnings by class; prints the first of each class at once and the repeats at the end."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.counts: Counter[type[Warning]] = Counter()

    def show(self, message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        self.counts[category] += 1
        if self.counts[category] == 1:
            self._print(str(message).strip())

    def summarise(self) -> None:
        for category, count in self.counts.items():
            if count > 1:
                noun = getattr(category, "noun", f"{category.__name__} warnings")
                self._print(f"{count} {noun} in all (the first is shown above)")

    def _print(self, text: str) -> None:
        first, *rest = text.splitlines() or [""]
        print(f"colorrt: warning: {first}", *rest, sep="\n", file=self.stream or sys.stderr)


@contextlib.contextmanager
def reported_warnings() -> Iterator[WarningReport]:
    """Route every warning raised in the block through a :class:`WarningReport`."""
    report = WarningReport()
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # count every repeat; Python's registry would hide them
        warnings.showwarning = report.show
        try:
            yield report
        finally:
            report.summarise()
