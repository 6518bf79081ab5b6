"""Reference palettes: colour statistics of a reference image, and transfer of them onto panels.

A character keeps its colours across pages when each of its tones gets the same chroma everywhere.
Manga draws a character's parts with fixed grey tones, so the reference's colours are summarised per
*lightness band*: the reference's pixels are clustered by CIE L (1-D k-means), and each band keeps
the mean and spread of its a, b. A panel's predicted chroma is then matched band by band
(Reinhard-style mean / standard-deviation transfer in ab, with soft band membership by L): a pixel
whose lightness is near a reference band moves to that band's colour statistics; a pixel far from
every band keeps the model's colour. For hint-taking models (SIGGRAPH17), the palette also gives
sparse global hints.

Palette files are JSON: ``{"format": "colorrt.palette", "version": 1, "bands": [{"L", "a", "b",
"std_a", "std_b", "weight"}, ...]}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.atomic import write_text
from colorrt.errors import InputError

PALETTE_FORMAT = "colorrt.palette"
PALETTE_VERSION = 1
MIN_STD = 2.0  # ab units: floor of a band's spread, so flat regions are not amplified from noise
MAX_STD_RATIO = 2.0  # a panel's chroma spread is scaled by at most this factor
DEFAULT_REFERENCE_STRENGTH = 0.4  # measured: benchmarks/bench_reference_strength.py, docs/pages.md
LUT_STEPS = 1001  # chroma maps are tabulated over CIE L 0..100 in steps of 0.1
_LUT_LEVELS = np.linspace(0.0, 100.0, LUT_STEPS)


def check_reference_strength(strength: float) -> None:
    """Refuse a reference strength outside 0..1 (or not a number)."""
    if not 0.0 <= strength <= 1.0:
        raise InputError(
            f"reference strength must be in 0..1, got {strength}",
            "0 ignores the reference, 1 applies its colours fully; "
            f"the default {DEFAULT_REFERENCE_STRENGTH:g} keeps the model's colours in play",
        )


@dataclass(frozen=True)
class ChromaMap:
    """A per-lightness affine map of chroma, ``a' = gain_a(L) a + offset_a(L)`` (and the same for b),
    tabulated over L (``(2, LUT_STEPS)`` arrays): one panel's palette transfer."""

    gain: np.ndarray
    offset: np.ndarray

    @classmethod
    def identity(cls) -> ChromaMap:
        """The map that changes nothing."""
        return cls(np.ones((2, LUT_STEPS), np.float32), np.zeros((2, LUT_STEPS), np.float32))

    def apply(self, ab: np.ndarray, lightness: np.ndarray) -> np.ndarray:
        """``(2, h, w)`` float32 mapped a, b for pixels of lightness ``(h, w)`` (any resolution)."""
        index = np.clip(np.rint(np.asarray(lightness, np.float32) * 10), 0, LUT_STEPS - 1).astype(np.intp)
        out = np.empty(np.shape(ab), np.float32)
        for c in range(2):
            np.multiply(ab[c], self.gain[c][index], out=out[c])
            out[c] += self.offset[c][index]
        return out


@dataclass(frozen=True)
class Palette:
    """Per lightness band: L centre, ab mean, ab standard deviation and pixel share.

    Attributes:
        centers: ``(K,)`` CIE L of each band, ascending.
        mean: ``(K, 2)`` mean a, b.
        std: ``(K, 2)`` standard deviation of a, b.
        weight: ``(K,)`` share of the reference's pixels in each band (sums to 1).
        softness: L distance (CIE units) over which band membership fades (Gaussian sigma).
    """

    centers: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    softness: float = 6.0

    def __post_init__(self) -> None:
        k = len(self.centers)
        if k == 0 or self.mean.shape != (k, 2) or self.std.shape != (k, 2) or self.weight.shape != (k,):
            raise InputError(
                f"palette arrays disagree: {k} centres, mean {self.mean.shape}, std {self.std.shape}, "
                f"weight {self.weight.shape}; expected (K,), (K, 2), (K, 2), (K,) with K >= 1"
            )

    @classmethod
    def from_lab(cls, lab: np.ndarray, bands: int = 8, white: float = 93.0) -> Palette:
        """Palette of Lab pixels ``(..., 3)``; near-white pixels (paper, L >= ``white``) are left out."""
        pixels = np.asarray(lab, np.float64).reshape(-1, 3)
        pixels = pixels[pixels[:, 0] < white]
        if len(pixels) < bands:
            raise InputError(
                f"the reference has {len(pixels)} pixels darker than L={white}; a palette needs some colour",
                "use a reference image that shows the characters in colour (not a blank or white image)",
            )
        stride = max(1, len(pixels) // 200_000)  # k-means on a subsample: the centres need no more
        centers = _kmeans_1d(pixels[::stride, 0], bands)
        member = np.argmin(np.abs(pixels[:, :1] - centers[None, :]), axis=1)
        keep = [k for k in range(len(centers)) if np.any(member == k)]
        mean = np.array([pixels[member == k, 1:].mean(axis=0) for k in keep])
        std = np.array([np.maximum(pixels[member == k, 1:].std(axis=0), MIN_STD) for k in keep])
        weight = np.array([np.mean(member == k) for k in keep])
        return cls(centers[keep], mean, std, weight / weight.sum())

    @classmethod
    def from_image(cls, image: np.ndarray, bands: int = 8) -> Palette:
        """Palette of a colour reference image (any layout ``read_image`` returns; alpha is dropped)."""
        from colorrt.kernels.color import rgb_to_lab
        from colorrt.kernels.pipeline import image_to_rgb_float

        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        return cls.from_lab(rgb_to_lab(image_to_rgb_float(image)), bands)

    def to_dict(self) -> dict:
        """Plain-JSON form (see the module docstring)."""
        bands = [
            {"L": c, "a": m[0], "b": m[1], "std_a": s[0], "std_b": s[1], "weight": w}
            for c, m, s, w in zip(
                self.centers.tolist(),
                self.mean.tolist(),
                self.std.tolist(),
                self.weight.tolist(),
                strict=True,
            )
        ]
        return {
            "format": PALETTE_FORMAT,
            "version": PALETTE_VERSION,
            "softness": self.softness,
            "bands": bands,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Palette:
        """Palette from :meth:`to_dict` output; InputError naming the problem otherwise."""
        if not isinstance(data, dict) or data.get("format") != PALETTE_FORMAT:
            raise InputError(
                f"not a colorrt palette (expected a JSON object with format {PALETTE_FORMAT!r})",
                "make one with colorrt.pages.palette.Palette.from_image(...).save(path)",
            )
        if int(data.get("version", 0)) > PALETTE_VERSION:
            raise InputError(
                f"palette version {data['version']} is newer than this colorrt reads", "upgrade colorrt"
            )
        try:
            bands = sorted(data["bands"], key=lambda band: float(band["L"]))
            return cls(
                centers=np.array([float(b["L"]) for b in bands]),
                mean=np.array([[float(b["a"]), float(b["b"])] for b in bands]).reshape(-1, 2),
                std=np.array([[float(b.get("std_a", 10)), float(b.get("std_b", 10))] for b in bands]).reshape(
                    -1, 2
                ),
                weight=np.array([float(b.get("weight", 1 / len(bands))) for b in bands]),
                softness=float(data.get("softness", 6.0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(
                f"palette is malformed ({type(e).__name__}: {e})",
                'each band needs numbers "L", "a", "b" (optional "std_a", "std_b", "weight")',
            ) from e

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the palette as JSON (atomically)."""
        path = Path(path)
        write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    def membership(self, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Soft band membership of each pixel: ``(K, ...)`` weights summing to 1 over bands, and
        ``(...)`` confidence in 0..1 (1 on a band centre, falling to 0 far from every band)."""
        closeness = self._closeness(lightness)
        total = closeness.sum(axis=0)
        return closeness / np.maximum(total, 1e-12), np.clip(closeness.max(axis=0), 0.0, 1.0)

    def fit(
        self, ab: np.ndarray, lightness: np.ndarray, valid: np.ndarray | None = None, strength: float = 1.0
    ) -> ChromaMap:
        """The transfer that matches one panel's chroma to the palette, band by band.

        For each band present in the panel, the panel's chroma mean and spread there (weighted by
        soft band membership and ``valid``) are mapped to the band's: ``a' = mu_ref + r (a - mu)``
        with ``r = std_ref / std``. Blended over bands by membership and faded by the distance to the
        nearest band, this is an affine map of a, b per lightness, returned as a lookup table so it
        can be fitted at render size and applied at full resolution.

        Args:
            ab: ``(2, h, w)`` CIE a, b predicted for the panel.
            lightness: ``(h, w)`` CIE L of the same pixels.
            valid: ``(h, w)`` weights (0..1) of the pixels whose statistics count (panel content, not
                padding or paper); all pixels when None.
            strength: 0 keeps the model's chroma, 1 applies the full transfer.
        """
        ab = np.asarray(ab, np.float32)
        share, _ = self.membership(lightness)
        weights = share if valid is None else share * np.asarray(valid, np.float32)[None]
        mass = weights.sum(axis=(1, 2))  # (K,): pixels' worth of each band in the panel
        closeness = self._closeness(_LUT_LEVELS)  # (K, LUT)
        gain = np.zeros((2, LUT_STEPS), np.float64)
        offset = np.zeros((2, LUT_STEPS), np.float64)
        present = mass >= 1.0
        for k in np.nonzero(present)[0]:
            w = weights[k] / mass[k]
            mu = (ab * w).sum(axis=(1, 2), dtype=np.float64)
            sigma = np.sqrt(((ab - mu[:, None, None]) ** 2 * w).sum(axis=(1, 2), dtype=np.float64))
            ratio = np.clip(self.std[k] / np.maximum(sigma, MIN_STD), 0.0, MAX_STD_RATIO)
            gain += closeness[k] * ratio[:, None]
            offset += closeness[k] * (self.mean[k] - ratio * mu)[:, None]
        if not present.any():
            return ChromaMap.identity()
        total = closeness[present].sum(axis=0)
        alpha = np.clip(strength, 0.0, 1.0) * closeness[present].max(axis=0)
        norm = np.where(total > 1e-12, 1.0 / np.maximum(total, 1e-12), 0.0)
        return ChromaMap(
            gain=(1.0 - alpha + alpha * gain * norm).astype(np.float32),
            offset=(alpha * offset * norm).astype(np.float32),
        )

    def transfer(
        self, ab: np.ndarray, lightness: np.ndarray, valid: np.ndarray | None = None, strength: float = 1.0
    ) -> np.ndarray:
        """``fit`` then ``apply`` on the same pixels: ``(2, h, w)`` float32 transferred a, b."""
        return self.fit(ab, lightness, valid, strength).apply(ab, lightness)

    def _closeness(self, lightness: np.ndarray) -> np.ndarray:
        distance = np.asarray(lightness, np.float32)[None] - self.centers.astype(np.float32).reshape(
            -1, *([1] * np.ndim(lightness))
        )
        return np.exp(-0.5 * (distance / np.float32(self.softness)) ** 2)

    def hints(self, lightness: np.ndarray, valid: np.ndarray, spacing: int = 16) -> np.ndarray:
        """Sparse global hints for hint-taking models: ``(h, w, 3)`` a, b, mask; on a grid every
        ``spacing`` pixels, where the pixel is valid and close to a band, the band's mean colour."""
        h, w = lightness.shape
        out = np.zeros((h, w, 3), np.float32)
        share, confidence = self.membership(lightness)
        grid = np.zeros((h, w), bool)
        grid[spacing // 2 :: spacing, spacing // 2 :: spacing] = True
        chosen = grid & (np.asarray(valid) > 0.5) & (confidence > 0.6)
        band = np.argmax(share, axis=0)
        out[chosen, 0] = self.mean[band[chosen], 0]
        out[chosen, 1] = self.mean[band[chosen], 1]
        out[chosen, 2] = 1.0
        return out


def load_reference(source: str | os.PathLike[str] | np.ndarray | Palette, bands: int = 8) -> Palette:
    """A palette from a reference image file, a palette JSON file, an image array or a Palette."""
    if isinstance(source, Palette):
        return source
    if isinstance(source, np.ndarray):
        return Palette.from_image(source, bands)
    path = Path(source)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise InputError(f"no such palette file: {path}", "check the --reference path") from e
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(
                f"cannot read palette {path}: {e}", "a palette file is JSON made by Palette.save"
            ) from e
        return Palette.from_dict(data)
    from colorrt.io.images import read_image

    return Palette.from_image(read_image(path), bands)


def model_palette(source: str | os.PathLike[str] | np.ndarray | Palette, contract: Any) -> np.ndarray:
    """The binary palette (``reference_palette``) a palette-input model (Comicolorization) takes, from a
    reference image file or array; a colorrt palette (.json or :class:`Palette`) holds no RGB histogram."""
    from colorrt.kernels.extras import reference_palette

    if isinstance(source, Palette) or (
        not isinstance(source, np.ndarray) and Path(source).suffix.lower() == ".json"
    ):
        raise InputError(
            f"model '{contract.name}' takes the reference image itself as its palette input, not a "
            "colorrt palette (.json)",
            "pass the reference picture (--reference picture.png)",
        )
    if not isinstance(source, np.ndarray):
        from colorrt.io.images import read_image

        source = read_image(Path(source))
    bins = next(e.bins for e in contract.extra_inputs if e.kind == "palette")
    return reference_palette(source, bins)


def _kmeans_1d(values: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """Centres of a 1-D k-means (started at quantiles), ascending, duplicates merged."""
    centers = np.unique(np.quantile(values, (np.arange(k) + 0.5) / k))
    for _ in range(iterations):
        member = np.argmin(np.abs(values[:, None] - centers[None, :]), axis=1)
        counts = np.bincount(member, minlength=len(centers))
        sums = np.bincount(member, weights=values, minlength=len(centers))
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
        if np.allclose(updated, centers):
            break
        centers = updated
    return np.unique(np.round(centers, 3))
