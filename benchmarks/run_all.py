"""Run every CPU benchmark in one go (each prints its table and writes benchmarks/results/<name>.json).

    python benchmarks/run_all.py [--only kernels,engines,...]

The GPU benchmark (bench_gpu.py) is left out: run it on a machine with an NVIDIA GPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU_BENCHMARKS = ("kernels", "engines", "quantize", "video", "pages")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(CPU_BENCHMARKS), help="comma-separated benchmark names")
    names = parser.parse_args().only.split(",")
    failed = []
    for name in names:
        script = HERE / f"bench_{name}.py"
        print(f"\n=== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
