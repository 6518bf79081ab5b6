"""Train colorrt's bundled default colorizer on CPU (deterministic, fixed seeds, 2 threads).

ECCV16-style: the U-Net (``colorrt.models.default.DefaultColorizer``) classifies each 4x4 block's
ab into gamut bins; the loss is cross-entropy against a soft encoding of the true ab (5 nearest
bins, Gaussian sigma 5), optionally weighted by ECCV16's class-rebalancing weights from the
training set's ab prior (``training.data.PRIOR_MIX``; 1.0 = no rebalancing, which the shipped model
uses, see the note there). The decoded colour is the annealed mean, which makes a classifier's
output more vivid than a regression's. After training, the temperature is chosen on the validation
photos (never the test photos) by a rule fixed in advance: the paper's T = 0.38 unless it fails to
beat both trivial baselines there on ab PSNR and CIEDE2000, else the smallest T on the grid that does.

Run: ``python -m training.prepare_data --fetch`` first, then ``python -m training.train_default``.
Writes ``training/runs/default/`` (checkpoints, log; git-ignored) and ``final.pth``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab
from torch.nn import functional as F

from colorrt.contract import PRESETS
from colorrt.models.default import AB_NORM, DefaultColorizer
from training import data

RUNS = Path(__file__).resolve().parent / "runs" / "default"
SEED = 0
CROPS = (112, 128, 144)  # pixels: crop side per batch (multiples of 16)
TEMPERATURES = (0.38, 0.45, 0.55, 0.7, 0.85, 1.0)  # annealed-mean grid; 0.38 is the paper's choice
CONTRACT = PRESETS["colorrt-default"]


def seed_everything(seed: int) -> np.random.Generator:
    """Fix every random source and ask torch for deterministic kernels."""
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return np.random.default_rng(seed)


def soft_targets(
    ab: torch.Tensor, centers: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-encoded bin targets (N, Q, h, w) and per-pixel rebalancing weights (N, h, w).

    ``ab`` is (N, 2, h, w) in CIE units.
    """
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centers) ** 2
    near_d2, near = d2.topk(data.SOFT_NEIGHBOURS, dim=1, largest=False)
    soft = torch.softmax(-near_d2 / (2 * data.SOFT_SIGMA**2), dim=1)
    target = torch.zeros_like(d2).scatter_(1, near, soft)
    n, _, h, w = ab.shape
    target = target.reshape(n, h, w, -1).permute(0, 3, 1, 2)
    return target, weights[near[:, 0]].reshape(n, h, w)


def loss_fn(model: DefaultColorizer, lab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Rebalanced soft cross-entropy of the model's bin logits on a Lab batch (N, 3, H, W)."""
    x = lab[:, :1] * CONTRACT.input_scale + CONTRACT.input_offset
    logits = model.logits(x)
    ab_small = F.avg_pool2d(lab[:, 1:], 4)
    target, pixel_w = soft_targets(ab_small, model.bin_centers, weights)
    ce = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    return (ce * pixel_w).mean()


def render_lab(rgb: np.ndarray) -> np.ndarray:
    """Lab of a photo resized to the contract's render shape (what the runtime feeds the model)."""
    from PIL import Image

    h, w = CONTRACT.render_shape(*rgb.shape[:2])
    small = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BICUBIC))
    return rgb2lab(small).astype(np.float32)


@torch.no_grad()
def val_scores(
    model: DefaultColorizer, labs: list[np.ndarray], mean_ab: np.ndarray
) -> dict[str, dict[str, float]]:
    """ab PSNR and mean CIEDE2000 at render size on validation photos, per temperature and baseline."""
    model.eval()
    logits = [model.logits(torch.from_numpy(lab[None, None, ..., 0] / 50.0 - 1.0)) for lab in labs]
    preds: dict[str, list[np.ndarray]] = {"zero": [], "mean": []}
    for lab, lg in zip(labs, logits, strict=True):
        preds["zero"].append(np.zeros_like(lab[..., 1:]))
        preds["mean"].append(np.broadcast_to(mean_ab, lab[..., 1:].shape))
        for t in TEMPERATURES:
            model.temperature.fill_(t)
            ab = F.interpolate(model.decode(lg), size=lab.shape[:2], mode="bilinear", align_corners=False)
            preds.setdefault(f"T{t}", []).append(ab[0].permute(1, 2, 0).numpy() * AB_NORM)
    model.train()
    return {name: _scores(labs, abs_) for name, abs_ in preds.items()}


def _scores(labs: list[np.ndarray], abs_: list[np.ndarray]) -> dict[str, float]:
    psnr, de = [], []
    for lab, ab in zip(labs, abs_, strict=True):
        mse = float(((lab[..., 1:] - ab) ** 2).mean())
        psnr.append(10 * math.log10(AB_NORM**2 / max(mse, 1e-12)))  # peak = 110 ab units
        pred = rgb2lab(np.clip(lab2rgb(np.concatenate([lab[..., :1], ab], axis=-1)), 0, 1))
        de.append(float(deltaE_ciede2000(rgb2lab(np.clip(lab2rgb(lab), 0, 1)), pred).mean()))
    return {"psnr_ab": float(np.mean(psnr)), "ciede2000": float(np.mean(de))}


def choose_temperature(scores: dict[str, dict[str, float]]) -> float:
    """T = 0.38 unless it fails to beat both baselines on val (ab PSNR and CIEDE2000);
    else the smallest T on the grid that does."""
    best_psnr = max(scores["zero"]["psnr_ab"], scores["mean"]["psnr_ab"])
    best_de = min(scores["zero"]["ciede2000"], scores["mean"]["ciede2000"])
    for t in TEMPERATURES:
        s = scores[f"T{t}"]
        if s["psnr_ab"] > best_psnr and s["ciede2000"] < best_de:
            return t
    return TEMPERATURES[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=800)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--val-every", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--max-minutes", type=float, default=45.0, help="safety stop (logged) on a slow machine"
    )
    parser.add_argument(
        "--stop-at", type=int, default=0, help="end after this iteration (the schedule still spans --iters)"
    )
    args = parser.parse_args()

    start = time.time()
    torch.set_num_threads(args.threads)
    rng = seed_everything(SEED)
    RUNS.mkdir(parents=True, exist_ok=True)
    split = data.load_split()
    model = DefaultColorizer()
    centers = model.bin_centers.numpy().astype(np.float64)
    prior = data.ab_prior(split["train"], centers)
    weights = torch.from_numpy(data.rebalance_weights(prior)).float()
    mean_ab = data.mean_ab(split["train"])
    pool = data.TrainPool.load(split["train"], min_side=max(CROPS))
    val_labs = [render_lab(data.load_rgb(i)) for i in split["val"]]
    print(
        f"data ready in {time.time() - start:.0f} s: "
        f"{len(split['train'])} train photos, {model.num_bins} bins"
    )

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = 50
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda i: (
            min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(i, args.iters) / args.iters))
        ),
    )
    log = (RUNS / "log.jsonl").open("w")
    train_start, running, done = time.time(), [], 0
    for it in range(1, args.iters + 1):
        crop = int(CROPS[rng.integers(len(CROPS))])
        lab = torch.from_numpy(pool.batch(rng, args.batch, crop))
        loss = loss_fn(model, lab, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if it % args.val_every == 0 or it == args.iters:
            scores = val_scores(model, val_labs, mean_ab)
            entry = {
                "iter": it,
                "loss": float(np.mean(running)),
                "minutes": (time.time() - train_start) / 60,
                **scores,
            }
            running = []
            print(json.dumps(entry), flush=True)
            log.write(json.dumps(entry) + "\n")
            log.flush()
            torch.save({"model": model.state_dict(), "iter": it}, RUNS / "last.pth")
        done = it
        if it == args.stop_at:
            print(f"stopping at iteration {it} as asked (--stop-at)", flush=True)
            break
        if (time.time() - train_start) / 60 > args.max_minutes:
            print(f"stopping early at iteration {it}: over {args.max_minutes} minutes", flush=True)
            break
    train_minutes = (time.time() - train_start) / 60

    scores = val_scores(model, val_labs, mean_ab)
    temperature = choose_temperature(scores)
    model.temperature.fill_(temperature)
    torch.save(model.state_dict(), RUNS / "final.pth")
    facts = {
        "architecture": "colorrt-default (DefaultColorizer)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "bins": model.num_bins,
        "temperature": temperature,
        "temperature_rule": choose_temperature.__doc__,
        "val_scores": scores,
        "train_photos": len(split["train"]),
        "val_photos": len(split["val"]),
        "test_photos": len(split["test"]),
        "iterations": done,
        "iterations_planned": args.iters,
        "batch": args.batch,
        "crops": list(CROPS),
        "scales": list(data.TRAIN_SCALES),
        "lr": args.lr,
        "prior_mix": data.PRIOR_MIX,
        "seed": SEED,
        "threads": args.threads,
        "train_minutes": round(train_minutes, 1),
        "total_minutes": round((time.time() - start) / 60, 1),
        "mean_ab_train": [float(v) for v in mean_ab],
        "torch": torch.__version__,
    }
    (RUNS / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    print(json.dumps({k: v for k, v in facts.items() if k != "val_scores"}, indent=1))


if __name__ == "__main__":
    main()
