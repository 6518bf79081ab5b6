"""Instance-aware colorization (InstColorization): a detector, an instance network and a fusion
network run as one pipeline from a model bundle. See docs/instance.md."""

from __future__ import annotations

import os
from typing import Any

from colorrt.engines.bundle import DetectorContract, is_bundle
from colorrt.errors import InputError
from colorrt.runtime.instance.pipeline import FullResolutionContract, InstanceEngine


def open_bundle(
    path: str | os.PathLike[str],
    *,
    backend: str = "auto",
    device: str = "auto",
    contract: Any = None,
    **options: Any,
) -> InstanceEngine:
    """The :class:`InstanceEngine` of a bundle folder (what ``Runtime(bundle, detector=...)`` runs)."""
    if backend not in ("auto", "onnxruntime"):
        raise InputError(
            f"model bundles run on ONNX Runtime; backend {backend!r} cannot run {path}",
            "leave --backend at auto (or onnxruntime)",
        )
    if contract is not None:
        raise InputError("contract= does not apply to a model bundle: its manifest holds its contracts")
    return InstanceEngine(path, device=device, **options)


__all__ = ["DetectorContract", "FullResolutionContract", "InstanceEngine", "is_bundle", "open_bundle"]
