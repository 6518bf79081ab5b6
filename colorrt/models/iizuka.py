"""Iizuka et al. 2016, "Let there be Color!" (satoshiiizuka/siggraph2016_colorization), in torch.

Licence: the released weights (``colornet.t7``, ``colornet_imagenet.t7``) and code are CC BY-NC-SA 4.0,
non-commercial use only; colorrt converts them but the licence travels with every exported file.

As the official ``colorize.lua`` runs it: the luma Y of the picture, scaled so both sides are
multiples of 8, minus a scalar mean stored in the ``.t7``, is the local input; a bilinear 224x224
copy of that input feeds the global path; the output is ab by sigmoid, ``ab = (2 s - 1) * 100``, at
half the local input's resolution. The mean is a buffer of the module, loaded from the file, and
the exported contract takes it (:func:`iizuka_contract_for`).
"""

from __future__ import annotations

import torch
from torch import nn

from colorrt.contract import ColorContract, iizuka_contract
from colorrt.models.ltbc import LetThereBeColor

LICENCE = "CC BY-NC-SA 4.0 (non-commercial)"


class Iizuka2016(nn.Module):
    """``forward(local, global_copy)``: ``(N, 1, H, W)`` and ``(N, 1, 224, 224)`` -> ab sigmoid at H/2."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.net = LetThereBeColor(1, 2, width, eps=1e-5, separate_global_low_level=True)
        self.register_buffer("mean", torch.zeros(()))

    def forward(self, local: torch.Tensor, global_copy: torch.Tensor) -> torch.Tensor:
        return self.net(local, global_copy)


def iizuka_contract_for(model: nn.Module) -> ColorContract:
    """The exported model's contract, with the mean the weights came with."""
    return iizuka_contract(float(model.mean))
