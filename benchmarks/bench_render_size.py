"""Render size (``--render-size`` / ``render_size=``): time per image and colour error against the truth.

    python benchmarks/bench_render_size.py [--sizes 128,192,256,384,512] [--repeats 5] [--threads 1]
        [--model MODEL.onnx] [--out results/render_size.json]

Photos whose true colours are known: scikit-image's astronaut (512x512), chelsea (451x300), coffee
(600x400) and rocket (640x427). Each is colorized from its own lightness (the runtime keeps only L)
with the bundled model (default; or ``--model``) at every render size, through ``Runtime.colorize``
(luminance, preprocess, model, upsampled merge at full resolution). Recorded per size: the median
wall and CPU (process) time per image over ``--repeats`` runs after one warm-up, and the mean
CIEDE2000 (ΔE00) of the result against the colour photo, per photo and averaged. The CPU model, its
SIMD flags and the thread count are written with the rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_default_model import cpu_flags  # noqa: E402
from common import print_table, write_results  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # scikit-image sample photos, bundled offline


def delta_e00(result: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 between two uint8 RGB images."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(truth), rgb2lab(result[..., :3])).mean())


def measure(runtime, photo: np.ndarray, repeats: int) -> tuple[float, float, np.ndarray]:  # noqa: ANN001
    """(median wall ms, median CPU ms, result) of colorizing ``photo``."""
    result = runtime.colorize(photo)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        result = runtime.colorize(photo)
        wall.append((time.perf_counter() - w) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return statistics.median(wall), statistics.median(cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="128,192,256,384,512")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import skimage.data

    from colorrt.runtime import Runtime

    photos = {name: getattr(skimage.data, name)() for name in PHOTOS}
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with Runtime(args.model, threads=args.threads, render_size=size) as runtime:
            row: dict[str, object] = {"render_size": runtime.render_size}
            walls, cpus, errors = [], [], []
            for name, photo in photos.items():
                wall, cpu, result = measure(runtime, photo, args.repeats)
                walls.append(wall)
                cpus.append(cpu)
                errors.append(delta_e00(result, photo))
                row[f"de00_{name}"] = round(errors[-1], 3)
            row.update(
                wall_ms=round(statistics.fmean(walls), 1),
                cpu_ms=round(statistics.fmean(cpus), 1),
                de00=round(statistics.fmean(errors), 3),
            )
            rows.append(row)
            print(f"render size {size}: {row['wall_ms']} ms, ΔE00 {row['de00']}", file=sys.stderr)
    print_table(rows, ["render_size", "wall_ms", "cpu_ms", "de00", *(f"de00_{n}" for n in PHOTOS)])
    path = write_results(
        "render_size",
        rows,
        args.out,
        cpu=cpu_flags(),
        threads=args.threads,
        repeats=args.repeats,
        model=args.model or "bundled colorrt-default",
        photos={name: list(photo.shape) for name, photo in photos.items()},
    )
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
