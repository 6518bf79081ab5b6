"""Reference strength: how far ``--reference`` should pull a page's colours, by CIEDE2000 against the truth.

    python benchmarks/bench_reference_strength.py [--models default,synthetic] [--pages 6]
        [--strengths 0,0.1,...,1] [--out results/reference_strength.json]

The pages test set, pages whose true colours are known:

  * synthetic manga pages (``tests/synth_pages.make_chapter``, 480x340): the drawn character's parts
    (hair, skin, shirt) have true Lab colours (``CHARACTER_LAB``); ΔE00 is measured on their fills
    (eroded by one pixel, so anti-aliased edges do not count);
  * colour photos from scikit-image (astronaut, chelsea, coffee, rocket): the right half of each, turned
    into a grey page of the same CIE lightness; the truth is that half in colour; ΔE00 over every pixel.

Each page is colorized with no reference and, for every strength, with two references:

  * matching: a colour picture of the same content, as ``--reference`` is meant to be used: the
    character's colour sheet (``synth_pages.character_reference``) for the synthetic pages, the left
    half of the same photo (same scene, other pixels) for a photo page;
  * mismatched: colours of other content: the astronaut photo (coffee for the astronaut page).

Models: the bundled ``colorrt-default`` (trained) and the synthetic random-weight test CNN of
``tests/synth_pages`` (``synthetic``), or ONNX paths. The whole page pipeline (``PageColorizer``) runs
for every strength; the model's output does not depend on the strength, so inference results are
cached per batch (an identical batch gives an identical output).

The recommended default is the strength with the smallest worst regret over the groups (model x page
set x reference): a matching reference keeps most of its gain, a mismatched one does bounded harm
(see :func:`choose`; the mean ΔE00 per strength is printed and written too).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.synth_pages
from common import print_table, write_results  # noqa: E402

from colorrt.engines.base import Engine  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
DEFAULT_STRENGTHS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"


class CachedEngine(Engine):
    """Wraps an engine; a batch seen before returns its stored output instead of running again."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.contract = inner.contract
        self.device = inner.device
        self.name = inner.name
        self.cache: dict[str, Any] = {}

    def _infer_impl(self, batch: Any) -> Any:
        array = np.ascontiguousarray(batch)
        key = f"{array.shape}{array.dtype}" + hashlib.sha1(array.tobytes()).hexdigest()
        if key not in self.cache:
            self.cache[key] = np.array(self.inner._infer_impl(batch), copy=True)
        return self.cache[key].copy()


def grey_page(photo: np.ndarray) -> np.ndarray:
    """A ``uint8`` grey page with the CIE lightness of a colour photo (its neutral grey)."""
    from colorrt.kernels.color import l_to_gray
    from colorrt.kernels.pipeline import luminance

    return np.round(l_to_gray(luminance(photo)) * 255).astype(np.uint8)


def test_set(pages: int) -> list[dict[str, Any]]:
    """The pages: ``name``, ``set``, grey ``image``, ``truth`` Lab and ``mask`` of the pixels measured,
    and the ``matching`` / ``mismatched`` reference images."""
    import skimage.data
    from scipy import ndimage
    from skimage.color import rgb2lab

    from tests import synth_pages

    sheet, astronaut = synth_pages.character_reference(256), skimage.data.astronaut()
    items = []
    for i, page in enumerate(synth_pages.make_chapter(pages, seed=7, size=(480, 340))):
        truth = np.zeros((*page.image.shape, 3), np.float64)
        mask, parts = np.zeros(page.image.shape, bool), {}
        for part, fill in page.character.items():
            parts[part] = inner = ndimage.binary_erosion(fill)
            truth[inner] = synth_pages.CHARACTER_LAB[part]
            mask |= inner
        items.append(
            {"name": f"manga {i}", "set": "synthetic manga", "image": page.image, "truth": truth}
            | {"mask": mask, "parts": parts, "matching": sheet, "mismatched": astronaut}
        )
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()[..., :3]
        half = photo.shape[1] // 2
        page, seen = np.ascontiguousarray(photo[:, half:]), np.ascontiguousarray(photo[:, :half])
        other = skimage.data.coffee() if name == "astronaut" else astronaut
        items.append(
            {"name": name, "set": "photos", "image": grey_page(page), "truth": rgb2lab(page)}
            | {"mask": np.ones(page.shape[:2], bool), "matching": seen, "mismatched": other}
        )
    return items


def scores(result: np.ndarray, item: dict[str, Any]) -> tuple[float, list[float]]:
    """Mean CIEDE2000 of a colorized page against its truth over the measured pixels, and the mean
    a, b of each character part (hair, skin, shirt; NaN where a page lacks it; none for photos)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab = rgb2lab(result[..., :3])
    mask, parts = item["mask"], item.get("parts")
    means = []
    for part in ("hair", "skin", "shirt") if parts else ():
        fill = parts.get(part)
        means += (
            lab[fill][:, 1:].mean(axis=0).tolist() if fill is not None and fill.sum() > 20 else [np.nan] * 2
        )
    return float(deltaE_ciede2000(lab[mask], item["truth"][mask]).mean()), means


def spread(means: list[list[float]]) -> float:
    """RMS distance (ab) of each page's character colours from their mean over the pages: how far a
    character's colours wander from page to page (the consistency ``--reference`` is for)."""
    array = np.array(means)
    deviation = array - np.nanmean(array, axis=0)
    return float(np.sqrt(np.nanmean(deviation**2) * 2))  # x2: per (a, b) pair, not per channel


def model_path(choice: str, folder: Path) -> tuple[Path, str]:
    """The ONNX file of ``default`` (bundled, trained), ``synthetic`` (test CNN) or a path."""
    if choice == "default":
        from colorrt.engines.registry import default_model_path

        return default_model_path(), "colorrt-default (bundled, trained), ONNX Runtime CPU FP32"
    if choice == "synthetic":
        from tests.synth_pages import colorizer_model

        path = colorizer_model(folder / "synthetic.onnx", 256, 32)
        return path, "synthetic 32-channel random CNN (tests/synth_pages), ONNX Runtime CPU FP32"
    return Path(choice), f"{choice}, ONNX Runtime CPU FP32"


def measure(engine: Engine, items: list[dict[str, Any]], strengths: list[float]) -> list[dict[str, Any]]:
    """ΔE00 per page, reference kind (none, matching, mismatched) and strength, with one engine."""
    from colorrt.pages.palette import Palette

    rows = [{"reference": "none", "strength": None, "scores": [run_one(engine, i, None, 0.0) for i in items]}]
    for kind in ("matching", "mismatched"):
        palettes = [Palette.from_image(item[kind]) for item in items]  # each page its own reference
        for strength in strengths:
            done = [run_one(engine, i, p, strength) for i, p in zip(items, palettes, strict=True)]
            rows.append({"reference": kind, "strength": strength, "scores": done})
            print(f"  {kind} {strength:g}: {np.mean([d for d, _ in done]):.2f}", flush=True)
    return rows


def run_one(engine: Engine, item: dict[str, Any], palette: Any, strength: float) -> tuple[float, list]:
    """:func:`scores` of one page colorized with ``palette`` at ``strength``."""
    from colorrt.pages.colorize import PageColorizer, PageOptions

    options = PageOptions(palette=palette, reference_strength=strength)
    return scores(PageColorizer(engine, 8, options).colorize(item["image"]).image, item)


def summarize(model: str, rows: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per page set, reference kind and strength: mean ΔE00 over the set's pages (and the
    character's colour spread across pages, on the synthetic ones)."""
    out = []
    for page_set in dict.fromkeys(item["set"] for item in items):
        chosen = [i for i, item in enumerate(items) if item["set"] == page_set]
        for row in rows:
            per_page = [row["scores"][i][0] for i in chosen]
            means = [row["scores"][i][1] for i in chosen]
            out.append(
                {
                    "model": model,
                    "pages": page_set,
                    "reference": row["reference"],
                    "strength": row["strength"],
                }
                | {"delta_e00": float(np.mean(per_page)), "per_page": per_page}
                | {"spread_ab": spread(means) if means[0] else None}
            )
    return out


def choose(rows: list[dict[str, Any]], strengths: list[float]) -> tuple[float, list[dict[str, Any]]]:
    """The strength whose worst regret is smallest, and per strength the mean ΔE00 and worst regret.

    A group is a (model, pages, reference) triple; its regret at a strength is its ΔE00 there minus
    its lowest ΔE00 at any strength. The mean ΔE00 alone is led by the matching references, whose
    best is the full pull (their truth is exactly the reference's colours on the pixels measured),
    and would pick the strength that paints other content in the reference's colours.
    """
    groups: dict[tuple, dict[float, float]] = {}
    for row in rows:
        if row["reference"] != "none":
            groups.setdefault((row["model"], row["pages"], row["reference"]), {})[row["strength"]] = row[
                "delta_e00"
            ]
    table = [
        {
            "strength": s,
            "mean_delta_e00": float(np.mean([g[s] for g in groups.values()])),
            "worst_regret": max(g[s] - min(g.values()) for g in groups.values()),
        }
        for s in strengths
    ]
    best = min(table, key=lambda row: row["worst_regret"])
    return best["strength"], table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="default,synthetic", help="default, synthetic or .onnx paths")
    parser.add_argument("--pages", type=int, default=6, help="synthetic manga pages")
    parser.add_argument("--strengths", default=DEFAULT_STRENGTHS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from colorrt.engines.onnxruntime import OnnxRuntimeEngine

    strengths = [float(s) for s in args.strengths.split(",")]
    items, rows, models = test_set(args.pages), [], {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for choice in args.models.split(","):
            path, models[choice] = model_path(choice, Path(tmp))
            print(f"{choice}: {models[choice]}", flush=True)
            with OnnxRuntimeEngine(path, threads=args.threads) as inner:
                rows += summarize(choice, measure(CachedEngine(inner), items, strengths), items)
    best, overall = choose(rows, strengths)
    print_table(rows, ["model", "pages", "reference", "strength", "delta_e00", "spread_ab"])
    print_table(overall, ["strength", "mean_delta_e00", "worst_regret"])
    print(f"smallest worst regret: strength {best:g}")
    path = write_results(
        "reference_strength",
        rows,
        args.out,
        models=models,
        strengths=strengths,
        overall=overall,
        chosen=best,
        flags=vars(args),
        seconds=time.perf_counter() - start,
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
