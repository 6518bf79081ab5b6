"""Getting at TensorRT and the GPU: the lazy ``tensorrt`` import, its error, GPU facts and the logger.

Nothing here imports tensorrt or cupy at module level; the functions do when called.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

from colorrt.errors import BackendError, MissingDependencyError
from colorrt.gpu import import_cupy

_LOG_LINES = 200
log = logging.getLogger("colorrt.tensorrt")


class TensorRTUnavailableError(MissingDependencyError):
    """TensorRT is not installed (or its libraries cannot be loaded)."""

    def __init__(self, purpose: str, cause: BaseException | None = None) -> None:
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        BackendError.__init__(
            self,
            f"{purpose} needs TensorRT (Python package 'tensorrt'), which is not installed "
            f"or cannot load{detail}",
            "on a machine with an NVIDIA GPU: pip install 'colorrt[gpu]' "
            "(TensorRT 11, package tensorrt-cu13); "
            "meanwhile `colorrt colorize --backend onnxruntime` works without TensorRT",
        )
        self.package = "tensorrt"
        self.extra = "gpu"


def import_tensorrt(purpose: str) -> Any:
    """The ``tensorrt`` module, or :class:`TensorRTUnavailableError` saying how to get it."""
    try:
        import tensorrt
    except (ImportError, OSError) as e:  # OSError: the wheel is there but libnvinfer is not
        raise TensorRTUnavailableError(purpose, e) from e
    return tensorrt


@dataclass(frozen=True)
class GpuInfo:
    """The CUDA device an engine is built for or runs on."""

    device_id: int
    name: str
    compute_capability: str  # "9.0"


def gpu_info(device_id: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``device_id`` (via CuPy)."""
    cp = import_cupy("finding the GPU for TensorRT")
    try:
        props = cp.cuda.runtime.getDeviceProperties(device_id)
    except cp.cuda.runtime.CUDARuntimeError as e:
        raise BackendError(
            f"CUDA device {device_id} is not usable: {e}", "TensorRT needs an NVIDIA GPU; check nvidia-smi"
        ) from e
    name = props["name"]
    name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    return GpuInfo(device_id, name.strip("\x00 "), f"{props['major']}.{props['minor']}")


def make_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps the recent lines (for error messages) and forwards to logging."""
    levels = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.DEBUG, 4: logging.DEBUG}

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)
            if level <= 3:  # INTERNAL_ERROR, ERROR, WARNING, INFO; VERBOSE is dropped
                self.lines.append(f"[{getattr(severity, 'name', level)}] {msg}")
            log.log(levels.get(level, logging.DEBUG), "TensorRT: %s", msg)

        def tail(self, count: int = 15) -> str | None:
            lines = [line for line in self.lines if not line.startswith("[INFO]")][-count:]
            return "TensorRT said:\n    " + "\n    ".join(lines) if lines else None

    return CapturingLogger()
