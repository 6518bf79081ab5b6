"""The data-dependent step of the fusion: each box's instance maps resized into its box and combined.

One implementation written against an array module ``xp`` (NumPy here; CuPy runs the same code on
the GPU). For one image and one fusion layer, with N boxes whose maps ``R_i`` (C feature channels +
1 instance logit, from the exported instance network) are resized bilinearly into their boxes:

* ``l_i``: the logit placed in box i, 0 elsewhere (the official ``F.pad``);
* ``A = sum_i softmax_i(l) * F_i``: the instance features weighted by a softmax over the N boxes;
* ``lam = logsumexp_i(l_i) - 1e5 * (1 - union)``: the instances' joint logit, with the official
  large background logit outside every box folded in.

The fusion network then mixes ``A`` with its own features through ``sigmoid(lam - l_bg)``, which
equals the official softmax over N + 1 (see ``colorrt.models.instcolorization.WeightGenerator``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorrt.errors import InputError

BACKGROUND_LOGIT = 100000.0  # the official constant added to the background weight outside every box


@dataclass(frozen=True)
class Placement:
    """Where a box's maps go at one fusion level: top/left corner and height/width in pixels."""

    top: int
    left: int
    height: int
    width: int

    def region(self) -> tuple[slice, slice]:
        """Row and column slices of the box."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def box_placement(box: Sequence[int], image_wh: tuple[int, int], size: int) -> Placement:
    """The official ``get_box_info``: an integer xyxy box of an image (W, H) on a size x size map.

    Corners are scaled and truncated; a box thinner than one pixel grows by one (towards the far
    side when there is room, else towards the near side).
    """
    width, height = image_wh
    x0, y0 = int(box[0] / width * size), int(box[1] / height * size)
    x1, y1 = int(box[2] / width * size), int(box[3] / height * size)
    if x1 - x0 < 1:
        x0, x1 = (x0, x1 + 1) if size - x1 > 1 else (x0 - 1, x1)
    if y1 - y0 < 1:
        y0, y1 = (y0, y1 + 1) if size - y1 > 1 else (y0 - 1, y1)
    placement = Placement(y0, x0, max(y1 - y0, 1), max(x1 - x0, 1))
    if y0 < 0 or x0 < 0 or y0 + placement.height > size or x0 + placement.width > size:
        raise InputError(f"box {list(box)} of a {width}x{height} image does not fit a {size}x{size} map")
    return placement


def bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First index, second index and second weight per output pixel of one axis.

    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` without antialiasing:
    half-pixel centres, sources below 0 clamped to 0, the last pixel repeated at the far edge.
    """
    if in_size == out_size:
        index = np.arange(out_size)
        return index, index, np.zeros(out_size, dtype=np.float32)
    # torch computes the source in float32 as one fused multiply-add: exact in float64, rounded once.
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    source = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    source = np.maximum(source, np.float32(0.0))
    first = np.minimum(source.astype(np.int64), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    return first, second, np.clip(source - first, 0.0, 1.0).astype(np.float32)


def resize_maps(maps: Any, out_hw: tuple[int, int], xp: Any = np) -> Any:
    """Bilinear resize of ``(C, h, w)`` maps to ``(C, *out_hw)`` (see :func:`bilinear_taps`)."""
    (r0, r1, wr), (c0, c1, wc) = (
        bilinear_taps(n_in, n_out) for n_in, n_out in zip(maps.shape[1:], out_hw, strict=True)
    )
    r0, r1, c0, c1 = (xp.asarray(i) for i in (r0, r1, c0, c1))
    wr, wc = xp.asarray(wr)[:, None], xp.asarray(wc)
    top, bottom = maps[:, r0], maps[:, r1]
    top = top[:, :, c0] * (1 - wc) + top[:, :, c1] * wc
    bottom = bottom[:, :, c0] * (1 - wc) + bottom[:, :, c1] * wc
    return top * (1 - wr) + bottom * wr


def place_layer(maps: Sequence[Any], placements: Sequence[Placement], size: int, xp: Any = np) -> Any:
    """``(C + 1, size, size)``: ``A`` and ``lam`` of one image at one layer (see the module docstring).

    ``maps[i]``: box i's ``(C + 1, height, width)`` maps, already resized to ``placements[i]``.
    """
    if not maps or len(maps) != len(placements):
        raise InputError(f"place_layer: got {len(maps)} map sets for {len(placements)} boxes (need >= 1)")
    channels = maps[0].shape[0] - 1
    logits = xp.zeros((len(maps), size, size), dtype=xp.float32)
    union = xp.zeros((size, size), dtype=xp.float32)
    for i, (item, where) in enumerate(zip(maps, placements, strict=True)):
        rows, cols = where.region()
        logits[i, rows, cols] = item[channels]
        union[rows, cols] = 1.0
    peak = logits.max(axis=0)
    weights = xp.exp(logits - peak)
    total = weights.sum(axis=0)
    out = xp.zeros((channels + 1, size, size), dtype=xp.float32)
    for i, (item, where) in enumerate(zip(maps, placements, strict=True)):
        rows, cols = where.region()
        out[:channels, rows, cols] += weights[i, rows, cols] * item[:channels]
    out[:channels] /= total
    out[channels] = peak + xp.log(total) - (1.0 - union) * xp.float32(BACKGROUND_LOGIT)
    return out
