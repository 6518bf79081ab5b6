"""The GPU path: with an engine on CUDA, pre- and post-processing run on the device, by default.

Which path a Runtime takes is decided once, from its engine (:func:`device_ops_for`):

* films and ``Runtime.stream``: :class:`~colorrt.runtime.gpu_stages.GpuColorizeStages` (host threads
  decode and analyse frames; :class:`~colorrt.runtime.gpu_loop.GpuBatchLoop` uploads, preprocesses,
  runs the engine, merges and downloads; temporal smoothing on the host between decode and merge);
* images and folders: :class:`~colorrt.runtime.gpu_images.DeviceImages` (grouped by render shape as
  on the CPU path; one kernel launch per image inside a batch);
* pages: :func:`colorrt.kernels.ops.panel_chroma` (panel canvases share one shape; the page-specific
  placement, palette and lightness-keeping merge stay on the host).

Outputs equal the CPU path's within the kernels' tested tolerance (1e-3 on L and ab, one uint8 level).
``Runtime(..., gpu_path=False)`` keeps the CPU path with a CUDA engine (NumPy kernels; the engine's
batches are copied to and from the GPU).
"""

from __future__ import annotations

import warnings
from typing import Any

from colorrt.contract import ColorContract
from colorrt.errors import InputError, MissingDependencyError
from colorrt.kernels.cuda import CudaUnavailableError
from colorrt.kernels.ops import CudaOps, DeviceOps, kernels_cannot_run
from colorrt.runtime.feed import reference_palette
from colorrt.runtime.options import StreamOptions
from colorrt.runtime.stages import ColorizeStages
from colorrt.runtime.temporal import TemporalState

_warned_no_cupy = False


def device_ops_for(
    engine: Any, wanted: bool | None = None, contract: ColorContract | None = None
) -> DeviceOps | None:
    """The array backend of the GPU path for ``engine``, or None for the CPU path.

    ``wanted``: None (default) takes the GPU path when the engine runs on CUDA, CuPy is installed
    (else a warning) and the CUDA kernels implement ``contract`` (default: the engine's; a contract
    feature only the NumPy kernels know keeps the CPU path); True requires it (an error where it
    cannot be); False never takes it. An engine that brings its own ``device_ops`` (a stand-in
    engine of the tests) is run with those.
    """
    if wanted is not None and not isinstance(wanted, bool):
        raise InputError(f"gpu_path must be True, False or None, got {wanted!r}")
    if wanted is False:
        return None
    if getattr(engine, "device", "cpu") != "cuda":
        if wanted:
            raise InputError(
                f"gpu_path=True needs an engine on CUDA, got {getattr(engine, 'name', engine)} on "
                f"{getattr(engine, 'device', 'cpu')}",
                "create the runtime with device='cuda' (or leave gpu_path out)",
            )
        return None
    unsupported = kernels_cannot_run(engine.contract if contract is None else contract)
    if unsupported is not None:
        if wanted:
            raise InputError(
                f"gpu_path=True: the GPU kernels do not implement this model's contract ({unsupported})",
                "leave gpu_path out: such models run their pre- and post-processing on the CPU",
            )
        return None
    own = getattr(engine, "device_ops", None)
    if own is not None:
        return own
    try:
        return CudaOps(engine_device_id(engine), "colorrt's GPU path")
    except (MissingDependencyError, CudaUnavailableError) as e:  # no CuPy, or one that cannot load
        if wanted:
            raise
        _warn_no_cupy(e)
        return None


def engine_device_id(engine: Any) -> int:
    """The CUDA device an engine runs on (ONNX Runtime's and TensorRT's ``device_id``, torch's index)."""
    candidates = (
        getattr(engine, "device_id", None),
        getattr(getattr(engine, "torch_device", None), "index", None),
        getattr(getattr(engine, "_device", None), "id", None),  # TensorRTEngine's cupy.cuda.Device
    )
    return next((value for value in candidates if isinstance(value, int)), 0)


def runtime_ops(runtime: Any) -> DeviceOps | None:
    """A Runtime's ``device_ops``; for another object with an ``engine`` (an adapter), its engine's."""
    if hasattr(runtime, "device_ops"):
        return runtime.device_ops
    return device_ops_for(runtime.engine, None, getattr(runtime, "contract", None))


def colorize_stages(
    runtime: Any,
    batch_size: int,
    options: StreamOptions,
    initial_state: TemporalState | None = None,
    **rendering: Any,
) -> ColorizeStages:
    """The frame pipeline's stages for ``runtime``: on the device when it takes the GPU path.

    ``rendering``: :class:`ColorizeStages`' ``contract`` and ``strength``.
    """
    ops = runtime_ops(runtime)
    if ops is None:
        rendering.setdefault("palette", reference_palette(runtime))  # a palette-input model's reference
        return ColorizeStages(runtime.engine, batch_size, options, initial_state, **rendering)
    from colorrt.runtime.gpu_stages import GpuColorizeStages

    return GpuColorizeStages(runtime.engine, batch_size, options, initial_state, ops=ops, **rendering)


def _warn_no_cupy(error: Exception) -> None:
    global _warned_no_cupy
    if not _warned_no_cupy:
        _warned_no_cupy = True
        missing = isinstance(error, MissingDependencyError) and error.package == "cupy"
        why = "CuPy is not installed" if missing else f"CuPy cannot run ({getattr(error, 'what', error)})"
        warnings.warn(
            f"the engine runs on CUDA but {why}, so colorrt's pre- and post-processing run on the CPU "
            "(pip install 'colorrt[gpu]' for the GPU path)",
            stacklevel=3,
        )
