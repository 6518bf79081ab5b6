"""GPU imports in one place: CuPy (and the error when it is missing) for every GPU module.

Importing this module needs no GPU package; the functions import CuPy when called.
"""

from __future__ import annotations

from typing import Any

from colorrt.errors import MissingDependencyError

CPU_FALLBACK = "the CPU path works without a GPU: device='cpu' (or `colorrt colorize --device cpu`)"


def missing_gpu_dependency(package: str, purpose: str) -> MissingDependencyError:
    """MissingDependencyError for a GPU package: install the ``gpu`` extra, or stay on the CPU path."""
    error = MissingDependencyError(package, "gpu", purpose)
    error.hint = f"{error.hint}; {CPU_FALLBACK}"
    error.args = (f"{error.what}\n  hint: {error.hint}",)
    return error


def import_cupy(purpose: str) -> Any:
    """The ``cupy`` module, or MissingDependencyError naming the ``gpu`` extra."""
    try:
        import cupy
    except (ImportError, OSError) as e:  # OSError: the wheel is there, its CUDA libraries are not
        raise missing_gpu_dependency("cupy", purpose) from e
    return cupy
