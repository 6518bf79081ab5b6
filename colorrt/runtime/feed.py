"""What a Runtime hands its engine: the contract's inputs, with the reference palette of a model that
takes one (Comicolorization), for images, folders, films and pages alike.

A Runtime's ``reference`` (an image file or array) is for a model whose contract has a ``"palette"``
extra input: it gets the reference's binary RGB palette as that input (:func:`reference_palette`,
computed once). Other models ignore it (pages take their own ``reference`` for palette recolouring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from colorrt.kernels.extras import model_feed


def reference_palette(runtime: Any) -> np.ndarray | None:
    """The palette input of ``runtime``'s model from its ``reference`` (None when the model takes
    none, or no reference was given); computed on first use and kept."""
    reference = getattr(runtime, "reference", None)
    if reference is None:
        return None
    cached = vars(runtime).get("_reference_palette", False)
    if cached is not False:
        return cached
    contract = getattr(runtime, "contract", None) or runtime.engine.contract
    palette = None
    if contract.takes_reference:
        from colorrt.pages.palette import model_palette  # runtime hands pages over lazily

        palette = model_palette(reference, contract)
    runtime._reference_palette = palette
    return palette


def runtime_feed(runtime: Any, luminances: Sequence[np.ndarray], hints: Sequence[Any]) -> Any:
    """The engine input for full-resolution L planes (hints: one entry or None per plane)."""
    given = hints if any(h is not None for h in hints) else None
    return model_feed(luminances, runtime.contract, hints=given, palette=reference_palette(runtime))
