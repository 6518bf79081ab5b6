"""How the model sees a picture and how a result is shown: the render size and before/after pictures.

* :func:`render_contract`: the contract with the longest side the model sees (``render_size``, like
  DeOldify's ``render_factor``) changed within what the contract allows.
* :func:`side_by_side`: the grey input beside its colorized result, one picture twice as wide.
"""

from __future__ import annotations

import warnings

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels.color import l_to_gray

MAX_RENDER_SIZE = 4096  # pixels: beyond this the model's memory grows past any common GPU or RAM


def render_contract(contract: ColorContract, render_size: int | None) -> ColorContract:
    """``contract`` with its render size set to ``render_size`` (None: unchanged).

    A ``"fixed"`` contract takes only its own size (its model has a fixed input): any other value is
    refused. A ``"multiple"`` contract takes ``render_size`` rounded to its multiple (with a warning
    when rounding changed it), from one multiple up to :data:`MAX_RENDER_SIZE`.
    """
    if render_size is None:
        return contract
    if isinstance(render_size, bool) or not isinstance(render_size, (int, np.integer)):
        raise InputError(f"render_size must be a whole number of pixels, got {render_size!r}")
    if contract.size_rule == "fixed":
        if render_size != contract.render_size:
            raise InputError(
                f"render size {render_size} is not possible: contract '{contract.name}' runs the model "
                f"at a fixed {contract.render_size}x{contract.render_size}",
                f"leave --render-size out (or pass {contract.render_size}); a model whose contract "
                "renders at 'any multiple' can change it",
            )
        return contract
    if not contract.multiple <= render_size <= MAX_RENDER_SIZE:
        raise InputError(
            f"render size must be from {contract.multiple} to {MAX_RENDER_SIZE} pixels, got {render_size}",
            f"the model's own is {contract.render_size}; smaller is faster, larger keeps finer colour detail",
        )
    rounded = max(contract.multiple, round(render_size / contract.multiple) * contract.multiple)
    if rounded != render_size:
        warnings.warn(
            f"render size {render_size} rounded to {rounded}: contract '{contract.name}' renders at "
            f"multiples of {contract.multiple} pixels",
            stacklevel=2,
        )
    return contract.replace(render_size=int(rounded))


def side_by_side(luminance: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The grey picture of ``luminance`` (CIE L, ``H x W``) left of ``colour`` (``H x W x 3/4``).

    Returns one ``H x 2W`` picture of ``colour``'s channels and type; an alpha channel is given to
    both halves.
    """
    top = np.iinfo(colour.dtype).max
    grey = np.rint(l_to_gray(luminance.astype(np.float32)) * top).astype(colour.dtype)
    left = np.repeat(grey[:, :, None], colour.shape[2], axis=2)
    if colour.shape[2] == 4:
        left[:, :, 3] = colour[:, :, 3]
    return np.concatenate([left, colour], axis=1)
