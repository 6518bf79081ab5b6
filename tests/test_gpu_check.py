"""benchmarks/gpu_check.sh cannot rot: its dry run (every step on the CPU, tiny sizes) runs here.

The dry run covers the script's argument parsing, step time limits and failure recording, the JSON
report, the wheel installation from a local folder (a tiny wheel made on the spot, installed with
pip --target into a scratch folder; the project's environment is not changed), the film made on
the spot and every film measure on the CPU. It cannot cover what needs a GPU: pytest -m
requires_cuda, bench_gpu.py and the CUDA engine report "skipped: no CUDA".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_report  # noqa: E402

STEPS = ["env", "wheels", "pytest_cuda", "bench_gpu", "film"]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("gpu")
    proc = _run(str(out), "--dry-run", "--python", sys.executable)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, proc


def test_dry_run_records_every_step(dry_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, proc = dry_run
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["budget_s"] == 480
    assert list(report["steps"]) == STEPS
    for name in ("pytest_cuda", "bench_gpu"):
        assert report["steps"][name]["status"] == "skipped"
        assert report["steps"][name]["reason"].startswith("no CUDA")
    for name in ("env", "wheels", "film"):
        step = report["steps"][name]
        assert step["status"] == "ok", step
        assert 0 <= step["seconds"] <= step["limit_s"]
    assert 0 < report["total_seconds"] < 480
    assert [g["target"] for g in report["goals"]] == [">= 30", ">= 0.9", "< 15", ">= 50"]
    assert [g["met"] for g in report["goals"]] == [None] * 4  # CPU numbers of a dry run are no verdict
    assert report["goals"][0]["measured"] > 0
    assert "| step | status | seconds | limit_s | figures |" in proc.stdout
    assert "skipped: no CUDA (dry run)" in proc.stdout
    # what the device tool returns: at most 8 files, none in subfolders
    files = sorted(p.name for p in out.iterdir())
    assert files == ["env.json", "film.json", "gpu_check.json", "gpu_check.log"]
    assert "== film" in (out / "gpu_check.log").read_text()


def test_dry_run_environment_and_wheels(dry_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = dry_run
    env = json.loads((out / "env.json").read_text())
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["cuda_usable"] is False and env["cuda_problem"]
    assert env["versions"]["numpy"] and "onnxruntime" in env
    wheels = json.loads((out / "gpu_check.json").read_text())["steps"]["wheels"]["numbers"]
    probe = wheels["installed"]["colorrt_gpu_check_probe"]
    assert probe.startswith("1.0 from ") and "/site/" in probe  # imported from the scratch target
    assert wheels["colorrt_via"] == "PYTHONPATH"


def test_dry_run_film(dry_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = dry_run
    film = json.loads((out / "film.json").read_text())
    assert film["errors"] == {}
    measures = film["measures"]
    assert measures["film"]["streams_kept"] == ["audio:aac"] and measures["film"]["size"] == "128x72"
    assert measures["e2e"]["frames"] == 12 and measures["e2e"]["output_streams"] == ["audio:aac"]
    assert measures["deoldify_style"]["frames"] == 6
    for name in ("e2e", "deoldify_style", "decode_only", "model_only", "encode_only"):
        assert measures[name]["fps"] > 0, name
    assert measures["encode_only"]["frames_from"] == "the colorized output"
    assert "cli" in measures
    ratios = film["ratios"]
    assert ratios["slowest_stage"] in ("decode_only", "model_only", "encode_only")
    slowest = measures[ratios["slowest_stage"]]["fps"]
    assert ratios["e2e_over_slowest_stage"] == pytest.approx(measures["e2e"]["fps"] / slowest)
    assert ratios["speedup_vs_deoldify_style"] == pytest.approx(
        measures["e2e"]["fps"] / measures["deoldify_style"]["fps"]
    )


def test_rerun_of_one_step_within_a_small_budget(
    dry_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """--only reruns a step (after env and wheels) and keeps the other records; --budget cuts limits."""
    out = tmp_path / "gpu"
    shutil.copytree(dry_run[0], out)
    proc = _run(str(out), "--dry-run", "--only", "bench_gpu", "--budget", "40", "--python", sys.executable)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert list(report["steps"]) == STEPS and report["budget_s"] == 40
    assert report["steps"]["wheels"]["status"] == "ok"
    assert report["steps"]["env"]["limit_s"] <= 30  # 40 s, less the 10 s kept for the summary
    assert report["steps"]["bench_gpu"]["status"] == "skipped"
    assert report["steps"]["film"]["limit_s"] == 210  # from the first run
    assert "== film" in (out / "gpu_check.log").read_text()  # the log is appended to


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    for args, message in [
        (["--frobnicate"], "unknown option --frobnicate"),
        (["--only", "film,nope"], "unknown step 'nope'"),
        (["--budget", "ten"], "--budget must be a whole number"),
        (["--python"], "--python needs a value"),
    ]:
        proc = _run(str(tmp_path / "out"), *args, timeout=30)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    assert "usage: bash benchmarks/gpu_check.sh [OUTDIR] [--dry-run]" in proc.stderr
    usage = _run("--help", timeout=30).stdout
    assert "bash benchmarks/gpu_check.sh [OUTDIR] [--dry-run]" in usage and "set -uo" not in usage


def test_failed_and_timed_out_steps_are_recorded(tmp_path: Path) -> None:
    """A step that dies leaves its status, exit code and output tail; the goals stay computable."""
    gpu_report.start(tmp_path, dry_run=False, budget=480, keep=False)
    output = tmp_path / "out.txt"
    output.write_text("collecting ...\nE   ImportError: libcudart.so.13\n")
    log = tmp_path / "pytest.log"
    log.write_text("...\n2 failed, 5 passed, 3 skipped, 900 deselected, 1 warning in 12.34s\n")
    gpu_report.record(tmp_path, "pytest_cuda", "failed", seconds=13, limit=120, exit_code=1, details=log)
    gpu_report.record(
        tmp_path, "film", "timeout", seconds=150, limit=150, exit_code=124, details=tmp_path / "none.json",
        output=output,
    )  # fmt: skip
    steps = json.loads((tmp_path / "gpu_check.json").read_text())["steps"]
    assert steps["pytest_cuda"]["numbers"] == {
        "failed": 2, "passed": 5, "skipped": 3, "deselected": 900, "warning": 1
    }  # fmt: skip
    assert steps["film"]["status"] == "timeout" and steps["film"]["exit_code"] == 124
    assert steps["film"]["numbers"]["error"].startswith("no numbers")
    assert steps["film"]["output_tail"][-1] == "E   ImportError: libcudart.so.13"
    assert gpu_report.status_text(steps["film"]) == "timeout (exit 124)"


def test_goals_from_step_numbers() -> None:
    steps = {
        "film": {"numbers": {"speedup_vs_deoldify_style": 42.0, "e2e_over_slowest_stage": 0.8}},
        "bench_gpu": {
            "numbers": {
                "kernel_1080p_preprocess_pct_of_peak": 61.0,
                "kernel_4K_postprocess_pct_of_peak": 48.5,
                "eccv16_pre_post_copy_share_pct": 9.0,
                "cyclegan-resnet9_pre_post_copy_share_pct": 4.0,
            }
        },
    }
    found = {g["goal"].split(" (")[0]: (g["measured"], g["met"]) for g in gpu_report.goals(steps)}
    assert list(found.values()) == [(42.0, True), (0.8, False), (9.0, True), (48.5, False)]


def test_fetch_wheels_size_check(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "fetch_gpu_wheels.sh"
    small = tmp_path / "small"
    small.mkdir()
    (small / "tiny-1.0-py3-none-any.whl").write_bytes(b"x" * 1024)
    proc = subprocess.run(["bash", str(script), "--check", str(small)], capture_output=True, text=True)
    assert proc.returncode == 0 and "limit 60 MiB" in proc.stdout, proc.stderr
    big = tmp_path / "big"
    big.mkdir()
    with open(big / "huge-1.0-py3-none-any.whl", "wb") as f:  # sparse: no disk used
        f.truncate(61 * 2**20)
    proc = subprocess.run(
        ["bash", str(script), "--check", str(big)],
        capture_output=True,
        text=True,
        env={**os.environ, "GPU_CARRY_LIMIT_MIB": "60"},
    )
    assert proc.returncode == 1 and "over the 60 MiB limit" in proc.stderr
