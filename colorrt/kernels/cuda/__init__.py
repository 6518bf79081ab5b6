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

Modules: :mod:`~colorrt.kernels.cuda.device` (CuPy, the device, GPU errors),
:mod:`~colorrt.kernels.cuda.launch` (launchers), :mod:`~colorrt.kernels.cuda.tables` (reference
tables on the device), :mod:`~colorrt.kernels.cuda.preprocess` and
:mod:`~colorrt.kernels.cuda.postprocess` (the kernels' Python faces).
"""

from __future__ import annotations

from colorrt.gpu import import_cupy, missing_gpu_dependency  # kept importable from here
from colorrt.kernels.cuda.device import CudaUnavailableError, GpuOutOfMemoryError, gpu_errors, require_cuda
from colorrt.kernels.cuda.launch import (
    BLOCK,
    KERNELS,
    MAX_BLOCKS,
    SOURCE_PATH,
    CupyLauncher,
    Launcher,
    launcher_for,
)
from colorrt.kernels.cuda.postprocess import decode_ab, merge, merge_batch, postprocess, postprocess_batch
from colorrt.kernels.cuda.preprocess import (
    luminance,
    luminance_batch,
    preprocess,
    preprocess_frames,
    resize_bilinear,
)

__all__ = [
    "BLOCK",
    "KERNELS",
    "MAX_BLOCKS",
    "SOURCE_PATH",
    "CudaUnavailableError",
    "CupyLauncher",
    "GpuOutOfMemoryError",
    "Launcher",
    "decode_ab",
    "gpu_errors",
    "import_cupy",
    "launcher_for",
    "luminance",
    "luminance_batch",
    "merge",
    "merge_batch",
    "missing_gpu_dependency",
    "postprocess",
    "postprocess_batch",
    "preprocess",
    "preprocess_frames",
    "require_cuda",
    "resize_bilinear",
]
