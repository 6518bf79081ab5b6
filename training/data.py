"""Data helpers shared by training and evaluation of the default model (photos, Lab, ab bins).

Images come from ``training/data/images`` (made by ``prepare_data.py``); the split from
``training/split.json``. Colour maths uses scikit-image (``rgb2lab``), the reference that colorrt's
own kernels are tested against.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

ROOT = Path(__file__).resolve().parent
IMAGES = ROOT / "data" / "images"
SPLIT = ROOT / "split.json"
TRAIN_SCALES = (192, 256, 320)  # pixels: longest side of the pre-scaled training copies (render: 256)
PRIOR_SIGMA = 5.0  # CIE ab units: Gaussian smoothing of the empirical ab prior (ECCV16)
# lambda of ECCV16's rebalancing, weight = 1 / ((1 - lambda) * prior + lambda / Q). The paper's 0.5 was
# tried first: after 350 iterations it painted grass, rock and sky red/orange (val CIEDE2000 28 against
# 20.5 for the grey baseline), so the shipped model trains with 1.0 (no rebalancing, plain soft
# cross-entropy) and gets its vividness from the annealed mean alone.
PRIOR_MIX = 1.0
SOFT_NEIGHBOURS = 5  # bins sharing each soft-encoded target (ECCV16)
SOFT_SIGMA = 5.0  # CIE ab units: Gaussian width of the soft encoding (ECCV16)


def load_split() -> dict[str, list[str]]:
    """{"train": ids, "val": ids, "test": ids, "heldout_<sources>": ids, ...} from training/split.json.

    "test" is a random split of the sources trained on; each "heldout_*" split is whole sources
    that training never sees (source-held-out evaluation)."""
    split = json.loads(SPLIT.read_text())
    return {k: v for k, v in split.items() if isinstance(v, list)}


def never_trained_on(split: dict[str, list[str]]) -> set[str]:
    """Ids of the test and every source-held-out split (never trained on, never used for choices)."""
    return {i for k, v in split.items() if k == "test" or k.startswith("heldout_") for i in v}


def load_rgb(ident: str, long_side: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 sRGB photo, optionally downscaled (Lanczos) to ``long_side`` pixels."""
    image = Image.open(IMAGES / f"{ident}.png").convert("RGB")
    if long_side is not None and max(image.size) > long_side:
        scale = long_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(image)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 CIE Lab (D65) of an 8-bit sRGB image."""
    return rgb2lab(rgb).astype(np.float32)


def mean_ab(ids: list[str], long_side: int = 256) -> np.ndarray:
    """Mean CIE (a, b) over every pixel of the given photos at ``long_side`` (the trivial baseline)."""
    total, count = np.zeros(2), 0
    for ident in ids:
        ab = to_lab(load_rgb(ident, long_side))[..., 1:].reshape(-1, 2)
        total += ab.sum(axis=0, dtype=np.float64)
        count += len(ab)
    return total / count


@dataclass
class TrainPool:
    """Every training photo in Lab at each of TRAIN_SCALES, kept in memory for fast cropping."""

    labs: list[list[np.ndarray]]  # [photo][scale] -> (H, W, 3) float32 Lab

    @classmethod
    def load(cls, ids: list[str], min_side: int) -> TrainPool:
        """Pre-scale and convert the photos ``ids``; a scale is raised where the shorter side would
        fall below ``min_side`` pixels (panoramas), so every copy holds the largest crop."""
        labs = []
        for ident in ids:
            full = load_rgb(ident)
            aspect = max(full.shape[:2]) / min(full.shape[:2])
            labs.append([to_lab(load_rgb(ident, max(s, math.ceil(min_side * aspect)))) for s in TRAIN_SCALES])
        return cls(labs)

    def batch(self, rng: np.random.Generator, size: int, crop: int) -> np.ndarray:
        """(size, 3, crop, crop) float32 Lab crops: random photo, scale, position, horizontal flip."""
        out = np.empty((size, 3, crop, crop), np.float32)
        for k in range(size):
            photo = self.labs[rng.integers(len(self.labs))]
            fitting = [lab for lab in photo if min(lab.shape[:2]) >= crop]
            lab = fitting[rng.integers(len(fitting))]
            y = rng.integers(lab.shape[0] - crop + 1)
            x = rng.integers(lab.shape[1] - crop + 1)
            patch = lab[y : y + crop, x : x + crop]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[k] = patch.transpose(2, 0, 1)
        return out


def ab_prior(ids: list[str], centers: np.ndarray, long_side: int = 256) -> np.ndarray:
    """Empirical probability of each ab bin over the photos (nearest bin), Gaussian-smoothed."""
    counts = np.zeros(len(centers))
    for ident in ids:
        ab = to_lab(load_rgb(ident, long_side))[..., 1:].reshape(-1, 2)
        nearest = np.argmin(((ab[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        counts += np.bincount(nearest, minlength=len(centers))
    prior = counts / counts.sum()
    d2 = ((centers[:, None, :] - centers[None]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * PRIOR_SIGMA**2))
    smooth = kernel @ prior
    return smooth / smooth.sum()


def rebalance_weights(prior: np.ndarray, mix: float = PRIOR_MIX) -> np.ndarray:
    """ECCV16 class-rebalancing weight per bin, normalized so its expectation under the prior is 1."""
    weights = 1.0 / ((1 - mix) * prior + mix / len(prior))
    return weights / (prior * weights).sum()
