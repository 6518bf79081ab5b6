"""colorrt's NumPy colour kernels vs scikit-image at 1920x1080, in one run.

    python benchmarks/bench_kernels.py [--repeats 5] [--baseline-repeats 3] [--out results/kernels.json]

Times, on the same full-HD photograph (skimage's astronaut, upscaled):
  * sRGB -> Lab: skimage ``rgb2lab`` vs colorrt ``rgb_to_lab`` (float32, and uint8 through its LUT);
  * Lab -> sRGB: skimage ``lab2rgb`` vs colorrt ``lab_to_rgb`` (float32);
  * luminance (CIE L of a uint8 frame): skimage ``rgb2lab(...)[..., 0]`` vs colorrt ``luminance``;
  * full postprocess from a 256x256 ab: skimage (``transform.resize`` bilinear + ``lab2rgb`` + round to
    uint8) vs colorrt ``merge``;
  * colorrt ``preprocess`` (L -> render size, normalized) for the default contract, for reference.
Reports the median of the timed runs and the speed-up over skimage.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, time_call, write_results  # noqa: E402

HEIGHT, WIDTH = 1080, 1920  # pixels, a full-HD frame
AB_SIZE = 256  # pixels, the render size the model's ab comes at


def _frame() -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))


def _skimage_postprocess(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb
    from skimage.transform import resize

    ab_full = resize(ab.transpose(1, 2, 0), lightness.shape, order=1, anti_aliasing=False)
    lab = np.concatenate([lightness[..., None], ab_full], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-gamut warnings
        return np.rint(lab2rgb(lab) * 255).astype(np.uint8)


def run(repeats: int = 5, baseline_repeats: int = 3) -> list[dict[str, Any]]:
    """Time every kernel pair; rows of {operation, implementation, median_ms, ..., speedup_vs_skimage}."""
    from skimage.color import lab2rgb, rgb2lab

    from colorrt.contract import PRESETS
    from colorrt.kernels import lab_to_rgb, luminance, merge, preprocess, rgb_to_lab

    frame = _frame()
    rgb32 = frame.astype(np.float32) / 255
    lab32 = rgb_to_lab(rgb32)
    lightness = luminance(frame)
    ab = np.ascontiguousarray(lab32[::4, ::4, 1:][:AB_SIZE, :AB_SIZE].transpose(2, 0, 1))  # a 256 px ab

    def quiet_lab2rgb(lab: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lab2rgb(lab)

    cases = [
        ("sRGB -> Lab (float32)", "skimage rgb2lab", lambda: rgb2lab(rgb32)),
        ("sRGB -> Lab (float32)", "colorrt rgb_to_lab", lambda: rgb_to_lab(rgb32)),
        ("sRGB -> Lab (uint8)", "skimage rgb2lab", lambda: rgb2lab(frame)),
        ("sRGB -> Lab (uint8)", "colorrt rgb_to_lab", lambda: rgb_to_lab(frame)),
        ("Lab -> sRGB (float32)", "skimage lab2rgb", lambda: quiet_lab2rgb(lab32)),
        ("Lab -> sRGB (float32)", "colorrt lab_to_rgb", lambda: lab_to_rgb(lab32)),
        ("luminance (uint8 frame -> L)", "skimage rgb2lab[..., 0]", lambda: rgb2lab(frame)[..., 0]),
        ("luminance (uint8 frame -> L)", "colorrt luminance", lambda: luminance(frame)),
        (
            "postprocess (256 px ab -> uint8)",
            "skimage resize+lab2rgb",
            lambda: _skimage_postprocess(lightness, ab),
        ),
        ("postprocess (256 px ab -> uint8)", "colorrt merge", lambda: merge(lightness, ab)),
        (
            "preprocess (L -> 144x256 input)",
            "colorrt preprocess",
            lambda: preprocess([lightness], PRESETS["colorrt-default"]),
        ),
    ]
    rows: list[dict[str, Any]] = []
    baseline: dict[str, float] = {}
    for operation, implementation, fn in cases:
        is_baseline = implementation.startswith("skimage")
        # skimage has nothing to warm up (no caches); colorrt builds its lookup tables on first use.
        timing = time_call(
            fn, repeats=baseline_repeats if is_baseline else repeats, warmup=0 if is_baseline else 1
        )
        if is_baseline:
            baseline[operation] = timing["median_ms"]
        reference = baseline.get(operation)
        rows.append(
            {
                "operation": operation,
                "implementation": implementation,
                "size": f"{WIDTH}x{HEIGHT}",
                **timing,
                "speedup_vs_skimage": reference / timing["median_ms"] if reference else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per colorrt case (median reported)"
    )
    parser.add_argument("--baseline-repeats", type=int, default=3, help="timed runs per (slow) skimage case")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/kernels.json)")
    args = parser.parse_args(argv)
    rows = run(args.repeats, args.baseline_repeats)
    print_table(rows, ["operation", "implementation", "median_ms", "min_ms", "speedup_vs_skimage"])
    path = write_results("kernels", rows, args.out, image=f"skimage astronaut upscaled to {WIDTH}x{HEIGHT}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
