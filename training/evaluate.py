"""Quality report of the default model on the held-out photos, against two trivial baselines.

Each held-out photo (its stored copy, longest side 1024 px) is colorized the way colorrt's runtime
does it, with colorrt's own kernels (``colorrt.kernels.pipeline``) and ONNX Runtime engine: full-res
CIE L -> ``preprocess`` (resize to the contract's render shape, normalize) -> the ONNX model ->
``decode_ab`` -> ``merge`` (ab upsampled bilinearly, joined with the full-res L, Lab -> sRGB uint8).
The baselines go through the same ``merge`` with a constant ab: 0 ("no colour") and the mean ab of
the training photos ("mean ab"). Metrics, on the final 8-bit sRGB image against the original:

* ``psnr_ab``: PSNR of the a, b channels (scikit-image ``rgb2lab`` of both), peak 110 (dB, higher is better);
* ``ciede2000``: mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000``; lower is better);
* ``colourfulness``: Hasler and Suesstrunk (2003) M of the RGB image (0 = grey; the originals' is listed).

Run: ``python -m training.evaluate [--model colorrt/assets/colorrt-default.onnx] [--samples]``.
Writes ``docs/default_model_quality.json`` (and ``docs/images/default_model_samples.png``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.color import deltaE_ciede2000, rgb2lab

from colorrt.engines.registry import load_engine
from colorrt.kernels.pipeline import decode_ab, luminance, merge, preprocess
from training import data
from training.prepare_data import colourfulness

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "colorrt" / "assets" / "colorrt-default.onnx"
REPORT = REPO / "docs" / "default_model_quality.json"
SAMPLES = REPO / "docs" / "images" / "default_model_samples.png"
AB_PEAK = 110.0  # CIE ab units: the PSNR peak (the contract's ab scale)
METHODS = ("no colour (ab = 0)", "mean ab of training set", "colorrt-default")


def colorize_ab(engine, L: np.ndarray) -> np.ndarray:  # noqa: ANN001 (an colorrt Engine)
    """The model's ab (2, h, w) at render size for a full-res L plane, as the runtime computes it."""
    batch = preprocess([L], engine.contract)
    return decode_ab(engine.infer(batch), engine.contract)[0]


def scores(rgb_pred: np.ndarray, lab_true: np.ndarray) -> dict[str, float]:
    """ab PSNR, mean CIEDE2000 and colourfulness of an 8-bit prediction against the true Lab."""
    lab_pred = rgb2lab(rgb_pred)
    mse = float(((lab_pred[..., 1:] - lab_true[..., 1:]) ** 2).mean())
    return {
        "psnr_ab": 10 * math.log10(AB_PEAK**2 / max(mse, 1e-12)),
        "ciede2000": float(deltaE_ciede2000(lab_true, lab_pred).mean()),
        "colourfulness": colourfulness(rgb_pred),
    }


def evaluate(model: Path, ids: list[str], mean_ab: np.ndarray) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """Per-image and mean scores of the model and both baselines; also the images (for the figure)."""
    engine = load_engine(model, backend="onnxruntime", device="cpu")
    per_image, outputs = {}, {}
    for ident in ids:
        rgb = data.load_rgb(ident)
        L = luminance(rgb)
        lab_true = rgb2lab(rgb)
        constant = np.ones((2, 4, 4), np.float32)
        preds = {
            METHODS[0]: merge(L, 0 * constant),
            METHODS[1]: merge(L, constant * mean_ab.astype(np.float32)[:, None, None]),
            METHODS[2]: merge(L, colorize_ab(engine, L)),
        }
        per_image[ident] = {name: scores(pred, lab_true) for name, pred in preds.items()}
        per_image[ident]["original colourfulness"] = colourfulness(rgb)
        outputs[ident] = [rgb, preds[METHODS[2]], merge(L, 0 * constant)]
        print(ident, json.dumps({k: v for k, v in per_image[ident].items()}, default=_short))
    engine.close()
    means = {
        name: {
            m: float(np.mean([per_image[i][name][m] for i in ids]))
            for m in ("psnr_ab", "ciede2000", "colourfulness")
        }
        for name in METHODS
    }
    means["original photos"] = {
        "colourfulness": float(np.mean([per_image[i]["original colourfulness"] for i in ids]))
    }
    return {"mean": means, "per_image": per_image}, outputs


def _short(value: float) -> float:
    return round(value, 2)


def table(means: dict) -> str:
    """Markdown table of the mean scores."""
    lines = [
        "| method | ab PSNR (dB) ↑ | CIEDE2000 ↓ | colourfulness |",
        "|---|---:|---:|---:|",
    ]
    for name in METHODS:
        s = means[name]
        lines.append(f"| {name} | {s['psnr_ab']:.2f} | {s['ciede2000']:.2f} | {s['colourfulness']:.1f} |")
    lines.append(f"| original photos (reference) | – | – | {means['original photos']['colourfulness']:.1f} |")
    return "\n".join(lines)


def figure_ids(test: list[str], count: int = 6) -> list[str]:
    """Evenly spaced picks from the sorted held-out list (a fixed rule, not a choice of good results)."""
    step = max(1, len(test) // count)
    return sorted(test)[::step][:count]


def sample_figure(outputs: dict[str, list[np.ndarray]], ids: list[str], path: Path, width: int = 200) -> None:
    """Rows of grey input | colorrt-default | ground truth for the given held-out photos."""
    header, gap = 18, 4
    rows = []
    for ident in ids:
        rgb, pred, grey = outputs[ident]
        h = round(rgb.shape[0] * width / rgb.shape[1])
        rows.append(
            [Image.fromarray(x).resize((width, h), Image.Resampling.LANCZOS) for x in (grey, pred, rgb)]
        )
    total_h = header + sum(r[0].height + gap for r in rows)
    sheet = Image.new("RGB", (3 * width + 2 * gap, total_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, title in enumerate(("grey input", "colorrt-default", "ground truth")):
        draw.text((k * (width + gap) + 4, 3), title, fill="black")
    y = header
    for row in rows:
        for k, tile in enumerate(row):
            sheet.paste(tile, (k * (width + gap), y))
        y += row[0].height + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--samples", action="store_true", help=f"also write {SAMPLES.relative_to(REPO)}")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    split = data.load_split()
    mean_ab = data.mean_ab(split["train"])
    report, outputs = evaluate(args.model, split[args.split], mean_ab)
    report["split"] = args.split
    report["images"] = split[args.split]
    report["mean_ab_train"] = [float(v) for v in mean_ab]
    report["model"] = str(args.model.relative_to(REPO) if args.model.is_relative_to(REPO) else args.model)
    report["protocol"] = __doc__.split("\n\n")[1].replace("\n", " ")
    report["table"] = table(report["mean"])
    print(report["table"])
    if args.split == "test":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
        if args.samples:
            sample_figure(outputs, figure_ids(split["test"]), SAMPLES)


if __name__ == "__main__":
    main()
