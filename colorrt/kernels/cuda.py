"""GPU twins of the NumPy reference kernels (``color``, ``resize``, ``pipeline``), in CUDA through CuPy.

    uint8 frames --luminance_batch--> full-res L --preprocess--> NCHW fp16/fp32 model input
    model output --decode_ab--> ab --merge (upsample + Lab->sRGB)--> uint8 frames

The CUDA C source (``cuda_src/colorrt_kernels.cu``) is compiled once per device by NVRTC into one
``cupy.RawModule`` and cached here (and by CuPy on disk). Every table the kernels use (sRGB lookup
tables, resize taps, colour matrices, uint8 rounding thresholds) is taken from the NumPy reference,
so the two paths share one definition of the maths; the tests hold them together (on a GPU through
CuPy, and on any machine through the kernels' host twins, the same C code compiled for the CPU).

The functions keep the reference signatures and take and return CuPy arrays; the batch forms
(``luminance_batch``, ``preprocess_frames``, ``postprocess_batch``) are what the GPU loop uses.
Everything runs on CuPy's current device and stream. ``import colorrt.kernels.cuda`` needs no
CuPy; the first call does, and raises :class:`~colorrt.errors.MissingDependencyError` (no CuPy) or
:class:`CudaUnavailableError` (no usable CUDA device) with the fix.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import BackendError, InputError, MissingDependencyError
from colorrt.kernels import color, resize
from colorrt.kernels import pipeline as reference

SOURCE_PATH = Path(__file__).resolve().parent / "cuda_src" / "colorrt_kernels.cu"
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
_INPUT_MODES = {"L": 0, "gray_rgb": 1, "L_hints": 2}  # MODE_* in the CUDA source
_CPU_FALLBACK = "the CPU path works without a GPU: device='cpu' (or `colorrt colorize --device cpu`)"


class CudaUnavailableError(BackendError):
    """No usable CUDA device (no GPU, no driver, or a driver too old for the CUDA runtime)."""


class GpuOutOfMemoryError(BackendError):
    """The GPU ran out of memory."""


# ---------------------------------------------------------------- CuPy and the device


def missing_gpu_dependency(package: str, purpose: str) -> MissingDependencyError:
    """MissingDependencyError for a GPU package: install the ``gpu`` extra, or stay on the CPU path."""
    error = MissingDependencyError(package, "gpu", purpose)
    error.hint = f"{error.hint}; {_CPU_FALLBACK}"
    error.args = (f"{error.what}\n  hint: {error.hint}",)
    return error


def import_cupy(purpose: str) -> Any:
    """The ``cupy`` module, or MissingDependencyError naming the ``gpu`` extra."""
    try:
        import cupy
    except (ImportError, OSError) as e:  # OSError: the wheel is there, its CUDA libraries are not
        raise missing_gpu_dependency("cupy", purpose) from e
    return cupy


def require_cuda(purpose: str, device_id: int | None = None) -> Any:
    """CuPy, after checking that CUDA device ``device_id`` (default: the current one) is usable."""
    cp = import_cupy(purpose)
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as e:
        raise CudaUnavailableError(
            f"{purpose} needs an NVIDIA GPU, but CUDA reports no usable device ({e})",
            "check the GPU and its driver with nvidia-smi (the driver must support the CUDA "
            f"version CuPy was built for); {_CPU_FALLBACK}",
        ) from e
    if count < 1 or (device_id is not None and not 0 <= device_id < count):
        wanted = "a CUDA device" if device_id is None else f"CUDA device {device_id}"
        raise CudaUnavailableError(
            f"{purpose} needs {wanted}, but {count} CUDA device(s) are visible",
            f"check CUDA_VISIBLE_DEVICES and nvidia-smi, or pick device_id < {count}; {_CPU_FALLBACK}",
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
                f"(nvidia-smi lists them); {_CPU_FALLBACK}",
            ) from e
        raise


def _is_out_of_memory(error: BaseException) -> bool:
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(error, cupy.cuda.memory.OutOfMemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return oom is not None and isinstance(error, oom)


# ---------------------------------------------------------------- launching


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


def _resolve(launcher: Launcher | None) -> Launcher:
    return launcher if launcher is not None else launcher_for()


def _i32(value: int) -> np.int32:
    return np.int32(value)


def _f32(value: float) -> np.float32:
    return np.float32(value)


# ---------------------------------------------------------------- tables from the reference


def _y_luts(bits: int) -> np.ndarray:
    return np.concatenate(color._y_luts(bits))


def _taps(in_size: int, out_size: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    taps = resize._axis_taps(in_size, out_size, antialias)
    return taps.index.astype(np.int32), taps.weight.astype(np.float32)


def _axis(launcher: Launcher, in_size: int, out_size: int, antialias: bool = True) -> tuple[int, Any, Any]:
    """(taps per output, index, weight) of one axis on the device."""
    index = launcher.constant(
        ("taps-index", in_size, out_size, antialias), lambda: _taps(in_size, out_size, antialias)[0]
    )
    weight = launcher.constant(
        ("taps-weight", in_size, out_size, antialias), lambda: _taps(in_size, out_size, antialias)[1]
    )
    return int(index.shape[1]), index, weight


def _matrix(launcher: Launcher, name: str) -> Any:
    source = {"t_from_rgb": color._T_FROM_RGB, "rgb_from_t": color._RGB_FROM_T}[name]
    return launcher.constant(name, lambda: source.astype(np.float32).ravel())


def _code_tables(launcher: Launcher) -> tuple[Any, Any, int]:
    base = launcher.constant("u8-base", lambda: color._u8_threshold_lut("<f4")[0])
    thresholds = launcher.constant("u8-thresholds", lambda: color._u8_threshold_lut("<f4")[1])
    return base, thresholds, int(base.shape[0])


# ---------------------------------------------------------------- image -> full-resolution L


def luminance(image: Any, *, launcher: Launcher | None = None) -> Any:
    """float32 ``H x W`` CIE L (0..100) of one image on the GPU (as ``pipeline.luminance``)."""
    k = _resolve(launcher)
    image = k.xp.asarray(image)
    reference._check_image_shape(image, "luminance")
    return luminance_batch(image[None], launcher=k)[0]


def luminance_batch(frames: Any, *, out: Any = None, launcher: Launcher | None = None) -> Any:
    """float32 ``N x H x W`` CIE L of a batch of equal-size images ``N x H x W [x 1/3/4]``.

    uint8 / uint16 go through the reference's lookup tables; float images must be in 0..1 (clipped).
    RGBA has its alpha ignored. ``out``: an ``N x H x W`` float32 array to write into.
    """
    k = _resolve(launcher)
    xp = k.xp
    frames = _check_frames(xp.asarray(frames))
    channels = 1 if frames.ndim == 3 else frames.shape[3]
    count = math.prod(frames.shape[:3])
    out = _output(xp, out, frames.shape[:3], np.float32, "luminance_batch")
    if frames.dtype in (np.uint8, np.uint16):
        bits = frames.dtype.itemsize * 8
        suffix = f"u{bits}"
        if channels in (3, 4):
            luts = k.constant(("y-luts", bits), lambda: _y_luts(bits))
            k.launch(f"rgb_to_l_{suffix}", count, frames, _i32(channels), luts, out)
        else:
            lut = k.constant(("grey-lut", bits), lambda: reference._grey_l_lut(bits))
            k.launch(f"grey_to_l_{suffix}", count, frames, _i32(channels), lut, out)
        return out
    frames = xp.ascontiguousarray(frames, dtype=np.float32)
    reference._check_unit_range(frames)
    weights = k.constant("y-weights", lambda: color._Y_FROM_RGB.astype(np.float32))
    k.launch("float_to_l", count, frames, _i32(channels if channels in (3, 4) else 1), weights, out)
    return out


def _check_frames(frames: Any) -> Any:
    if frames.ndim == 4 and frames.shape[3] not in (1, 3, 4) or frames.ndim not in (3, 4):
        raise InputError(
            f"expected a batch of images shaped N x H x W or N x H x W x 1/3/4, got {frames.shape}",
            "stack frames of one size into one array",
        )
    reference._check_pixels(frames, "the image batch")
    if frames.dtype in (np.uint8, np.uint16):
        return frames if frames.flags.c_contiguous else frames.copy()
    return frames


def _output(xp: Any, out: Any, shape: tuple[int, ...], dtype: Any, where: str) -> Any:
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise InputError(
            f"{where}: out must be a C-contiguous {np.dtype(dtype).name} array shaped {tuple(shape)}, "
            f"got {out.dtype} {tuple(out.shape)}",
        )
    return out


# ---------------------------------------------------------------- resize


def resize_bilinear(
    planes: Any, out_hw: Sequence[int], antialias: bool = True, *, launcher: Launcher | None = None
) -> Any:
    """Resize float32 ``(..., H, W)`` planes to ``(..., out_h, out_w)`` (as ``resize.resize_bilinear``).

    Float64 planes are resized in float32 (the GPU path is float32 throughout).
    """
    k = _resolve(launcher)
    xp = k.xp
    planes = xp.asarray(planes)
    if planes.ndim < 2 or 0 in planes.shape[-2:]:
        raise InputError(f"resize_bilinear: expected planes shaped (..., H, W), got shape {planes.shape}")
    if planes.dtype not in (np.float32, np.float64):
        raise InputError(
            f"resize_bilinear: expected float32 or float64 planes, got {planes.dtype}",
            "convert with .astype(np.float32)",
        )
    out_h, out_w = (int(v) for v in out_hw)
    if out_h < 1 or out_w < 1:
        raise InputError(f"resize_bilinear: output size must be positive, got {out_h}x{out_w}")
    lead, (in_h, in_w) = planes.shape[:-2], planes.shape[-2:]
    x = xp.ascontiguousarray(planes, dtype=np.float32).reshape(-1, in_h, in_w)
    rows = _resize_rows(k, x, out_h, antialias)
    return _resize_cols(k, rows, out_w, antialias).reshape(*lead, out_h, out_w)


def _resize_rows(k: Launcher, planes: Any, out_h: int, antialias: bool = True) -> Any:
    """(P, H, W) -> (P, out_h, W); the input itself when the height does not change."""
    count, in_h, width = planes.shape
    if in_h == out_h:
        return planes
    taps, index, weight = _axis(k, in_h, out_h, antialias)
    out = k.xp.empty((count, out_h, width), dtype=np.float32)
    k.launch(
        "resize_rows", out.size, planes, _i32(in_h), _i32(width), _i32(out_h), _i32(taps), index, weight, out
    )
    return out


def _resize_cols(k: Launcher, planes: Any, out_w: int, antialias: bool = True) -> Any:
    count, height, in_w = planes.shape
    taps, index, weight = _axis(k, in_w, out_w, antialias)
    out = k.xp.empty((count, height, out_w), dtype=np.float32)
    k.launch("resize_cols", out.size, planes, _i32(in_w), _i32(out_w), _i32(taps), index, weight, out)
    return out


# ---------------------------------------------------------------- preprocess


def preprocess(
    luminances: Sequence[Any] | Any,
    contract: ColorContract,
    hints: Sequence[Any | None] | None = None,
    dtype: np.dtype | type = np.float32,
    *,
    out: Any = None,
    launcher: Launcher | None = None,
) -> Any:
    """NCHW model input from full-resolution L planes (as ``pipeline.preprocess``), on the GPU.

    ``luminances``: a sequence of ``H x W`` planes, or one ``N x H x W`` array (one launch for the
    batch). The last resize pass, the contract's normalization, the NCHW layout and the cast to
    ``dtype`` (float32 or float16) are one kernel. ``out``: an NCHW array to write into.
    """
    k = _resolve(launcher)
    xp = k.xp
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise InputError(f"preprocess: dtype must be float32 or float16, got {dtype}")
    planes = _l_planes(xp, luminances)
    height, width = _render_shape([p.shape[-2:] for p in planes], contract)
    if hints is not None:
        hints = reference._check_hints(hints, list(_each(planes)), contract)
    count = sum(p.shape[0] for p in planes)
    out = _output(xp, out, (count, contract.input_channels, height, width), dtype, "preprocess")
    start = 0
    for group in planes:
        _preprocess_group(k, group, contract, out[start : start + group.shape[0]])
        start += group.shape[0]
    if hints is not None:
        for i, hint in enumerate(hints):
            if hint is not None:
                out[i, 1:] = _hint_planes(k, xp.asarray(hint), (height, width), contract).astype(dtype)
    return out


def _l_planes(xp: Any, luminances: Sequence[Any] | Any) -> list[Any]:
    """The L planes as a list of contiguous float32 (n, H, W) groups (one group for a 3-D array)."""
    if hasattr(luminances, "ndim") and luminances.ndim == 3:
        groups = [luminances]
    else:
        if len(luminances) == 0:
            raise InputError("preprocess: got an empty batch", "pass at least one luminance plane")
        groups = []
        for i, plane in enumerate(luminances):
            plane = xp.asarray(plane)
            if plane.ndim != 2 or 0 in plane.shape:
                raise InputError(
                    f"preprocess item {i}: expected an H x W lightness plane (CIE L), "
                    f"got shape {plane.shape}",
                    "compute it with colorrt.kernels.cuda.luminance(image)",
                )
            groups.append(plane[None])
    if any(0 in g.shape for g in groups):
        raise InputError("preprocess: got an empty batch", "pass at least one luminance plane")
    return [xp.ascontiguousarray(g, dtype=np.float32) for g in groups]


def _each(groups: list[Any]) -> Iterator[Any]:
    for group in groups:
        yield from (group[i] for i in range(group.shape[0]))


def _render_shape(sizes: list[tuple[int, int]], contract: ColorContract) -> tuple[int, int]:
    shapes = {contract.render_shape(*size) for size in sizes}
    if len(shapes) != 1:
        raise InputError(
            f"preprocess: images of sizes {sorted(set(sizes))} render at different shapes {sorted(shapes)} "
            f"under contract '{contract.name}'; one batch needs one render shape",
            "batch images of the same size together (or use a fixed-size contract)",
        )
    return shapes.pop()


def _preprocess_group(k: Launcher, group: Any, contract: ColorContract, out: Any) -> None:
    _, out_c, out_h, out_w = out.shape
    rows = _resize_rows(k, group, out_h)
    taps, index, weight = _axis(k, group.shape[2], out_w)
    kernel = "preprocess_cols_f16" if out.dtype == np.float16 else "preprocess_cols_f32"
    k.launch(
        kernel,
        group.shape[0] * out_h * out_w,
        rows,
        _i32(out_h),
        _i32(group.shape[2]),
        _i32(out_w),
        _i32(taps),
        index,
        weight,
        _i32(_INPUT_MODES[contract.input_space]),
        _i32(out_c),
        _f32(contract.input_scale),
        _f32(contract.input_offset),
        _f32(contract.mask_offset),
        out,
    )


def _hint_planes(k: Launcher, hint: Any, size: tuple[int, int], contract: ColorContract) -> Any:
    """Channels 1..3 of an L_hints input from a full-res (a, b, mask) hint (as the reference)."""
    xp = k.xp
    hint = hint.astype(np.float32)
    mask = xp.clip(hint[..., 2], 0.0, 1.0)
    weighted = xp.stack([hint[..., 0] * mask, hint[..., 1] * mask, mask])
    small = resize_bilinear(weighted, size, launcher=k)
    covered = small[2] > 1e-3
    safe = xp.where(covered, small[2], 1.0)
    planes = xp.zeros((3, *size), dtype=np.float32)
    planes[0] = xp.where(covered, small[0] / safe * np.float32(contract.hint_scale), 0.0)
    planes[1] = xp.where(covered, small[1] / safe * np.float32(contract.hint_scale), 0.0)
    planes[2] = covered.astype(np.float32) + np.float32(contract.mask_offset)
    return planes


def preprocess_frames(
    frames: Any,
    contract: ColorContract,
    dtype: np.dtype | type = np.float32,
    *,
    out: Any = None,
    luminance_out: Any = None,
    launcher: Launcher | None = None,
) -> tuple[Any, Any]:
    """(NCHW model input, ``N x H x W`` full-res L) of a batch of equal-size uint8 frames.

    Three kernels: frame -> L (kept for the merge), row resize, column resize fused with the
    normalization, layout and cast.
    """
    k = _resolve(launcher)
    lightness = luminance_batch(frames, out=luminance_out, launcher=k)
    return preprocess(lightness, contract, dtype=dtype, out=out, launcher=k), lightness


# ---------------------------------------------------------------- postprocess


def decode_ab(output: Any, contract: ColorContract, *, launcher: Launcher | None = None) -> Any:
    """``(N, 2, h, w)`` float32 CIE ab from a model's NCHW output (as ``pipeline.decode_ab``)."""
    k = _resolve(launcher)
    xp = k.xp
    y = _check_output(xp, output, contract)
    n, _, h, w = y.shape
    if contract.output_kind == "ab":
        ab = y * np.float32(contract.output_scale)
        if contract.output_offset:
            ab += np.float32(contract.output_offset)
        return ab
    ab = xp.empty((n, 2, h, w), dtype=np.float32)
    if contract.output_kind == "rgb":
        k.launch(
            "rgb_to_ab",
            n * h * w,
            y,
            _f32(contract.output_scale),
            _f32(contract.output_offset),
            _matrix(k, "t_from_rgb"),
            ab,
            np.int64(h * w),
        )
        return ab
    centers = k.constant(("bins", contract.bin_centers), lambda: np.asarray(contract.bin_centers, np.float32))
    k.launch(
        "decode_bins",
        n * h * w,
        y,
        _i32(y.shape[1]),
        centers,
        _f32(1.0 / contract.annealing_temperature),
        ab,
        np.int64(h * w),
    )
    return ab


def _check_output(xp: Any, output: Any, contract: ColorContract) -> Any:
    y = xp.asarray(output)
    reference._check_model_output(y, contract)
    return xp.ascontiguousarray(y, dtype=np.float32)


def merge(luminance: Any, ab: Any, *, launcher: Launcher | None = None) -> Any:
    """uint8 ``H x W x 3`` sRGB from full-res L (``H x W``) and ab (``2 x h x w``), as ``pipeline.merge``."""
    k = _resolve(launcher)
    xp = k.xp
    lightness = xp.asarray(luminance)
    ab = xp.asarray(ab)
    if lightness.ndim != 2 or 0 in lightness.shape:
        raise InputError(
            f"merge: expected an H x W lightness plane (CIE L), got shape {lightness.shape}",
            "compute it with colorrt.kernels.cuda.luminance(image)",
        )
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise InputError(
            f"merge: expected ab shaped (2, h, w), got {ab.shape}", "take one item of decode_ab's output"
        )
    return _merge(k, lightness[None], ab[None], 1.0, 0.0)[0]


def postprocess(
    output: Any, luminances: Sequence[Any], contract: ColorContract, *, launcher: Launcher | None = None
) -> list[Any]:
    """uint8 sRGB images: :func:`decode_ab` of the batch output, then :func:`merge` with each full-res L."""
    k = _resolve(launcher)
    ab = decode_ab(output, contract, launcher=k)
    if len(luminances) != len(ab):
        raise InputError(
            f"postprocess: the output holds {len(ab)} items but {len(luminances)} luminance planes "
            "were given",
            "pass the luminance planes of exactly the images in this batch",
        )
    return [merge(L, item, launcher=k) for L, item in zip(luminances, ab, strict=True)]


def postprocess_batch(
    output: Any,
    luminances: Any,
    contract: ColorContract,
    *,
    out: Any = None,
    launcher: Launcher | None = None,
) -> Any:
    """uint8 ``N x H x W x 3`` frames from a batch output and the batch's ``N x H x W`` full-res L.

    For ``ab`` models the output's scaling is fused into the merge kernel (one pass over the
    frame); ``rgb`` and ``ab_bins`` outputs are decoded at render size first.
    """
    k = _resolve(launcher)
    xp = k.xp
    lightness = xp.asarray(luminances)
    if lightness.ndim != 3 or 0 in lightness.shape:
        raise InputError(
            f"postprocess_batch: expected N x H x W lightness planes, got shape {lightness.shape}"
        )
    if contract.output_kind == "ab":
        ab, scale, offset = _check_output(xp, output, contract), contract.output_scale, contract.output_offset
    else:
        ab, scale, offset = decode_ab(output, contract, launcher=k), 1.0, 0.0
    if ab.shape[0] != lightness.shape[0]:
        raise InputError(
            f"postprocess_batch: the output holds {ab.shape[0]} items but {lightness.shape[0]} luminance "
            "planes were given",
            "pass the luminance planes of exactly the images in this batch",
        )
    return _merge(k, lightness, ab, scale, offset, out=out)


def _merge(k: Launcher, lightness: Any, ab: Any, scale: float, offset: float, out: Any = None) -> Any:
    xp = k.xp
    n, height, width = lightness.shape
    ab_h, ab_w = ab.shape[-2:]
    lightness = xp.ascontiguousarray(lightness, dtype=np.float32)
    ab = xp.ascontiguousarray(ab, dtype=np.float32)
    out = _output(xp, out, (n, height, width, 3), np.uint8, "postprocess")
    taps_y, index_y, weight_y = _axis(k, ab_h, height)
    taps_x, index_x, weight_x = _axis(k, ab_w, width)
    base, thresholds, cells = _code_tables(k)
    k.launch(
        "merge_u8",
        n * height * width,
        lightness,
        _i32(height),
        _i32(width),
        ab,
        _i32(ab_h),
        _i32(ab_w),
        _f32(scale),
        _f32(offset),
        _i32(taps_y),
        index_y,
        weight_y,
        _i32(taps_x),
        index_x,
        weight_x,
        _matrix(k, "rgb_from_t"),
        base,
        thresholds,
        _i32(cells),
        out,
    )
    return out
