"""The GPU check's report (issue 18): OUTDIR/gpu_check.json, rewritten after every step, and the
summary tables. benchmarks/gpu_check.py's ``start``, ``record`` and ``summary`` commands call it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REPORT = "gpu_check.json"
OUTPUT_TAIL_LINES = 15  # lines of a failed step's output kept in the report


def start(outdir: Path, *, dry_run: bool, budget: int, keep: bool) -> None:
    """A fresh gpu_check.json (``keep``: a rerun of some steps keeps the others' records)."""
    report = _load(outdir) if keep else {}
    report.update(
        check="colorrt GPU check (issue 18)",
        dry_run=dry_run,
        budget_s=budget,
        started=time.strftime("%Y-%m-%d %H:%M:%S %z"),
        commit=_commit(),
    )
    report.setdefault("steps", {})
    _save(outdir, report)


def _commit() -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return proc.stdout.strip() or None


def record(
    outdir: Path,
    step: str,
    status: str,
    *,
    seconds: int = 0,
    limit: int | None = None,
    reason: str | None = None,
    exit_code: int | None = None,
    details: Path | None = None,
    output: Path | None = None,
) -> dict[str, Any]:
    """Add one step's status, time and numbers (from ``details``) to gpu_check.json; returns its entry.

    ``output``: the step's captured output, whose last lines are kept when the step did not succeed.
    """
    entry: dict[str, Any] = {"status": status, "seconds": seconds, "limit_s": limit}
    if reason:
        entry["reason"] = reason
    if exit_code is not None and status != "ok":
        entry["exit_code"] = exit_code
    if status != "skipped":
        try:
            entry["numbers"] = EXTRACTORS[step](details)
        except Exception as e:  # a step that died early leaves no file: the status says why
            entry["numbers"] = {"error": f"no numbers ({type(e).__name__}: {e})"}
    if status != "ok" and output is not None and output.is_file():
        entry["output_tail"] = output.read_text(errors="replace").splitlines()[-OUTPUT_TAIL_LINES:]
    report = _load(outdir)
    report.setdefault("steps", {})[step] = entry
    report["goals"] = goals(report["steps"], dry_run=bool(report.get("dry_run")))
    _save(outdir, report)
    print(f"-- {step}: {status_text(entry)}")
    return entry


def status_text(entry: dict[str, Any]) -> str:
    text = entry["status"]
    if entry.get("reason"):
        text += f": {entry['reason']}"
    elif entry.get("exit_code") is not None:
        text += f" (exit {entry['exit_code']})"
    return text


def _load(outdir: Path) -> dict[str, Any]:
    try:
        return json.loads((outdir / REPORT).read_text())
    except (OSError, ValueError):
        return {}


def _save(outdir: Path, report: dict[str, Any]) -> None:
    temporary = outdir / f".{REPORT}.tmp"
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    temporary.replace(outdir / REPORT)


def env_numbers(path: Path) -> dict[str, Any]:
    facts = json.loads(path.read_text())
    gpus = facts.get("nvidia_smi", {}).get("gpus") or [{}]
    return {
        "gpu": gpus[0].get("name") or facts["torch"].get("device"),
        "driver": gpus[0].get("driver_version"),
        "torch": facts["torch"].get("version"),
        "torch_cuda": facts["torch"].get("cuda"),
        "cupy": facts["cupy"].get("version"),
        "onnxruntime": facts["onnxruntime"].get("version"),
        "cuda_usable": facts["cuda_usable"],
    }


def _wheel_numbers(path: Path) -> dict[str, Any]:
    found = json.loads(path.read_text())
    return {
        "installed": found["imports"],
        "colorrt_via": found["colorrt"]["via"],
        "wheels_mib": found["wheels"],
    }


def _pytest_numbers(path: Path) -> dict[str, Any]:
    """Counts from pytest's last line ("3 passed, 2 skipped, 900 deselected in 12.3s")."""
    final = [line for line in path.read_text(errors="replace").splitlines() if _PYTEST_FINAL.search(line)]
    if not final:
        return {"error": "pytest printed no final count (killed, or collection failed)"}
    counts = re.findall(
        r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed|warnings?)", final[-1]
    )
    return {kind.removesuffix("s") if kind in ("errors", "warnings") else kind: int(n) for n, kind in counts}


_PYTEST_FINAL = re.compile(r"(\d+ (passed|failed|skipped|deselected|errors?)|no tests ran).* in [\d.]+s")


def _bench_numbers(path: Path) -> dict[str, Any]:
    rows = json.loads(path.read_text())["rows"]
    cupy = [r for r in rows if r.get("implementation") == "colorrt CuPy kernels"]
    numbers: dict[str, Any] = {
        f"kernel_{r['size']}_{r['stage']}_pct_of_peak": _round(r.get("pct_of_peak")) for r in cupy
    }
    for row in rows:
        if row.get("section", "").startswith("end-to-end"):
            numbers[f"{row['model']}_speedup"] = _round(row["speedup"])
            numbers[f"{row['model']}_pre_post_copy_share_pct"] = _round(row["pre_post_copy_share_pct"])
    return numbers


def _film_numbers(path: Path) -> dict[str, Any]:
    film = json.loads(path.read_text())
    measures = film.get("measures", {})
    numbers = {f"{name}_fps": _round(m.get("fps")) for name, m in measures.items() if "fps" in m}
    numbers.update({k: _round(v) for k, v in film.get("ratios", {}).items()})
    if film.get("errors"):
        numbers["errors"] = film["errors"]
    return numbers


EXTRACTORS = {
    "env": env_numbers,
    "wheels": _wheel_numbers,
    "pytest_cuda": _pytest_numbers,
    "bench_gpu": _bench_numbers,
    "film": _film_numbers,
}


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def goals(steps: dict[str, Any], *, dry_run: bool = False) -> list[dict[str, Any]]:
    """The issue's goals with what this run measured (None where the step gave no number).

    A dry run's numbers (tiny sizes on the CPU) say nothing about the goals: ``met`` stays None.
    """
    film = steps.get("film", {}).get("numbers", {})
    bench = steps.get("bench_gpu", {}).get("numbers", {})
    kernels = [v for k, v in bench.items() if k.startswith("kernel_") and isinstance(v, (int, float))]
    shares = [
        v for k, v in bench.items() if k.endswith("_pre_post_copy_share_pct") and isinstance(v, (int, float))
    ]
    rows = [
        ("GPU e2e 1080p film vs DeOldify-style", ">=", 30.0, film.get("speedup_vs_deoldify_style")),
        ("e2e / slowest single stage (film)", ">=", 0.9, film.get("e2e_over_slowest_stage")),
        ("pre/post/copies share of e2e, % (bench_gpu, worst model)", "<", 15.0, max(shares, default=None)),
        ("CuPy kernels, % of memory bandwidth (bench_gpu, worst)", ">=", 50.0, min(kernels, default=None)),
    ]
    result = []
    for goal, op, target, measured in rows:
        met = (
            None if measured is None or dry_run else (measured >= target if op == ">=" else measured < target)
        )
        result.append({"goal": goal, "target": f"{op} {target:g}", "measured": measured, "met": met})
    return result


def summary(outdir: Path, seconds: float | None) -> dict[str, Any]:
    """Print the steps and goals as Markdown tables; finish gpu_check.json."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import print_table

    report = _load(outdir)
    report["total_seconds"] = seconds
    report["goals"] = goals(report.get("steps", {}), dry_run=bool(report.get("dry_run")))
    _save(outdir, report)
    rows = []
    for name, entry in report.get("steps", {}).items():
        numbers = {k: v for k, v in entry.get("numbers", {}).items() if not isinstance(v, (dict, list))}
        figures = ", ".join(f"{k}={v}" for k, v in numbers.items())
        rows.append(
            {
                "step": name,
                "status": status_text(entry),
                "seconds": entry.get("seconds"),
                "limit_s": entry.get("limit_s"),
                "figures": figures,
            }
        )
    mode = " (dry run)" if report.get("dry_run") else ""
    print(f"\nGPU check{mode}: {outdir} ({seconds} s of {report.get('budget_s')} s)\n")
    print_table(rows, ["step", "status", "seconds", "limit_s", "figures"])
    print()
    print_table(report["goals"], ["goal", "target", "measured", "met"])
    return report
