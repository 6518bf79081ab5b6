"""CuPy and the CUDA device: the checks and errors every GPU kernel call goes through."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from colorrt.errors import BackendError
from colorrt.gpu import CPU_FALLBACK, import_cupy


class CudaUnavailableError(BackendError):
    """No usable CUDA device (no GPU, no driver, or a driver too old for the CUDA runtime)."""


class GpuOutOfMemoryError(BackendError):
    """The GPU ran out of memory."""


def require_cuda(purpose: str, device_id: int | None = None) -> Any:
    """CuPy, after checking that CUDA device ``device_id`` (default: the current one) is usable."""
    cp = import_cupy(purpose)
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as e:
        raise CudaUnavailableError(
            f"{purpose} needs an NVIDIA GPU, but CUDA reports no usable device ({e})",
            "check the GPU and its driver with nvidia-smi (the driver must support the CUDA "
            f"version CuPy was built for); {CPU_FALLBACK}",
        ) from e
    if count < 1 or (device_id is not None and not 0 <= device_id < count):
        wanted = "a CUDA device" if device_id is None else f"CUDA device {device_id}"
        raise CudaUnavailableError(
            f"{purpose} needs {wanted}, but {count} CUDA device(s) are visible",
            f"check CUDA_VISIBLE_DEVICES and nvidia-smi, or pick device_id < {count}; {CPU_FALLBACK}",
        )
    return cp


@contextlib.contextmanager
def gpu_errors(what: str) -> Iterator[None]:
    """Turn CuPy's and torch's out-of-memory errors into :class:`GpuOutOfMemoryError` saying ``what``."""
    try:
        yield
    except Exception as e:
        if _is_out_of_memory(e):
            raise GpuOutOfMemoryError(
                f"the GPU ran out of memory while {what} ({e})",
                "lower batch_size (or the render size), close other programs using the GPU "
                f"(nvidia-smi lists them); {CPU_FALLBACK}",
            ) from e
        raise


def _is_out_of_memory(error: BaseException) -> bool:
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(error, cupy.cuda.memory.OutOfMemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return oom is not None and isinstance(error, oom)
