"""Shared helpers for the benchmark scripts: timing, machine facts, JSON output, table printing."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def time_call(fn: Callable[[], Any], *, repeats: int = 10, warmup: int = 2) -> dict[str, float]:
    """Median/min/mean wall time of ``fn`` in milliseconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": statistics.median(samples),
        "min_ms": min(samples),
        "mean_ms": statistics.fmean(samples),
        "repeats": repeats,
    }


def machine_facts() -> dict[str, Any]:
    """CPU model, core count and library versions, recorded with every result."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
    for module in ("numpy", "onnxruntime", "torch", "skimage"):
        try:
            facts[module] = __import__(module).__version__
        except ImportError:
            pass
    return facts


def write_results(name: str, rows: list[dict[str, Any]], out: str | None = None, **extra: Any) -> Path:
    """Write rows + machine facts as JSON to ``out`` (default benchmarks/results/<name>.json)."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine_facts(), "rows": rows, **extra}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as a Markdown table with the given columns."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = [f"{row[c]:.2f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        print("| " + " | ".join(cells) + " |")
