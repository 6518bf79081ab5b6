"""Quality report of the default model(s) on photos never trained on, against two trivial baselines.

Each photo of a split (its stored copy downscaled to longest side 512 px) is turned grey as a user's
old photo would be (its CIE L as 8-bit sRGB grey, a = b = 0) and colorized with colorrt's own
``Runtime`` on ONNX Runtime / CPU, exactly what ``colorrt colorize`` does. The baselines join the
same L with a constant ab through colorrt's ``merge``: 0 ("grey") and the mean ab of the training
photos ("mean ab"). Metrics, on the 8-bit sRGB result against the original (scikit-image CIE Lab):

* ``ciede2000``: mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000``; lower is better);
* ``psnr_ab``: PSNR of the a, b channels, peak 110 (dB, higher is better);
* ``colourfulness``: Hasler and Suesstrunk (2003) M of the RGB image; ``colour_ratio`` = mean M of
  the results / mean M of the originals (1 = as colourful as the truth, 0 = grey);
* ``psnr_L``: PSNR of CIE L against the original's, peak 100 (the runtime must keep the lightness).

Splits: ``val`` (the only one any choice was made on), ``test`` (random, same sources as training),
and each ``heldout_*`` split (whole sources that training never saw: source-held-out).

Run: ``python -m training.evaluate --model v1=training/runs/v1.onnx --model v2=PATH --samples``
(v1: a copy of the first bundled model; default: the bundled model). Writes
``docs/default_model_quality.json`` (with ``--samples`` also ``docs/images/default_model_samples.png``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab

from colorrt.kernels.pipeline import luminance, merge
from colorrt.runtime import Runtime
from training import data
from training.prepare_data import colourfulness

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "colorrt" / "assets" / "colorrt-default.onnx"
REPORT = REPO / "docs" / "default_model_quality.json"
SAMPLES = REPO / "docs" / "images" / "default_model_samples.png"
AB_PEAK = 110.0  # CIE ab units: the PSNR peak (the contract's ab scale)
EVAL_SIDE = 512  # pixels: longest side of the evaluated copies
GREY, MEAN_AB = "grey (ab = 0)", "mean ab of training set"
METRICS = ("ciede2000", "psnr_ab", "colourfulness", "psnr_L")


def grey_input(lab_true: np.ndarray) -> np.ndarray:
    """The photo's CIE L as an 8-bit sRGB grey image (H, W): what a user's grey photo holds."""
    lab = np.concatenate([lab_true[..., :1], np.zeros_like(lab_true[..., 1:])], axis=-1)
    return np.round(np.clip(lab2rgb(lab)[..., 0], 0, 1) * 255).astype(np.uint8)


def scores(rgb_pred: np.ndarray, lab_true: np.ndarray) -> dict[str, float]:
    """CIEDE2000, ab PSNR, colourfulness and L PSNR of an 8-bit prediction against the true Lab."""
    lab_pred = rgb2lab(rgb_pred)
    mse_ab = float(((lab_pred[..., 1:] - lab_true[..., 1:]) ** 2).mean())
    mse_l = float(((lab_pred[..., 0] - lab_true[..., 0]) ** 2).mean())
    return {
        "ciede2000": float(deltaE_ciede2000(lab_true, lab_pred).mean()),
        "psnr_ab": 10 * math.log10(AB_PEAK**2 / max(mse_ab, 1e-12)),
        "colourfulness": colourfulness(rgb_pred),
        "psnr_L": 10 * math.log10(100.0**2 / max(mse_l, 1e-12)),
    }


def evaluate_split(runtimes: dict[str, Runtime], ids: list[str], mean_ab: np.ndarray) -> tuple[dict, dict]:
    """Per-image scores and means of every model and both baselines; also the images (for figures)."""
    per_image, images = {}, {}
    tint = np.asarray(mean_ab, np.float32)[:, None, None]
    for ident in ids:
        rgb = data.load_rgb(ident, EVAL_SIDE)
        lab_true = rgb2lab(rgb)
        grey = grey_input(lab_true)
        L = luminance(np.repeat(grey[..., None], 3, axis=2))
        preds = {GREY: merge(L, np.zeros((2, 1, 1), np.float32)), MEAN_AB: merge(L, tint)}
        preds.update({name: rt.colorize(grey) for name, rt in runtimes.items()})
        per_image[ident] = {name: scores(pred, lab_true) for name, pred in preds.items()}
        per_image[ident]["truth colourfulness"] = colourfulness(rgb)
        images[ident] = {"truth": rgb, **preds}
        print(
            ident, {k: round(v["ciede2000"], 2) for k, v in per_image[ident].items() if isinstance(v, dict)}
        )
    truth_m = float(np.mean([per_image[i]["truth colourfulness"] for i in ids]))
    means = {}
    for name in (GREY, MEAN_AB, *runtimes):
        means[name] = {m: float(np.mean([per_image[i][name][m] for i in ids])) for m in METRICS}
        means[name]["colour_ratio"] = means[name]["colourfulness"] / truth_m
        means[name]["beats_grey_photos"] = sum(
            per_image[i][name]["ciede2000"] < per_image[i][GREY]["ciede2000"] for i in ids
        )
    means["truth"] = {"colourfulness": truth_m}
    return {"photos": len(ids), "mean": means, "per_image": per_image}, images


def table(report: dict) -> str:
    """Markdown table: one row per split and method."""
    lines = [
        "| split (photos) | method | CIEDE2000 ↓ | ab PSNR (dB) ↑ | colourfulness (× truth) | L PSNR (dB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for split, result in report["splits"].items():
        for name, s in result["mean"].items():
            if name == "truth":
                continue
            lines.append(
                f"| {split} ({result['photos']}) | {name} | {s['ciede2000']:.2f} | {s['psnr_ab']:.2f} | "
                f"{s['colourfulness']:.1f} ({s['colour_ratio']:.2f}×) | {s['psnr_L']:.1f} |"
            )
    return "\n".join(lines)


def sample_figure(
    rows: list[dict[str, np.ndarray]], columns: list[str], path: Path, width: int = 180
) -> None:
    """Rows of truth | grey | each model, for the given photos."""
    header, gap = 16, 4
    tiles = []
    for images in rows:
        h = round(images["truth"].shape[0] * width / images["truth"].shape[1])
        tiles.append(
            [Image.fromarray(images[c]).resize((width, h), Image.Resampling.LANCZOS) for c in columns]
        )
    sheet = Image.new(
        "RGB", (len(columns) * (width + gap) - gap, header + sum(r[0].height + gap for r in tiles)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for k, title in enumerate(columns):
        draw.text((k * (width + gap) + 4, 2), title, fill="black")
    y = header
    for row in tiles:
        for k, tile in enumerate(row):
            sheet.paste(tile, (k * (width + gap), y))
        y += row[0].height + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", default=[], help="NAME=PATH (repeatable); default: the asset"
    )
    parser.add_argument("--splits", nargs="*", default=None, help="default: val, test and every heldout_*")
    parser.add_argument("--samples", action="store_true", help=f"also write {SAMPLES.relative_to(REPO)}")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    models = dict(m.split("=", 1) for m in args.model) or {"colorrt-default": str(DEFAULT_MODEL)}
    runtimes = {
        name: Runtime(path, backend="onnxruntime", device="cpu", threads=1) for name, path in models.items()
    }
    split = data.load_split()
    names = args.splits or ["val", "test", *sorted(k for k in split if k.startswith("heldout_"))]
    mean_ab = data.mean_ab(split["train"])
    report = {
        "protocol": " ".join(__doc__.split("\n\n")[1].split()),
        "models": models,
        "eval_side": EVAL_SIDE,
    }
    report["mean_ab_train"] = [float(v) for v in mean_ab]
    report["splits"], figure_rows = {}, []
    for name in names:
        report["splits"][name], images = evaluate_split(runtimes, split[name], mean_ab)
        if name.startswith("heldout_"):
            picks = sorted(split[name])[:: max(1, len(split[name]) // 3)][:3]  # evenly spaced, not chosen
            figure_rows += [images[i] for i in picks]
    report["table"] = table(report)
    print(report["table"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    if args.samples and figure_rows:
        sample_figure(figure_rows, ["truth", GREY, *models], SAMPLES)


if __name__ == "__main__":
    main()
