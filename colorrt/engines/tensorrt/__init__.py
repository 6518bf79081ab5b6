"""TensorRT 11 engines: ``build`` (ONNX → verified, cached plan) and :class:`TensorRTEngine` (run).

Written against the TensorRT 11 Python API and its 10.x → 11.x migration notes (TensorRT cannot be
installed where this was written, so the loader, builder, network, inspector, streams and runner
modules are checked by their GPU tests only; the pure logic in profiles, precision, facts, keys,
buffers and ``colorrt.engines.cache`` is tested everywhere):

* precision comes from the ONNX graph only: TensorRT 11 removed ``BuilderFlag.FP16/INT8``, the INT8
  calibrators and weak typing. ``--fp16`` first converts the ONNX with
  ``colorrt.calibration.convert_fp16`` and ``--int8`` inserts Q/DQ nodes with
  ``colorrt.calibration.quantize_int8``; every network is strongly typed
  (``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` is set on 10.x, where it is required, and left
  out on 11.x, which deprecates it: strong typing is always on there);
* builder config: ``set_memory_pool_limit(MemoryPoolType.WORKSPACE)``,
  ``builder_optimization_level``, ``profiling_verbosity = ProfilingVerbosity.DETAILED``,
  ``add_optimization_profile``, ``create_timing_cache`` / ``set_timing_cache`` and
  ``get_timing_cache().serialize()``; FP32 builds clear ``BuilderFlag.TF32`` so they match the
  ONNX reference;
* after the build the engine inspector (``create_engine_inspector``, ``execution_context`` set to a
  context at the opt shape so dynamic shapes resolve, ``get_engine_information(JSON)``) proves
  the heavy layers run in the requested precision;
* run path: tensor-name API (``num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``,
  ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) on non-default CuPy streams
  with CuPy device buffers (no pycuda: its own context would collide with the primary context
  that CuPy, DALI and torch share), one execution context per stream, pinned host staging, and a
  CUDA graph per input shape captured after a warm-up run (each graph owns its execution context,
  because a graph freezes the shapes and addresses of the context it was captured from).

Modules, by job: ``loader`` (the lazy ``tensorrt`` import, GPU facts, logger), ``profiles`` (shape
ranges → optimization profiles), ``precision`` (the inspector-JSON precision check), ``facts``
(``M.plan.json`` beside every plan), ``keys`` (the engine cache key), ``buffers`` (buffer sizes),
``network`` (ONNX → serialized network, timing cache), ``inspector`` (the built engine's precision,
``inspect_plan``), ``builder`` (``build``), ``streams`` (CUDA streams and graphs), ``runner``
(:class:`TensorRTEngine`). Importing this package needs neither tensorrt nor cupy.
"""

from __future__ import annotations

from colorrt.engines.tensorrt.builder import (
    BUILD_PRECISIONS,
    OPT_LEVELS,
    BuildOptions,
    build,
    default_plan_path,
    model_contract_and_shape,
)
from colorrt.engines.tensorrt.facts import EngineFacts, read_facts, sidecar_path, write_facts
from colorrt.engines.tensorrt.inspector import INT8_MAX_MISMATCH_FRACTION, PrecisionWarning, inspect_plan
from colorrt.engines.tensorrt.loader import GpuInfo, TensorRTUnavailableError, gpu_info, import_tensorrt
from colorrt.engines.tensorrt.precision import PrecisionError, PrecisionReport
from colorrt.engines.tensorrt.profiles import Profile, TensorRange
from colorrt.engines.tensorrt.runner import TensorRTEngine

__all__ = [
    "BUILD_PRECISIONS",
    "INT8_MAX_MISMATCH_FRACTION",
    "OPT_LEVELS",
    "BuildOptions",
    "EngineFacts",
    "GpuInfo",
    "PrecisionError",
    "PrecisionReport",
    "PrecisionWarning",
    "Profile",
    "TensorRTEngine",
    "TensorRTUnavailableError",
    "TensorRange",
    "build",
    "default_plan_path",
    "gpu_info",
    "import_tensorrt",
    "inspect_plan",
    "model_contract_and_shape",
    "read_facts",
    "sidecar_path",
    "write_facts",
]
