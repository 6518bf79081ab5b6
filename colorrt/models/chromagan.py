"""ChromaGAN's colorization generator (Vitoria et al. 2020, pvitoria/ChromaGAN), in torch.

The layers follow the official Keras ``colorization_model``: VGG16 up to ``block4_conv3``; a global
branch (two pairs of 3x3 convolutions, the first of each with stride 2, each followed by ReLU and
BatchNorm), flattened into Dense 1024 -> 512 -> 256 (linear) and tiled over the 28x28 grid; a
mid-level branch (conv 512, conv 256, each ReLU + BatchNorm); their concatenation fused by a 1x1
convolution and decoded (conv 128, up x2, conv 64, conv 64, up x2, conv 32, conv 2 + sigmoid, up
x2) to ab at 224x224. A class head (Dense 4096 -> 4096 -> 1000 softmax on the same flattened global
features) is the second output, unused at inference.

Interface as the Keras model: NHWC input ``(N, 224, 224, 3)`` holding L/100 in three channels,
NHWC outputs ab ``(N, 224, 224, 2)`` in 0..1 (``a = 255 y - 128``) and class probabilities ``(N,
1000)``. Keras ``"same"`` padding of the stride-2 convolutions puts the extra row and column at the
bottom and right (torch's symmetric padding would shift the features by half a pixel); Keras
BatchNorm's epsilon is 1e-3. ``width`` scales every hidden width (1.0: the released 171M-parameter
model, 124M of them in the class head; tests use small widths).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from colorrt.models.width import scaled

KERAS_BN_EPS = 1e-3
VGG_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))  # to block4_conv3, pools between
GLOBAL_GRID = 7  # the global branch's spatial size at a 224 input: what its Dense layers flatten


class KerasConv2d(nn.Conv2d):
    """A Conv2d with Keras ``padding="same"`` on inputs divisible by the stride: ``kernel - stride``
    pixels of padding, the odd one at the bottom and right, as TensorFlow pads (stride 1: symmetric)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        total = max(kernel_size - stride, 0)
        self.pads = (total // 2, total - total // 2) * 2  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads) if any(self.pads) else x)


def _conv_relu_bn(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    # Keras: Conv2D(activation="relu") then BatchNormalization.
    return [
        KerasConv2d(in_channels, out_channels, 3, stride),
        nn.ReLU(),
        nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS),
    ]


def _vgg_trunk(width: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for index, block in enumerate(VGG_BLOCKS):
        if index:
            layers.append(nn.MaxPool2d(2))
        for out in block:
            layers += [KerasConv2d(channels, scaled(out, width)), nn.ReLU()]
            channels = scaled(out, width)
    return nn.Sequential(*layers)


class ChromaGAN(nn.Module):
    """ChromaGAN's generator (see the module docstring); ``classes`` outputs of the class head."""

    def __init__(self, width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        w = lambda n: scaled(n, width)  # noqa: E731
        self.width = width
        self.vgg = _vgg_trunk(width)
        self.global_convs = nn.Sequential(
            *_conv_relu_bn(w(512), w(512), 2),
            *_conv_relu_bn(w(512), w(512)),
            *_conv_relu_bn(w(512), w(512), 2),
            *_conv_relu_bn(w(512), w(512)),
        )
        flat = w(512) * GLOBAL_GRID * GLOBAL_GRID
        self.global_dense = nn.Sequential(
            nn.Linear(flat, w(1024)), nn.Linear(w(1024), w(512)), nn.Linear(w(512), w(256))
        )
        self.class_dense = nn.Sequential(
            nn.Linear(flat, w(4096)), nn.Linear(w(4096), w(4096)), nn.Linear(w(4096), classes)
        )
        self.mid = nn.Sequential(*_conv_relu_bn(w(512), w(512)), *_conv_relu_bn(w(512), w(256)))
        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.decoder = nn.Sequential(
            KerasConv2d(w(256) * 2, w(256), 1),
            nn.ReLU(),
            KerasConv2d(w(256), w(128)),
            nn.ReLU(),
            up(),
            KerasConv2d(w(128), w(64)),
            nn.ReLU(),
            KerasConv2d(w(64), w(64)),
            nn.ReLU(),
            up(),
            KerasConv2d(w(64), w(32)),
            nn.ReLU(),
            KerasConv2d(w(32), 2),
            nn.Sigmoid(),
            up(),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NHWC ``(N, 224, 224, 3)`` -> (NHWC ab in 0..1, class probabilities)."""
        features = self.vgg(x.permute(0, 3, 1, 2))
        flat = torch.flatten(self.global_convs(features), 1)  # CHW order: the loader permutes Keras' HWC
        grid = self.global_dense(flat)[:, :, None, None].expand(-1, -1, *features.shape[2:])
        ab = self.decoder(torch.cat([self.mid(features), grid], dim=1))
        return ab.permute(0, 2, 3, 1), torch.softmax(self.class_dense(flat), dim=1)
