"""colorrt: fast colorization inference for film, photos and manga.

Public API: :class:`Runtime`, :class:`ColorContract`, :func:`load_engine`, :func:`export`,
:func:`build`. Heavy modules (torch, TensorRT, CuPy) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from colorrt._version import __version__
from colorrt.contract import ColorContract
from colorrt.errors import ColorRTError

__all__ = ["ColorContract", "ColorRTError", "Runtime", "load_engine", "export", "build", "__version__"]

if TYPE_CHECKING:
    from colorrt.engines.registry import load_engine
    from colorrt.export import export
    from colorrt.runtime import Runtime

_LAZY = {
    "Runtime": ("colorrt.runtime", "Runtime"),
    "load_engine": ("colorrt.engines.registry", "load_engine"),
    "export": ("colorrt.export", "export"),
    "build": ("colorrt.engines.tensorrt", "build"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'colorrt' has no attribute {name!r}")
