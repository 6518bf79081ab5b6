"""Instance-aware colorization: colorrt's pipeline vs the official torch code path, images per second.

Both paths colorize the same grey photos end to end with the same detector (a synthetic ONNX detector
returning ``--boxes`` boxes) and the same random-init InstColorization networks (speed does not depend
on the weights), keep the full-resolution L and merge with colorrt's kernel:

* ``colorrt``: ``Runtime(bundle, detector=...)``: ONNX Runtime, G on the crops of all images of a batch
  together, the placement in NumPy, GF with static shapes on the batch;
* ``official``: the torch networks as the official test script runs them: one image at a time, G on
  that image's crops, GF's WeightGenerators placing and weighting one box at a time (F.interpolate +
  F.pad + softmax over N + 1), torch eager FP32 (tests/instcolorization_official.py).

Runs are interleaved (colorrt, official, colorrt, ...) and the median is kept; CPU time (all threads
of the process) is recorded beside wall time, the steadier number on a shared machine. The first
image's colours from both paths are compared (max difference in 8-bit RGB codes). CPU runs use
``--threads`` for both ONNX Runtime and torch and record the CPU model and SIMD flags.

python benchmarks/bench_instance.py [--width 1.0] [--size 256] [--images 4] [--boxes 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_default_model import cpu_flags  # noqa: E402
from common import print_table, write_results  # noqa: E402

from tests.instance_zoo import detector_model, sample_luminance  # noqa: E402


def boxes_for(count: int, height: int, width: int) -> list[list[int]]:
    """``count`` overlapping boxes of various sizes spread over the image."""
    rng = np.random.default_rng(count)
    out = []
    for _ in range(count):
        w, h = int(rng.uniform(0.15, 0.6) * width), int(rng.uniform(0.15, 0.6) * height)
        x, y = int(rng.uniform(0, width - w)), int(rng.uniform(0, height - h))
        out.append([x, y, x + w, y + h])
    return out


def official_path(model, runtime, grey: np.ndarray, device: str) -> np.ndarray:  # noqa: ANN001
    """One image as the official code runs it (detector and merge shared with colorrt)."""
    import torch

    from colorrt.kernels import pipeline as kernels
    from tests.instcolorization_official import official_colorize

    engine = runtime.engine
    plane = kernels.luminance(grey)
    boxes = engine.boxes(plane)
    image = torch.from_numpy(kernels.preprocess([plane], engine.net_contract)).to(device)
    crops = [plane[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
    crops = torch.from_numpy(kernels.preprocess(crops, engine.net_contract)).to(device) if crops else None
    size = (plane.shape[1], plane.shape[0])
    ab = official_colorize(model, image, crops, boxes.tolist(), size).cpu().numpy()[0]
    return kernels.merge(plane, ab * 110.0)


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    from colorrt.export.instance_bundle import export_bundle
    from colorrt.models import instcolorization as ic
    from colorrt.runtime import Runtime

    torch.set_num_threads(args.threads)
    height, width = args.image
    greys = [
        np.clip(sample_luminance(height, width, i) * 2.55, 0, 255).astype(np.uint8)
        for i in range(args.images)
    ]
    work = Path(tempfile.mkdtemp(prefix="bench_instance_"))
    export_bundle(
        None, work / "bundle", random_init=True, seed=1, size=args.size, width=args.width, check=False
    )
    boxes = boxes_for(args.boxes, height, width)
    detector = detector_model(work / "det.onnx", boxes, [0.9] * len(boxes))
    model = ic.random_init(args.width, 1)
    for module in model.modules().values():
        module.to(args.device)
    runtime = Runtime(work / "bundle", detector=detector, batch_size=args.batch_size, threads=args.threads,
                      device=args.device)  # fmt: skip
    ours = runtime.colorize_batch(greys[:1])[0]
    theirs = official_path(model, runtime, greys[0], args.device)
    paths = {
        "colorrt": lambda: runtime.colorize_batch(greys),
        "official torch": lambda: [official_path(model, runtime, g, args.device) for g in greys],
    }
    for fn in paths.values():
        fn()  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):  # interleaved, so load changes on a shared machine hit both
        for name, fn in paths.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    rows = [
        {
            "path": name,
            "images_per_s": args.images / statistics.median(wall[name]),
            "s_per_image": statistics.median(wall[name]) / args.images,
            "cpu_s_per_image": statistics.median(cpu[name]) / args.images,
        }
        for name in paths
    ]
    rows[0]["speedup"] = rows[0]["images_per_s"] / rows[1]["images_per_s"]
    rows[0]["max_rgb_code_diff_vs_official"] = int(np.abs(ours.astype(int) - theirs.astype(int)).max())
    runtime.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--width", type=float, default=1.0, help="channel multiplier (1.0: the official nets)"
    )
    parser.add_argument("--size", type=int, default=256, help="network render size (official 256)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--image", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--boxes", type=int, default=4, help="boxes the detector returns per image (max 8)")
    parser.add_argument("--batch-size", type=int, default=4, help="colorrt images per batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = run(args)
    columns = ["path", "images_per_s", "s_per_image", "cpu_s_per_image", "speedup"]
    columns.append("max_rgb_code_diff_vs_official")
    print_table(rows, columns)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items() if k != "out"}
    name = f"instance_{args.device}_w{args.width:g}_s{args.size}"
    path = write_results(name, rows, args.out, settings=settings, cpu=cpu_flags())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
