"""colorrt's small bundled colorizer: a compact U-Net classifying ab into quantized bins.

The network sees normalized lightness (``L / 50 - 1``) and predicts, at 1/4 of the input
resolution, a distribution over the CIE ab bins of a 10-unit grid that sRGB colours reach
(ECCV16-style, Zhang et al. 2016). ``forward`` bakes the paper's decoding into the graph: the
annealed mean ``softmax(logits / T) @ centres`` (T = ``temperature``), divided by 110 and upsampled
x4 bilinearly, so the exported model returns ``ab / 110`` in [-1, 1] at the input size and fits the
``colorrt-default`` contract (an "ab" output scaled by 110; it is a convex mix of bin centres rather
than a literal tanh, but lies in the same range). Training uses :meth:`logits`.

Height and width must be multiples of 16 (four stride-2 levels).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

AB_NORM = 110.0  # CIE a/b units: output = ab / AB_NORM
AB_GRID = 10.0  # CIE a/b units between neighbouring bin centres
SIZE_MULTIPLE = 16  # pixels: height and width must be multiples of this
DEFAULT_TEMPERATURE = 0.38  # annealed-mean temperature of ECCV16; training may store a tuned one


def gamut_bin_centers(grid: float = AB_GRID, steps: int = 33) -> torch.Tensor:
    """(Q, 2) CIE ab centres of the ``grid``-spaced bins that some sRGB (D65) colour falls in.

    Walks an even ``steps``^3 grid over the sRGB cube plus its faces at a finer pitch, so every
    bin the gamut touches is found; the result is sorted (a, then b) and deterministic.
    """
    axis = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    cube = torch.cartesian_prod(axis, axis, axis)
    fine = torch.linspace(0.0, 1.0, 4 * steps, dtype=torch.float64)
    pair = torch.cartesian_prod(fine, fine)
    extra = []
    for channel in range(3):
        for value in (0.0, 1.0):
            full = torch.empty(len(pair), 3, dtype=torch.float64)
            others = [c for c in range(3) if c != channel]
            full[:, others[0]], full[:, others[1]] = pair[:, 0], pair[:, 1]
            full[:, channel] = value
            extra.append(full)
    ab = _srgb_to_ab(torch.cat([cube, *extra]))
    keys = torch.unique(torch.round(ab / grid).to(torch.int64), dim=0)
    return keys.to(torch.float32) * grid


def _srgb_to_ab(rgb: torch.Tensor) -> torch.Tensor:
    """CIE ab of sRGB colours in 0..1 (D65 white, the same maths as scikit-image's rgb2lab)."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    to_xyz = torch.tensor(
        [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
        dtype=rgb.dtype,
    )
    xyz = linear @ to_xyz.T / torch.tensor([0.95047, 1.0, 1.08883], dtype=rgb.dtype)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1)


def _conv(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DefaultColorizer(nn.Module):
    """Compact U-Net: (N, 1, H, W) normalized L -> (N, 2, H, W) ab / 110 (H, W multiples of 16).

    Encoder 16-32-64-128-160 channels (stem, then four stride-2 levels), a global-context branch
    (image-wide average of the deepest features, added back), decoder with bilinear upsampling and
    skip connections up to 1/4 resolution (96 and 64 channels), and a 1x1 head giving one logit per ab bin.
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int, int] = (16, 32, 64, 128, 160),
        decoder: tuple[int, int] = (96, 64),
    ):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        d3, d2 = decoder
        self.stem = _conv(1, w0)
        self.down1 = nn.Sequential(_conv(w0, w1, stride=2), _conv(w1, w1))
        self.down2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.down3 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3))
        self.down4 = nn.Sequential(_conv(w3, w4, stride=2), _conv(w4, w4, dilation=2))
        self.context = nn.Sequential(nn.Conv2d(w4, w4, 1), nn.ReLU(inplace=True))
        self.up3 = nn.Sequential(_conv(w4 + w3, d3), _conv(d3, d3))
        self.up2 = nn.Sequential(_conv(d3 + w2, d2), _conv(d2, d2))
        centers = gamut_bin_centers()
        self.head = nn.Conv2d(d2, len(centers), 1)
        self.register_buffer("bin_centers", centers)  # (Q, 2) CIE ab of each output bin
        self.register_buffer("temperature", torch.tensor(DEFAULT_TEMPERATURE))

    @property
    def num_bins(self) -> int:
        """Number of ab bins the head classifies into."""
        return int(self.bin_centers.shape[0])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, Q, H/4, W/4) bin logits from normalized L (``L / 50 - 1``)."""
        f1 = self.down1(self.stem(x))
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        f4 = self.down4(f3)
        f4 = f4 + self.context(f4.mean(dim=(2, 3), keepdim=True))
        y = self.up3(torch.cat([_up2(f4), f3], dim=1))
        y = self.up2(torch.cat([_up2(y), f2], dim=1))
        return self.head(y)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Annealed mean of bin logits -> ab / 110 at the logits' resolution."""
        probs = torch.softmax(logits / self.temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", probs, self.bin_centers / AB_NORM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized L (N, 1, H, W) -> ab / 110 (N, 2, H, W), in [-1, 1]."""
        ab = self.decode(self.logits(x))
        return F.interpolate(ab, scale_factor=4.0, mode="bilinear", align_corners=False)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


# ---- v2: a frozen-pretrained EfficientNet-Lite0 encoder and a light U-Net decoder ----
V2_DECODER = (192, 128, 80, 48)  # channels: deepest lateral, then the 1/16, 1/8 and 1/4 levels


def grey_rgb(x: torch.Tensor) -> torch.Tensor:
    """Normalized L (``L / 50 - 1``, N x 1 x H x W) -> the grey sRGB image of that lightness in [-1, 1]
    (3 channels), the input an ImageNet encoder expects (CIE L -> Y -> sRGB gamma, D65, a = b = 0)."""
    lightness = (x + 1.0) * 50.0
    fy = (lightness + 16.0) / 116.0
    y = torch.where(fy > 6.0 / 29.0, fy**3, lightness / 903.3).clamp(0.0, 1.0)
    v = torch.where(y > 0.0031308, 1.055 * y.clamp_min(1e-8) ** (1 / 2.4) - 0.055, 12.92 * y)
    return (v * 2.0 - 1.0).expand(-1, 3, -1, -1)


class ColorDecoder(nn.Module):
    """Light U-Net decoder: EfficientNet-Lite0 features at strides 4, 8, 16, 32 (+ L at stride 4)
    -> ab-bin logits at stride 4. Upsampling goes to the skip's size, so any input size works."""

    def __init__(self, feature_channels: tuple[int, ...] = (24, 40, 112, 320), num_bins: int = 261) -> None:
        super().__init__()
        c4, c8, c16, c32 = feature_channels
        d32, d16, d8, d4 = V2_DECODER
        self.lateral = nn.Sequential(
            nn.Conv2d(c32, d32, 1, bias=False), nn.BatchNorm2d(d32), nn.ReLU(inplace=True)
        )
        self.context = nn.Sequential(nn.Conv2d(d32, d32, 1), nn.ReLU(inplace=True))
        self.up16 = nn.Sequential(_conv(d32 + c16, d16), _conv(d16, d16))
        self.up8 = nn.Sequential(_conv(d16 + c8, d8), _conv(d8, d8))
        self.up4 = nn.Sequential(_conv(d8 + c4 + 1, d4), _conv(d4, d4))
        self.head = nn.Conv2d(d4, num_bins, 1)

    def forward(self, feats: list[torch.Tensor], l4: torch.Tensor) -> torch.Tensor:
        f4, f8, f16, f32 = feats
        y = self.lateral(f32)
        y = y + self.context(y.mean(dim=(2, 3), keepdim=True))
        y = self.up16(torch.cat([_up_to(y, f16), f16], dim=1))
        y = self.up8(torch.cat([_up_to(y, f8), f8], dim=1))
        y = self.up4(torch.cat([_up_to(y, f4), f4, l4], dim=1))
        return self.head(y)


class DefaultColorizerV2(nn.Module):
    """colorrt-default v2: (N, 1, H, W) normalized L -> (N, 2, H, W) ab / 110 (H, W multiples of 16).

    Grey sRGB of the lightness -> EfficientNet-Lite0 (ImageNet weights, frozen in training) -> features
    at strides 4 to 32 -> :class:`ColorDecoder` -> bin logits at 1/4 -> annealed mean at ``temperature``
    -> ab / 110, upsampled bilinearly to the input size.
    """

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        from colorrt.models.efficientnet import efficientnet_lite0

        self.encoder = efficientnet_lite0(pretrained=pretrained)
        centers = gamut_bin_centers()
        self.decoder = ColorDecoder(num_bins=len(centers))
        self.register_buffer("bin_centers", centers)
        self.register_buffer("temperature", torch.tensor(DEFAULT_TEMPERATURE))

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Encoder features at strides 4, 8, 16, 32 and L (``x``) averaged to stride 4."""
        return self.encoder.features(grey_rgb(x))[1:], F.avg_pool2d(x, 4)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Annealed mean of bin logits -> ab / 110 at the logits' resolution."""
        probs = torch.softmax(logits / self.temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", probs, self.bin_centers / AB_NORM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized L (N, 1, H, W) -> ab / 110 (N, 2, H, W), in [-1, 1]."""
        ab = self.decode(self.decoder(*self.features(x)))
        return F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _up_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
