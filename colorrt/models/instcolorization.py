"""Instance-aware colorization (Su et al., CVPR 2020; ericsujw/InstColorization, MIT): G, GF, GComp.

The three networks keep the official module names, so ``latest_net_G.pth``, ``latest_net_GF.pth``
(275 keys, all ``module.``-prefixed) and ``latest_net_GComp.pth`` load with ``strict=True``:

* ``G`` (``InstanceGenerator``) and ``GComp`` (``SIGGRAPHGenerator``) have the SIGGRAPH17 layout
  (107 keys): ``model1`` ... ``model10``, the shortcuts ``model3short8`` / ``model2short9`` /
  ``model1short10``, ``model_class`` (unused at inference) and ``model_out`` (1x1 conv, tanh).
* ``GF`` (``FusionGenerator``) is the same trunk plus 14 ``WeightGenerator``s (``weight_layer``,
  ``weight_layer2`` ... ``weight_layer10_2``, and ``weight_layerout``, which the official forward never
  uses), each with a ``simple_instance_conv`` and a ``simple_bg_conv`` (three 3x3 convs, ReLU).

Inputs are the official ones: ``(L - 50) / 100``, ab hints / 110 (zero) and the hint mask minus 0.5.
``width`` scales every channel count (1.0 = the official networks; other widths are for fast tests
and load no official checkpoint).

For export the fusion is split where its shapes depend on the data (see :class:`WeightGenerator`):
:class:`InstanceExport` (G plus GF's instance heads, on the box crops) and :class:`FusionExport`
(GF on the full image, given the placed instance maps) have static shapes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from colorrt.errors import InputError
from colorrt.models.width import scaled

# The 13 fused layers: name, channels at width 1, level (the feature map is size / 2**level).
LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv1_2", 64, 0),
    ("conv2_2", 128, 1),
    ("conv3_3", 256, 2),
    ("conv4_3", 512, 3),
    ("conv5_3", 512, 3),
    ("conv6_3", 512, 3),
    ("conv7_3", 512, 3),
    ("conv8_up", 256, 2),
    ("conv8_3", 256, 2),
    ("conv9_up", 128, 1),
    ("conv9_3", 128, 1),
    ("conv10_up", 128, 0),
    ("conv10_2", 128, 0),
)
WEIGHT_LAYERS = (
    "weight_layer",
    "weight_layer2",
    "weight_layer3",
    "weight_layer4",
    "weight_layer5",
    "weight_layer6",
    "weight_layer7",
    "weight_layer8_1",
    "weight_layer8_2",
    "weight_layer9_1",
    "weight_layer9_2",
    "weight_layer10_1",
    "weight_layer10_2",
)
CHECKPOINTS = {"G": "latest_net_G.pth", "GF": "latest_net_GF.pth", "GComp": "latest_net_GComp.pth"}
INPUT_CHANNELS = 4  # L, a hint, b hint, mask (input_nc + output_nc + 1 in the official code)
BACKGROUND_LOGIT = 100000.0  # added to the background weight outside every box (official constant)

Fuse = Callable[[int, torch.Tensor], torch.Tensor]


def _convs(channels: Sequence[int], *, dilation: int = 1, relu_first: bool = False, norm: bool = True):
    """[ReLU], (Conv3x3, ReLU) per step, [BatchNorm]: the official block layout (and key indices)."""
    layers: list[nn.Module] = [nn.ReLU(True)] if relu_first else []
    for c_in, c_out in zip(channels[:-1], channels[1:], strict=False):
        layers += [
            nn.Conv2d(c_in, c_out, 3, 1, padding=dilation, dilation=dilation, bias=True),
            nn.ReLU(True),
        ]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class SiggraphTrunk(nn.Module):
    """The SIGGRAPH17 generator as InstColorization defines it (``SIGGRAPHGenerator``): GComp.

    :meth:`trunk` runs it and offers each of the 13 :data:`LAYERS` to a ``fuse`` callback, which
    is how the instance network reads its features and the fusion network mixes them in.
    """

    def __init__(self, width: float = 1.0, classes: int = 529) -> None:
        super().__init__()
        c64, c128, c256, c512 = (scaled(c, width) for c in (64, 128, 256, 512))
        self.width = width
        self.model1 = _convs([INPUT_CHANNELS, c64, c64])
        self.model2 = _convs([c64, c128, c128])
        self.model3 = _convs([c128, c256, c256, c256])
        self.model4 = _convs([c256, c512, c512, c512])
        self.model5 = _convs([c512, c512, c512, c512], dilation=2)
        self.model6 = _convs([c512, c512, c512, c512], dilation=2)
        self.model7 = _convs([c512, c512, c512, c512])
        self.model8up = nn.Sequential(nn.ConvTranspose2d(c512, c256, 4, 2, padding=1, bias=True))
        self.model8 = _convs([c256, c256, c256], relu_first=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(c256, c128, 4, 2, padding=1, bias=True))
        self.model9 = _convs([c128, c128], relu_first=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(c128, c128, 4, 2, padding=1, bias=True))
        self.model10 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(c128, c128, 3, 1, padding=1, bias=True), nn.LeakyReLU(0.2)
        )
        self.model3short8 = nn.Sequential(nn.Conv2d(c256, c256, 3, 1, padding=1, bias=True))
        self.model2short9 = nn.Sequential(nn.Conv2d(c128, c128, 3, 1, padding=1, bias=True))
        self.model1short10 = nn.Sequential(nn.Conv2d(c64, c128, 3, 1, padding=1, bias=True))
        self.model_class = nn.Sequential(nn.Conv2d(c256, classes, 1, 1, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(c128, 2, 1, 1, bias=True), nn.Tanh())
        self.upsample4 = nn.Sequential(nn.Upsample(scale_factor=4, mode="nearest"))
        self.softmax = nn.Sequential(nn.Softmax(dim=1))

    def trunk(self, x: torch.Tensor, fuse: Fuse | None = None) -> torch.Tensor:
        """tanh ab / 110 from the 4-channel input; ``fuse(i, feature)`` may replace layer i's output."""
        f = fuse or (lambda _i, t: t)
        conv1_2 = f(0, self.model1(x))
        conv2_2 = f(1, self.model2(conv1_2[:, :, ::2, ::2]))
        conv3_3 = f(2, self.model3(conv2_2[:, :, ::2, ::2]))
        conv4_3 = f(3, self.model4(conv3_3[:, :, ::2, ::2]))
        conv5_3 = f(4, self.model5(conv4_3))
        conv6_3 = f(5, self.model6(conv5_3))
        conv7_3 = f(6, self.model7(conv6_3))
        conv8_up = f(7, self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv8_3 = f(8, self.model8(conv8_up))
        conv9_up = f(9, self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv9_3 = f(10, self.model9(conv9_up))
        conv10_up = f(11, self.model10up(conv9_3) + self.model1short10(conv1_2))
        conv10_2 = f(12, self.model10(conv10_up))
        return self.model_out(conv10_2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


class InstanceGenerator(SiggraphTrunk):
    """G: the SIGGRAPH17 trunk run on the box crops; returns its output and the 13 feature maps."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:  # type: ignore[override]
        features: list[torch.Tensor] = []

        def keep(_i: int, t: torch.Tensor) -> torch.Tensor:
            features.append(t)
            return t

        return self.trunk(x, keep), features


class WeightGenerator(nn.Module):
    """One fusion layer's weights: per-pixel logits for each instance and for the background.

    Official maths (per image, N boxes): ``w = softmax([l_1 .. l_N, l_bg + 1e5 * (1 - union)])``
    over N+1, where ``l_i`` is ``simple_instance_conv`` of crop i, resized bilinearly into its box and
    0 outside it, and the output is ``sum_i w_i F_i + w_bg B`` (``F_i`` likewise placed). Grouping the
    instances, this is ``s * A + (1 - s) * B`` with ``A = sum_i softmax(l)_i F_i`` (softmax over the
    N instances only), ``s = sigmoid(lam - l_bg)`` and ``lam = logsumexp_i(l_i) - 1e5 * (1 - union)``.
    ``A`` and ``lam`` depend on the boxes only, so the runtime computes them (``placed``, C + 1
    channels) and :meth:`fuse_placed` does the rest with static shapes.
    """

    def __init__(self, input_ch: int, inner_ch: int = 16) -> None:
        super().__init__()
        self.simple_instance_conv = self._head(input_ch, inner_ch)
        self.simple_bg_conv = self._head(input_ch, inner_ch)

    @staticmethod
    def _head(input_ch: int, inner_ch: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(input_ch, inner_ch, 3, 1, padding=1),
            nn.ReLU(True),
            nn.Conv2d(inner_ch, inner_ch, 3, 1, padding=1),
            nn.ReLU(True),
            nn.Conv2d(inner_ch, 1, 3, 1, padding=1),
            nn.ReLU(True),
        )

    def fuse_placed(self, placed: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """``s * A + (1 - s) * B`` from ``placed`` = [A (C channels), lam (1 channel)] and B."""
        channels = background.shape[1]
        share = torch.sigmoid(placed[:, channels:] - self.simple_bg_conv(background))
        return share * placed[:, :channels] + (1.0 - share) * background


class FusionGenerator(SiggraphTrunk):
    """GF: the SIGGRAPH17 trunk on the full image with a :class:`WeightGenerator` after each layer."""

    def __init__(self, width: float = 1.0, classes: int = 529) -> None:
        super().__init__(width, classes)
        for name, (_, channels, _) in zip(WEIGHT_LAYERS, LAYERS, strict=True):
            self.add_module(name, WeightGenerator(scaled(channels, width)))
        self.weight_layerout = WeightGenerator(2)  # in the official checkpoint, never used by its forward

    def weight_layers(self) -> list[WeightGenerator]:
        """The 13 weight generators in :data:`LAYERS` order."""
        return [getattr(self, name) for name in WEIGHT_LAYERS]

    def forward(self, x: torch.Tensor, placed: Sequence[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """tanh ab / 110 from the full image and the 13 placed instance maps (see WeightGenerator)."""
        layers = self.weight_layers()
        return self.trunk(x, lambda i, t: layers[i].fuse_placed(placed[i], t))


class InstanceExport(nn.Module):
    """Export view on the crops: per layer, G's feature map and GF's instance logit (C + 1 channels)."""

    def __init__(self, g: InstanceGenerator, gf: FusionGenerator) -> None:
        super().__init__()
        self.g = g
        self.heads = nn.ModuleList(w.simple_instance_conv for w in gf.weight_layers())

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, features = self.g(crops)
        return tuple(torch.cat([f, head(f)], dim=1) for f, head in zip(features, self.heads, strict=True))


class FusionExport(nn.Module):
    """Export view of GF: the full image and the 13 placed maps -> tanh ab / 110."""

    def __init__(self, gf: FusionGenerator) -> None:
        super().__init__()
        self.gf = gf

    def forward(self, image: torch.Tensor, *placed: torch.Tensor) -> torch.Tensor:
        return self.gf(image, placed)


@dataclass
class InstColorization:
    """The three networks of one InstColorization model (eval mode)."""

    g: InstanceGenerator
    gf: FusionGenerator
    gcomp: SiggraphTrunk

    @property
    def width(self) -> float:
        """Channel multiplier (1.0 = the official networks)."""
        return self.g.width

    def modules(self) -> dict[str, nn.Module]:
        """The networks by their checkpoint role (``G``, ``GF``, ``GComp``)."""
        return {"G": self.g, "GF": self.gf, "GComp": self.gcomp}


def build(width: float = 1.0, classes: int = 529) -> InstColorization:
    """The three networks with torch's default initialisation, in eval mode."""
    if not width > 0:
        raise InputError(f"width must be > 0, got {width}")
    return InstColorization(
        InstanceGenerator(width, classes).eval(),
        FusionGenerator(width, classes).eval(),
        SiggraphTrunk(width, classes).eval(),
    )


def random_init(width: float = 1.0, seed: int = 0) -> InstColorization:
    """Seeded random weights for G, GF and GComp (seeds ``seed``, ``seed + 1``, ``seed + 2``)."""
    from colorrt.models.checkpoint import init_random_

    model = build(width)
    for offset, module in enumerate(model.modules().values()):
        init_random_(module, seed + offset)
    return model


def load(weights: str | os.PathLike[str], width: float = 1.0) -> InstColorization:
    """The networks from a folder holding the official ``latest_net_{G,GF,GComp}.pth``, loaded strictly.

    A missing file, or a file whose keys or shapes do not fit its network (e.g. a GF file given as
    G), raises an error naming the file and listing the missing and unexpected keys.
    """
    from colorrt.models.checkpoint import load_checkpoint

    folder = Path(weights)
    if not folder.is_dir():
        raise InputError(
            f"instcolorization weights must be a folder, got {folder}",
            f"pass the folder holding {', '.join(CHECKPOINTS.values())} (e.g. coco_finetuned_mask_256)",
        )
    missing = [name for name in CHECKPOINTS.values() if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder} lacks {', '.join(missing)}", "the three official checkpoints are needed")
    model = build(width)
    for role, module in model.modules().items():
        hint = f"{CHECKPOINTS[role]} must hold InstColorization's {role} network"
        load_checkpoint(module, folder / CHECKPOINTS[role], arch=f"instcolorization {role}", hint=hint)
    return model
