"""Comicolorization (Furusawa et al. 2017, DwangoMediaVillage/Comicolorization), in torch: two stages.

Stage 1 is the repository's ``Ltbc`` in its released configuration (``model/comicolorization/
argument.json``: ``loss_type`` Lab, palette mode with 6 bins a channel, multidimensional histogram,
classification head 512 -> 428): the "Let there be Color!" network (:mod:`colorrt.models.ltbc`, one
low-level network shared by both paths, the 224x224 input being its own global copy) with the
reference's 216-value palette fused beside the global features, a final x2 nearest unpooling to
224x224, and the sigmoid mapped channel by channel onto the range of sRGB colours in Lab
(``ColorNormalize``). Stage 2 is the 448x448 super-resolution U-Net (``comicolorization_sr.model.Unet``)
fed with the Otsu line drawing of the panel at 448 px and stage 1's Lab / 100 unpooled x2; its
output is Lab as ``L = 50 (y0 + 1)``, ``a = 50 y1``, ``b = 50 y2``.

``forward(input, palette, lines)``: ``(N, 3, 224, 224)`` (L/100 of the binarised panel and colour-dot
ab, zero without dots), ``(N, 216)``, ``(N, 1, 448, 448)`` -> ``(N, 3, 448, 448)`` raw stage-2 output.
Between the stages the official pipeline rounds stage 1's colour to 8-bit sRGB (clipping colours
outside the gamut) before converting back to Lab; here stage 1's Lab goes on as it is. The class
head is kept so the official file loads strictly; it does not reach the output. MIT licence.
``width`` / ``sr_width`` scale the stages' hidden widths (1.0: the released files; tests use small).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from colorrt.models.ltbc import ColorizationNetwork, FusionLayer, global_network, low_level, mid_level
from colorrt.models.width import scaled

CHAINER_BN_EPS = 2e-5
PALETTE_SIZE = 216  # 6 bins per RGB channel, joint histogram
# Lab range of sRGB colours on a 16-level grid, as comicolorization.utility.color.lab_min_max.
LAB_MIN = (0.0, -86.18302974, -107.85730021)
LAB_MAX = (100.0, 98.23305386, 94.47812228)


class ClassificationNetwork(nn.Module):
    """Linear -> BatchNorm -> Linear, on the global network's 512-wide features (training only)."""

    def __init__(self, in_features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.l0 = nn.Linear(in_features, hidden)
        self.bn0 = nn.BatchNorm1d(hidden, eps=CHAINER_BN_EPS)
        self.l1 = nn.Linear(hidden, classes)


class Ltbc(nn.Module):
    """Stage 1: binarised panel + palette -> Lab at 224x224 (keys as the Chainer links)."""

    def __init__(self, width: float = 1.0, classes: int = 428) -> None:
        super().__init__()
        eps = CHAINER_BN_EPS
        self.low_level = low_level(3, width, eps)
        self.mid_level = mid_level(width, eps)
        self.global_network = global_network(width, eps)
        c256 = scaled(256, width)
        self.fusion_layer = FusionLayer(c256 * 2 + PALETTE_SIZE, c256)
        self.colorization = ColorizationNetwork(3, width, eps)
        self.classification_network = ClassificationNetwork(scaled(512, width), scaled(512, width), classes)
        self.register_buffer("lab_min", torch.tensor(LAB_MIN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("lab_max", torch.tensor(LAB_MAX).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
        low = self.low_level(x)  # the input is its own global copy: one low-level pass serves both
        fused = self.fusion_layer(self.mid_level(low), [self.global_network(low), palette])
        colour = self.colorization(fused)
        colour = F.interpolate(colour, scale_factor=2.0, mode="nearest")
        return colour * (self.lab_max - self.lab_min) + self.lab_min


class SuperResolutionUnet(nn.Module):
    """Stage 2: the 448 px U-Net (``c0``..``c8`` down, ``dc8``..``dc0`` up, BatchNorm ``bnc*`` / ``bnd*``)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = {n: scaled(n, width) for n in (32, 64, 128, 256, 512)}
        down = [(4, 32, 3), (32, 64, 4), (64, 64, 3), (64, 128, 4), (128, 128, 3)]
        down += [(128, 256, 4), (256, 256, 3), (256, 512, 4), (512, 512, 3)]
        for i, (cin, cout, k) in enumerate(down):
            channels_in = cin if i == 0 else c[cin]  # the 4 input channels are not scaled
            self.add_module(f"c{i}", nn.Conv2d(channels_in, c[cout], k, 2 if k == 4 else 1, 1))
            self.add_module(f"bnc{i}", nn.BatchNorm2d(c[cout], eps=CHAINER_BN_EPS))
        # (index, channels in (each of the two joined maps for a deconvolution), channels out)
        up = [(8, 512, 512), (7, 512, 256), (6, 256, 256), (5, 256, 128), (4, 128, 128), (3, 128, 64)]
        for i, cin, cout in [*up, (2, 64, 64), (1, 64, 32)]:
            if i % 2 == 0:  # dc8, dc6, dc4, dc2 upsample x2 the skip joined with the path
                layer: nn.Module = nn.ConvTranspose2d(2 * c[cin], c[cout], 4, 2, 1)
            else:
                layer = nn.Conv2d(c[cin], c[cout], 3, 1, 1)
            self.add_module(f"dc{i}", layer)
            self.add_module(f"bnd{i}", nn.BatchNorm2d(c[cout], eps=CHAINER_BN_EPS))
        self.dc0 = nn.Conv2d(2 * c[32], 3, 3, 1, 1)

    def _down(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return F.relu(getattr(self, f"bnc{i}")(getattr(self, f"c{i}")(x)))

    def _up(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return F.relu(getattr(self, f"bnd{i}")(getattr(self, f"dc{i}")(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = [self._down(0, x)]
        for i in range(1, 9):
            e.append(self._down(i, e[-1]))
        d = self._up(8, torch.cat([e[7], e[8]], 1))
        for i, skip in ((7, None), (6, 6), (5, None), (4, 4), (3, None), (2, 2), (1, None)):
            d = self._up(i, d if skip is None else torch.cat([e[skip], d], 1))
        return self.dc0(torch.cat([e[0], d], 1))


class Comicolorization(nn.Module):
    """Both stages (see the module docstring)."""

    def __init__(self, width: float = 1.0, sr_width: float = 1.0, classes: int = 428) -> None:
        super().__init__()
        self.ltbc = Ltbc(width, classes)
        self.super_resolution = SuperResolutionUnet(sr_width)

    def forward(self, x: torch.Tensor, palette: torch.Tensor, lines: torch.Tensor) -> torch.Tensor:
        lab = F.interpolate(self.ltbc(x, palette) / 100.0, scale_factor=2.0, mode="nearest")
        return self.super_resolution(torch.cat([lines, lab], dim=1))
