"""The "Let there be Color!" network (Iizuka et al. 2016), shared by ``iizuka2016`` and Comicolorization.

Comicolorization's ``Ltbc`` (DwangoMediaVillage/Comicolorization, ``models/ltbc``) re-implements
Iizuka et al.'s layers; module and attribute names here follow its Chainer links (``low_level.conv1_1``,
``global_network.l3_1``, ``fusion_layer.conv``, ``colorization.conv3_2``, ...), so a Chainer ``.npz``
maps onto them by renaming, and the Torch7 loader of ``iizuka2016`` fills the same slots:

* low level: six 3x3 convolutions (64 s2, 128, 128 s2, 256, 256 s2, 512), each BatchNorm + ReLU;
* mid level: 512, 256 (3x3, BatchNorm + ReLU);
* global: 512 s2, 512, 512 s2, 512 (3x3, BatchNorm + ReLU) on the 224x224 copy, then fully connected
  1024, 512, 256 (each BatchNorm + ReLU): one vector per image;
* fusion: the global vector (and any other vectors, e.g. Comicolorization's palette) broadcast over the
  mid-level grid, concatenated after the mid-level features, 1x1 convolution to 256 + ReLU;
* colorization: 128, up x2 (nearest), 64, 64, up x2, 32 (3x3, BatchNorm + ReLU), then the output
  convolution with a sigmoid: at half the input resolution.

``width`` scales every hidden width (1.0: the released models; tests use small widths); ``eps`` is
the BatchNorm epsilon of the framework that trained it (Torch7 1e-5, Chainer 2e-5).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from colorrt.models.width import scaled

GLOBAL_SIZE = 224  # the global path's input side: its fully connected layers see a 7x7 grid


class _Stack(nn.Module):
    """Named conv (or linear) layers, each followed by BatchNorm and ReLU, run in order."""

    def __init__(self, layers: list[tuple[str, nn.Module, str, int]], eps: float) -> None:
        super().__init__()
        self.order: list[tuple[str, str]] = []
        for name, layer, bn_name, channels in layers:
            self.add_module(name, layer)
            norm = nn.BatchNorm1d if isinstance(layer, nn.Linear) else nn.BatchNorm2d
            self.add_module(bn_name, norm(channels, eps=eps))
            self.order.append((name, bn_name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, bn_name in self.order:
            if isinstance(getattr(self, name), nn.Linear) and x.ndim > 2:
                x = torch.flatten(x, 1)
            x = F.relu(getattr(self, bn_name)(getattr(self, name)(x)))
        return x


def _convs(spec: list[tuple[str, int, int, int]], eps: float, bn_prefix: str = "bn") -> _Stack:
    """``(name, in, out, stride)`` rows of 3x3 convolutions with BatchNorm + ReLU."""
    layers = [
        (name, nn.Conv2d(cin, cout, 3, stride, 1), bn_prefix + name.removeprefix("conv"), cout)
        for name, cin, cout, stride in spec
    ]
    return _Stack(layers, eps)


def low_level(in_channels: int, width: float, eps: float) -> _Stack:
    """The low-level feature network (input / 8)."""
    w = [in_channels, *(scaled(c, width) for c in (64, 128, 128, 256, 256, 512))]
    names = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2")
    return _convs([(n, w[i], w[i + 1], 2 if i % 2 == 0 else 1) for i, n in enumerate(names)], eps)


def mid_level(width: float, eps: float) -> _Stack:
    """The mid-level feature network (same grid)."""
    c512, c256 = scaled(512, width), scaled(256, width)
    return _convs([("conv1_1", c512, c512, 1), ("conv1_2", c512, c256, 1)], eps)


def global_network(width: float, eps: float) -> _Stack:
    """The global feature network: four convolutions, then three fully connected layers."""
    c = scaled(512, width)
    spec = [("conv1_1", c, c, 2), ("conv1_2", c, c, 1), ("conv2_1", c, c, 2), ("conv2_2", c, c, 1)]
    layers = [(n, nn.Conv2d(i, o, 3, s, 1), "bn" + n.removeprefix("conv"), o) for n, i, o, s in spec]
    sizes = [c * (GLOBAL_SIZE // 32) ** 2, scaled(1024, width), scaled(512, width), scaled(256, width)]
    for k in range(3):
        layers.append((f"l3_{k + 1}", nn.Linear(sizes[k], sizes[k + 1]), f"bn3_{k + 1}", sizes[k + 1]))
    return _Stack(layers, eps)


class FusionLayer(nn.Module):
    """Vectors broadcast over the grid, concatenated after the features, 1x1 convolution + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, features: torch.Tensor, vectors: list[torch.Tensor]) -> torch.Tensor:
        vector = torch.cat(vectors, dim=1)
        grid = vector[:, :, None, None].expand(-1, -1, features.shape[2], features.shape[3])
        return F.relu(self.conv(torch.cat([features, grid], dim=1)))


class ColorizationNetwork(_Stack):
    """Fused features -> colour at half the input resolution: conv1_1, up x2, conv2_1, conv2_2, up x2,
    conv3_1 (each BatchNorm + ReLU), conv3_2 + sigmoid."""

    def __init__(self, out_channels: int, width: float, eps: float) -> None:
        c = [scaled(n, width) for n in (256, 128, 64, 64, 32)]
        names = ("conv1_1", "conv2_1", "conv2_2", "conv3_1")
        layers = [
            (n, nn.Conv2d(c[k], c[k + 1], 3, 1, 1), "bn" + n[4:], c[k + 1]) for k, n in enumerate(names)
        ]
        super().__init__(layers, eps)
        self.conv3_2 = nn.Conv2d(c[4], out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, bn_name in self.order:
            if name in ("conv2_1", "conv3_1"):
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.relu(getattr(self, bn_name)(getattr(self, name)(x)))
        return torch.sigmoid(self.conv3_2(x))


class LetThereBeColor(nn.Module):
    """Iizuka et al.'s network: ``forward(local, global_copy, *vectors)`` -> colour at half size.

    ``vector_channels``: widths of further vectors fused beside the global features (Comicolorization's
    palette: 216). ``separate_global_low_level``: the global path has its own low-level network (a
    Torch7 file holds one copy per input), else both paths share one (Chainer's Ltbc).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: float = 1.0,
        eps: float = 1e-5,
        vector_channels: int = 0,
        separate_global_low_level: bool = False,
    ) -> None:
        super().__init__()
        self.low_level = low_level(in_channels, width, eps)
        if separate_global_low_level:
            self.global_low_level = low_level(in_channels, width, eps)
        self.mid_level = mid_level(width, eps)
        self.global_network = global_network(width, eps)
        c256 = scaled(256, width)
        self.fusion_layer = FusionLayer(c256 * 2 + vector_channels, c256)
        self.colorization = ColorizationNetwork(out_channels, width, eps)

    def forward(self, local: torch.Tensor, global_copy: torch.Tensor, *vectors: torch.Tensor) -> torch.Tensor:
        features = self.mid_level(self.low_level(local))
        low = getattr(self, "global_low_level", self.low_level)
        summary = self.global_network(low(global_copy))
        return self.colorization(self.fusion_layer(features, [summary, *vectors]))
