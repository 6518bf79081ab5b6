"""Zhang et al. colorization networks, structured exactly like the ``colorizers`` release.

``ECCVGenerator`` ("Colorful Image Colorization", ECCV 2016) and ``SIGGRAPHGenerator`` ("Real-Time
User-Guided Image Colorization", SIGGRAPH 2017) keep the release's module names (``model1`` ...
``model8``, ``model_out``; ``model3short8``, ``model2short9``, ``model1short10``, ``model_class``) and
layer order, so the published ``colorization_release_v2-9b330a0b.pth`` and ``siggraph17-df00044c.pth``
load with ``strict=True``. ``forward`` reproduces the release's maths (including its final x110).
"""

from __future__ import annotations

import torch
from torch import nn

from colorrt.contract import ColorContract, eccv16_contract

L_CENT = 50.0  # CIE L units
L_NORM = 100.0  # CIE L units
AB_NORM = 110.0  # CIE a/b units


def _conv_relu_block(
    channels: list[int],
    *,
    dilation: int = 1,
    last_stride: int = 1,
    init_relu: bool = False,
    norm: bool = True,
) -> nn.Sequential:
    """[ReLU], (Conv3x3, ReLU) per channel step, [BatchNorm]: the release's basic block layout."""
    layers: list[nn.Module] = [nn.ReLU(True)] if init_relu else []
    steps = list(zip(channels[:-1], channels[1:], strict=False))
    for i, (c_in, c_out) in enumerate(steps):
        stride = last_stride if i == len(steps) - 1 else 1
        layers += [
            nn.Conv2d(
                c_in, c_out, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=True
            ),
            nn.ReLU(True),
        ]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCVGenerator(nn.Module):
    """ECCV16 network: normalized L at 256x256 -> 313 ab-bin logits at 64x64 (``model8``).

    ``forward`` is the release's: softmax, 1x1 ``model_out`` (expectation over bin centres / 110),
    x4 bilinear upsample and x110. Export uses :meth:`logits` so the runtime can apply the annealed mean.
    """

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _conv_relu_block([1, 64, 64], last_stride=2)
        self.model2 = _conv_relu_block([64, 128, 128], last_stride=2)
        self.model3 = _conv_relu_block([128, 256, 256, 256], last_stride=2)
        self.model4 = _conv_relu_block([256, 512, 512, 512])
        self.model5 = _conv_relu_block([512, 512, 512, 512], dilation=2)
        self.model6 = _conv_relu_block([512, 512, 512, 512], dilation=2)
        self.model7 = _conv_relu_block([512, 512, 512, 512])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1, bias=True),
            nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1, bias=True),
            nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1, bias=True),
            nn.ReLU(True),
            nn.Conv2d(256, 313, kernel_size=1, stride=1, padding=0, bias=True),
        )
        self.softmax = nn.Softmax(dim=1)
        self.model_out = nn.Conv2d(313, 2, kernel_size=1, padding=0, dilation=1, stride=1, bias=False)
        self.upsample4 = nn.Upsample(scale_factor=4, mode="bilinear")

    def logits(self, l_norm: torch.Tensor) -> torch.Tensor:
        """313 bin logits at 1/4 resolution from normalized L ((L - 50) / 100)."""
        x = l_norm
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6):
            x = block(x)
        return self.model8(self.model7(x))

    def bin_centers(self) -> torch.Tensor:
        """CIE ab of each of the 313 bins (313 x 2), read from the ``model_out`` weights."""
        return self.model_out.weight.detach()[:, :, 0, 0].T * AB_NORM

    def forward(self, input_l: torch.Tensor) -> torch.Tensor:
        """The release's forward: L (0..100) -> ab (CIE units) at the input size."""
        out_reg = self.model_out(self.softmax(self.logits((input_l - L_CENT) / L_NORM)))
        return self.upsample4(out_reg) * AB_NORM


class SIGGRAPHGenerator(nn.Module):
    """SIGGRAPH17 network: L, ab hints and hint mask (256x256) -> tanh ab / 110 (``model_out``).

    The classification head ``model_class`` (529 classes) is kept for checkpoint compatibility; the
    release's forward never uses it, nor ``upsample4`` / ``softmax``.
    """

    def __init__(self, classes: int = 529) -> None:
        super().__init__()
        self.model1 = _conv_relu_block([4, 64, 64])
        self.model2 = _conv_relu_block([64, 128, 128])
        self.model3 = _conv_relu_block([128, 256, 256, 256])
        self.model4 = _conv_relu_block([256, 512, 512, 512])
        self.model5 = _conv_relu_block([512, 512, 512, 512], dilation=2)
        self.model6 = _conv_relu_block([512, 512, 512, 512], dilation=2)
        self.model7 = _conv_relu_block([512, 512, 512, 512])
        self.model8up = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1, bias=True)
        )
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1, bias=True))
        self.model8 = _conv_relu_block([256, 256, 256], init_relu=True)
        self.model9up = nn.Sequential(
            nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1, bias=True)
        )
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, kernel_size=3, stride=1, padding=1, bias=True))
        self.model9 = _conv_relu_block([128, 128], init_relu=True)
        self.model10up = nn.Sequential(
            nn.ConvTranspose2d(128, 128, kernel_size=4, stride=2, padding=1, bias=True)
        )
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1, bias=True))
        self.model10 = nn.Sequential(
            nn.ReLU(True),
            nn.Conv2d(128, 128, kernel_size=3, dilation=1, stride=1, padding=1, bias=True),
            nn.LeakyReLU(negative_slope=0.2),
        )
        self.model_class = nn.Sequential(nn.Conv2d(256, classes, kernel_size=1, stride=1, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, kernel_size=1, stride=1, bias=True), nn.Tanh())
        self.upsample4 = nn.Sequential(nn.Upsample(scale_factor=4, mode="bilinear"))
        self.softmax = nn.Sequential(nn.Softmax(dim=1))

    def regression(self, x: torch.Tensor) -> torch.Tensor:
        """ab / 110 (tanh) from the 4-channel normalized input: (L-50)/100, ab/110, mask (NCHW)."""
        conv1_2 = self.model1(x)
        conv2_2 = self.model2(conv1_2[:, :, ::2, ::2])
        conv3_3 = self.model3(conv2_2[:, :, ::2, ::2])
        conv7_3 = conv3_3[:, :, ::2, ::2]
        for block in (self.model4, self.model5, self.model6, self.model7):
            conv7_3 = block(conv7_3)
        conv8_3 = self.model8(self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv9_3 = self.model9(self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv10_2 = self.model10(self.model10up(conv9_3) + self.model1short10(conv1_2))
        return self.model_out(conv10_2)

    def forward(
        self, input_A: torch.Tensor, input_B: torch.Tensor | None = None, mask_B: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The release's forward: L (0..100), ab hints (CIE units), mask -> ab (CIE units)."""
        if input_B is None:
            input_B = torch.cat((input_A * 0, input_A * 0), dim=1)
        if mask_B is None:
            mask_B = input_A * 0
        x = torch.cat(((input_A - L_CENT) / L_NORM, input_B / AB_NORM, mask_B), dim=1)
        return self.regression(x) * AB_NORM


class ECCV16Logits(nn.Module):
    """Export view of ECCV16: normalized L -> 313 bin logits at 1/4 size (before the softmax).

    The runtime decodes the logits with the annealed mean and does the release's x4 upsample.
    """

    def __init__(self, net: ECCVGenerator) -> None:
        super().__init__()
        self.net = net

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net.logits(l_norm)


class SIGGRAPH17Regression(nn.Module):
    """Export view of SIGGRAPH17: one 4-channel input -> tanh ab / 110 (regression head only).

    Channels: (L - 50) / 100, a / 110, b / 110 (0 where no hint), mask (1 at a hint, else 0). They
    are fed to the network's trunk exactly as the release's forward concatenates them.
    """

    def __init__(self, net: SIGGRAPHGenerator) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.regression(x)


def eccv16_contract_for(net: ECCVGenerator) -> ColorContract:
    """ECCV16 colour contract whose bin centres are this network's ``model_out`` weights x 110."""
    return eccv16_contract(net.bin_centers().cpu().numpy().astype("float64"))
