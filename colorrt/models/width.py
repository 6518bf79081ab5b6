"""Width factors: the zoo's big networks built narrower (tests, quick benchmarks) with the same layout."""

from __future__ import annotations


def scaled(channels: int, width: float) -> int:
    """A hidden width scaled by ``width`` (at least 1)."""
    return max(1, round(channels * width))
