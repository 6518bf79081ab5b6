"""Steps of the GPU check (issue 18); benchmarks/gpu_check.sh calls it, docs/gpu.md explains it.

    python benchmarks/gpu_check.py env --out env.json
    python benchmarks/gpu_check.py cuda env.json                 # prints why CUDA is unusable, or nothing
    python benchmarks/gpu_check.py wheels --folder DIR --site DIR --out wheels.json [--probe]
                                          [--install-colorrt]
    python benchmarks/gpu_check.py start OUTDIR [--dry-run] [--budget S] [--keep]
    python benchmarks/gpu_check.py record OUTDIR STEP STATUS [--seconds S] [--limit S] [--reason TEXT]
                                          [--exit-code N] [--details FILE] [--output FILE]
    python benchmarks/gpu_check.py summary OUTDIR [--seconds S]

``start``, ``record`` and ``summary`` (benchmarks/gpu_report.py) rewrite OUTDIR/gpu_check.json: every
step's status, time and numbers, and the issue's goals with what was measured. Nothing heavy is
imported at the top: the shell script calls this between steps.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = (
    "torch",
    "cupy-cuda13x",
    "cupy-cuda12x",
    "onnxruntime",
    "onnxruntime-gpu",
    "av",
    "nvidia-dali-cuda130",
    "tensorrt",
    "tensorrt-cu13",
    "numpy",
    "scikit-image",
    "pytest",
)
PROBE = "colorrt_gpu_check_probe"  # the tiny wheel a dry run installs


# ---------------------------------------------------------------- 1. environment


def environment() -> dict[str, Any]:
    """Facts of this machine: GPU (nvidia-smi, torch, CuPy), driver, library versions."""
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "nvidia_smi": _nvidia_smi(),
        "versions": {name: _version(name) for name in DISTRIBUTIONS},
    }
    for name, probe in (("torch", _torch_facts), ("cupy", _cupy_facts), ("onnxruntime", _ort_facts)):
        try:
            facts[name] = probe()
        except Exception as e:  # a missing or broken library is a fact to report, not a failure
            facts[name] = {"error": f"{type(e).__name__}: {e}"}
    problems = []
    if not facts["torch"].get("cuda_available"):
        problems.append(f"torch: {facts['torch'].get('error') or 'no CUDA device'}")
    if not facts["cupy"].get("devices"):
        problems.append(f"CuPy: {facts['cupy'].get('error') or 'no CUDA device'}")
    facts["cuda_problem"] = "; ".join(problems) or None
    facts["cuda_usable"] = facts["cuda_problem"] is None
    return facts


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _nvidia_smi() -> dict[str, Any]:
    query = "name,driver_version,memory.total,compute_cap"
    try:
        proc = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip()[-300:]}
    keys = query.split(",")
    rows = [[v.strip() for v in line.split(",")] for line in proc.stdout.splitlines() if line.strip()]
    return {"gpus": [dict(zip(keys, row, strict=False)) for row in rows]}


def _torch_facts() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    if facts["cuda_available"]:
        facts["device"] = torch.cuda.get_device_name(0)
        facts["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        facts["cudnn"] = torch.backends.cudnn.version()
    return facts


def _cupy_facts() -> dict[str, Any]:
    import cupy

    runtime = cupy.cuda.runtime
    facts: dict[str, Any] = {"version": cupy.__version__, "devices": runtime.getDeviceCount()}
    facts["cuda_runtime"] = runtime.runtimeGetVersion()
    facts["cuda_driver"] = runtime.driverGetVersion()
    if facts["devices"]:
        name = runtime.getDeviceProperties(0)["name"]
        facts["device"] = name.decode() if isinstance(name, bytes) else str(name)
    return facts


def _ort_facts() -> dict[str, Any]:
    import onnxruntime

    return {"version": onnxruntime.__version__, "providers": onnxruntime.get_available_providers()}


def cuda_problem(env_json: Path) -> str:
    """Why the GPU steps cannot run ('' when they can, or when the environment step left no answer)."""
    try:
        facts = json.loads(env_json.read_text())
    except (OSError, ValueError):
        return ""  # unknown: the GPU steps are tried and report their own errors
    return "" if facts.get("cuda_usable") else f"no CUDA ({facts.get('cuda_problem')})"


# ---------------------------------------------------------------- 2. wheels


def install_wheels(folder: Path, site: Path, *, probe: bool, install_colorrt: bool) -> dict[str, Any]:
    """pip-install every wheel of ``folder`` (no index, no dependencies) into ``site``; check imports."""
    if probe:
        folder.mkdir(parents=True, exist_ok=True)
        make_probe_wheel(folder)
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    path = os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])
    if not wheels and _import_version("av", path).startswith("error"):
        raise SystemExit(
            f"gpu_check: PyAV is missing and there are no wheels in {folder}: run "
            "`bash benchmarks/fetch_gpu_wheels.sh` where pip reaches a registry, and carry "
            "benchmarks/gpu_wheels to the GPU machine"
        )
    start = time.perf_counter()
    if wheels:  # none: this machine has what colorrt needs already
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        command += ["--no-cache-dir", "--upgrade", "--target", str(site), "--find-links", str(folder)]
        subprocess.run(command + [str(w) for w in wheels], check=True)
    result: dict[str, Any] = {
        "folder": str(folder),
        "wheels": {w.name: round(w.stat().st_size / 2**20, 2) for w in wheels},
        "install_seconds": round(time.perf_counter() - start, 2),
        "imports": {},
    }
    for module in sorted({"av", *(name for w in wheels for name in _top_level_modules(w))}):
        result["imports"][module] = _import_version(module, path)
    result["colorrt"] = _colorrt_import(path, install_colorrt)
    bad = [m for m, v in result["imports"].items() if v.startswith("error")]
    if bad or result["colorrt"]["via"] is None:
        print(json.dumps(result, indent=2))
        raise SystemExit(f"gpu_check: not importable after the install: {', '.join(bad) or 'colorrt'}")
    return result


def _top_level_modules(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    modules = set()
    for name in names:
        top, folder, _ = name.partition("/")
        if folder or top.endswith(".py"):  # a package folder or a top-level module file
            modules.add(top.removesuffix(".py"))
    return {m for m in modules if m.isidentifier()}  # drops *.dist-info, *.libs, *.data


def _import_version(module: str, path: str) -> str:
    code = f"import {module} as m; print(getattr(m, '__version__', 'imported'), 'from', m.__file__)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}
    )
    return proc.stdout.strip() if proc.returncode == 0 else f"error: {proc.stderr.strip()[-300:]}"


def _colorrt_import(path: str, install: bool) -> dict[str, Any]:
    """colorrt from the working tree on PYTHONPATH; else (``install``) pip install -e without a registry."""
    check = "import colorrt, colorrt.cli, colorrt.io.video; print(colorrt.__file__)"
    environ = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=environ)
    if proc.returncode == 0:
        return {"via": "PYTHONPATH", "file": proc.stdout.strip()}
    first_error = proc.stderr.strip()[-500:]
    if not install:
        return {"via": None, "error": first_error}
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation"]
    subprocess.run(command + ["-e", str(REPO)], check=False)
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    if proc.returncode == 0:
        return {"via": "pip install -e", "file": proc.stdout.strip(), "pythonpath_error": first_error}
    return {"via": None, "error": proc.stderr.strip()[-500:], "pythonpath_error": first_error}


def make_probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel (what a dry run installs instead of the real ones)."""
    dist = f"{PROBE}-1.0.dist-info"
    files = {
        f"{PROBE}/__init__.py": '__version__ = "1.0"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: gpu_check\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(text.encode())},{len(text.encode())}" for name, text in files.items()]
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    path = folder / f"{PROBE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "env":
        facts = environment()
        Path(args.out).write_text(json.dumps(facts, indent=2) + "\n")
        print(json.dumps(gpu_report.env_numbers(Path(args.out)), indent=2))
    elif args.command == "cuda":
        print(cuda_problem(Path(args.env_json)))
    elif args.command == "wheels":
        site = Path(args.site)
        shutil.rmtree(site, ignore_errors=True)
        found = install_wheels(
            Path(args.folder), site, probe=args.probe, install_colorrt=args.install_colorrt
        )
        Path(args.out).write_text(json.dumps(found, indent=2) + "\n")
        print(json.dumps(found, indent=2))
    elif args.command == "start":
        gpu_report.start(Path(args.outdir), dry_run=args.dry_run, budget=args.budget, keep=args.keep)
    elif args.command == "record":
        gpu_report.record(
            Path(args.outdir),
            args.step,
            args.status,
            seconds=args.seconds,
            limit=args.limit,
            reason=args.reason,
            exit_code=args.exit_code,
            details=Path(args.details) if args.details else None,
            output=Path(args.output) if args.output else None,
        )
    else:
        gpu_report.summary(Path(args.outdir), args.seconds)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env", help="environment facts to a JSON file")
    env.add_argument("--out", required=True)
    commands.add_parser("cuda", help="why CUDA is unusable, from env.json").add_argument("env_json")
    wheels = commands.add_parser("wheels", help="install carried wheels without a registry")
    wheels.add_argument("--folder", required=True)
    wheels.add_argument("--site", required=True, help="pip --target folder (put on PYTHONPATH)")
    wheels.add_argument("--out", required=True)
    wheels.add_argument("--probe", action="store_true", help="make and install a tiny local wheel (dry run)")
    wheels.add_argument("--install-colorrt", action="store_true", help="pip install -e . if PYTHONPATH fails")
    begin = commands.add_parser("start", help="a fresh gpu_check.json")
    begin.add_argument("outdir")
    begin.add_argument("--dry-run", action="store_true")
    begin.add_argument("--budget", type=int, default=480)
    begin.add_argument("--keep", action="store_true", help="keep the records of steps not rerun")
    step = commands.add_parser("record", help="record one step")
    step.add_argument("outdir")
    step.add_argument("step", choices=sorted(gpu_report.EXTRACTORS))
    step.add_argument("status", choices=("ok", "failed", "timeout", "skipped"))
    step.add_argument("--seconds", type=int, default=0)
    step.add_argument("--limit", type=int, default=None)
    step.add_argument("--reason", default=None)
    step.add_argument("--exit-code", type=int, default=None)
    step.add_argument("--details", default=None, help="the step's JSON (or log) with its numbers")
    step.add_argument(
        "--output", default=None, help="the step's captured output (its tail is kept on failure)"
    )
    report = commands.add_parser("summary", help="print the tables, finish gpu_check.json")
    report.add_argument("outdir")
    report.add_argument("--seconds", type=int, default=None)
    return parser


if __name__ == "__main__":
    sys.exit(main())
