"""Launching the kernels of ``cuda_src/colorrt_kernels.cu``: CuPy's launcher and the argument helpers.

The :class:`Launcher` protocol lets the tests run the same launch code on the kernels' host twins.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from colorrt.errors import InputError
from colorrt.kernels.cuda.device import require_cuda

SOURCE_PATH = Path(__file__).resolve().parent.parent / "cuda_src" / "colorrt_kernels.cu"
KERNELS = (
    "rgb_to_l_u8",
    "rgb_to_l_u16",
    "grey_to_l_u8",
    "grey_to_l_u16",
    "float_to_l",
    "resize_rows",
    "resize_cols",
    "preprocess_cols_f32",
    "preprocess_cols_f16",
    "rgb_to_ab",
    "decode_bins",
    "merge_u8",
)
BLOCK = 256  # threads per block: memory-bound kernels, any multiple of 32 from 128 up does as well
MAX_BLOCKS = 1 << 20  # grid-stride loops cover larger outputs


class Launcher(Protocol):
    """Runs the kernels of ``colorrt_kernels.cu`` on arrays of one array module (``xp``)."""

    xp: Any  # cupy for the GPU; numpy for the host twins used by the tests

    def launch(self, name: str, count: int, *args: Any) -> None:
        """Run kernel ``name`` over ``count`` output elements; ``count`` is passed as the last argument."""

    def constant(self, key: Any, build: Callable[[], np.ndarray]) -> Any:
        """A cached, read-only device copy of the host table ``build()``."""


class CupyLauncher:
    """Launches the kernels with CuPy on one device; the module is compiled on first use."""

    def __init__(self, device_id: int) -> None:
        self.xp = require_cuda("colorrt's GPU kernels", device_id)
        self.device_id = device_id
        self._module: Any = None
        self._functions: dict[str, Any] = {}
        self._constants: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def launch(self, name: str, count: int, *args: Any) -> None:
        if count <= 0:
            return
        blocks = min(math.ceil(count / BLOCK), MAX_BLOCKS)
        self._function(name)((blocks,), (BLOCK,), (*args, np.int64(count)))

    def constant(self, key: Any, build: Callable[[], np.ndarray]) -> Any:
        table = self._constants.get(key)
        if table is None:
            with self.xp.cuda.Device(self.device_id):
                table = self.xp.asarray(np.ascontiguousarray(build()))
                # The copy is queued on the current stream, but the cached table is read from
                # any stream later (each loop and engine has its own): let it land first.
                self.xp.cuda.get_current_stream().synchronize()
            self._constants[key] = table
        return table

    def compile(self) -> None:
        """Compile (or load from CuPy's cache) every kernel now instead of at first use."""
        for name in KERNELS:
            self._function(name)

    def _function(self, name: str) -> Any:
        function = self._functions.get(name)
        if function is None:
            with self._lock, self.xp.cuda.Device(self.device_id):
                if self._module is None:
                    self._module = self.xp.RawModule(code=SOURCE_PATH.read_text())
                function = self._module.get_function(name)
            self._functions[name] = function
        return function


_LAUNCHERS: dict[int, CupyLauncher] = {}


def launcher_for(device_id: int | None = None) -> CupyLauncher:
    """The cached launcher of a device (default: CuPy's current device)."""
    if device_id is None:
        cp = require_cuda("colorrt's GPU kernels")
        device_id = cp.cuda.Device().id
    launcher = _LAUNCHERS.get(device_id)
    if launcher is None:
        launcher = _LAUNCHERS.setdefault(device_id, CupyLauncher(device_id))
    return launcher


def resolve_launcher(launcher: Launcher | None) -> Launcher:
    """``launcher``, or the current device's when None."""
    return launcher if launcher is not None else launcher_for()


def i32(value: int) -> np.int32:
    """A kernel's ``int`` argument."""
    return np.int32(value)


def f32(value: float) -> np.float32:
    """A kernel's ``float`` argument."""
    return np.float32(value)


def output_array(xp: Any, out: Any, shape: tuple[int, ...], dtype: Any, where: str) -> Any:
    """A new array for a kernel's result, or ``out`` once checked to fit (``where`` names the call)."""
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise InputError(
            f"{where}: out must be a C-contiguous {np.dtype(dtype).name} array shaped {tuple(shape)}, "
            f"got {out.dtype} {tuple(out.shape)}",
        )
    return out
