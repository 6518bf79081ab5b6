"""CycleGAN / pix2pix generators, structured exactly like junyanz/pytorch-CycleGAN-and-pix2pix.

Module nesting and layer order follow the official ``models/networks.py`` so that the ``state_dict``
keys of published checkpoints (``latest_net_G.pth``, ``latest_net_G_A.pth``) match and load with
``strict=True``. For example the 9-block ResNet with instance norm has 48 tensors:
``model.{1,4,7}``, ``model.{10..18}.conv_block.{1,5}``, ``model.{19,22,26}`` (``.weight``/``.bias``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

NormName = Literal["instance", "batch", "none"]
PaddingName = Literal["reflect", "replicate", "zero"]


def get_norm_layer(norm: NormName = "instance") -> Callable[[int], nn.Module]:
    """The norm layer factory of the official code (instance: no affine, no running stats)."""
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"norm must be 'instance', 'batch' or 'none', got {norm!r}")


def _uses_bias(norm: NormName) -> bool:
    # Official rule: convolutions followed by a norm carry a bias only with InstanceNorm
    # (BatchNorm's own shift makes it redundant). 'none' keeps the official quirk (no bias).
    return norm == "instance"


class ResnetBlock(nn.Module):
    """Residual block: pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm; plus identity."""

    def __init__(
        self, dim: int, padding_type: PaddingName, norm: NormName, use_dropout: bool, use_bias: bool
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        layers: list[nn.Module] = []
        for second in (False, True):
            pad, p = _padding(padding_type)
            layers += pad
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _padding(padding_type: PaddingName) -> tuple[list[nn.Module], int]:
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise ValueError(f"padding_type must be 'reflect', 'replicate' or 'zero', got {padding_type!r}")


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator (resnet_9blocks / resnet_6blocks); spatial size a multiple of 4."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: NormName = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        padding_type: PaddingName = "reflect",
    ) -> None:
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        super().__init__()
        self.input_nc, self.output_nc, self.ngf = input_nc, output_nc, ngf
        norm_layer, bias = get_norm_layer(norm), _uses_bias(norm)
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**n_downsampling
        model += [ResnetBlock(ngf * mult, padding_type, norm, use_dropout, bias) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=bias,
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, [submodule], up, concatenated with its input (except the outermost)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: NormName = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        norm_layer, bias = get_norm_layer(norm), _uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, uprelu, upconv, norm_layer(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [
                downrelu,
                downconv,
                norm_layer(inner_nc),
                submodule,
                uprelu,
                upconv,
                norm_layer(outer_nc),
            ]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net (unet_256: num_downs 8, unet_128: 7); spatial size a multiple of 2**num_downs."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: NormName = "batch",
        use_dropout: bool = False,
    ) -> None:
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        super().__init__()
        self.num_downs = num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        for outer, inner in ((ngf * 4, ngf * 8), (ngf * 2, ngf * 4), (ngf, ngf * 2)):
            block = UnetSkipConnectionBlock(outer, inner, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
