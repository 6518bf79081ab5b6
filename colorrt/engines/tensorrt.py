"""TensorRT 11 engines: ``build`` (ONNX → verified, cached plan) and :class:`TensorRTEngine` (run).

Written against the TensorRT 11 Python API and its 10.x → 11.x migration notes (TensorRT cannot be
installed where this was written, so this module is checked by its GPU tests only; its pure logic
lives in ``trt_plan`` and ``cache`` and is tested everywhere):

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
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import os
import queue
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import ColorContract, chosen_contract
from colorrt.engines import trt_plan
from colorrt.engines.base import Engine
from colorrt.engines.cache import EngineCache
from colorrt.engines.trt_plan import EngineFacts, PrecisionReport, Profile
from colorrt.errors import BackendError, ContractError, InputError, MissingDependencyError, ModelError

BUILD_PRECISIONS = ("fp32", "fp16", "int8", "best")
OPT_LEVELS = range(0, 6)  # TensorRT builder optimization levels
# Q/DQ quantizers commonly keep the first and last convolutions in higher precision on purpose;
# an INT8 engine fails the check only when most of its heavy layers are not INT8.
INT8_MAX_MISMATCH_FRACTION = 0.5
_LOG_LINES = 200
_log = logging.getLogger("colorrt.tensorrt")


class PrecisionWarning(UserWarning):
    """The engine's precision could not be verified from the inspector output."""


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


def import_cupy(purpose: str) -> Any:
    """The ``cupy`` module, or MissingDependencyError naming the ``gpu`` extra."""
    try:
        import cupy
    except (ImportError, OSError) as e:
        raise MissingDependencyError("cupy", "gpu", purpose) from e
    return cupy


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


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """Validated build settings; ``precision`` is what the engine runs (``best`` resolved)."""

    requested: str
    precision: str
    workspace_gb: float
    opt_level: int
    calib: Path | None

    @classmethod
    def create(cls, precision: str, workspace_gb: float, opt_level: int, calib: Any) -> BuildOptions:
        """Check the options before anything slow happens; ``best`` = int8 with ``calib``, else fp16."""
        if precision not in BUILD_PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(BUILD_PRECISIONS)}")
        if not isinstance(opt_level, int) or opt_level not in OPT_LEVELS:
            raise InputError(f"--opt-level must be an integer 0..5, got {opt_level!r}")
        trt_plan.workspace_bytes(workspace_gb)  # validates
        calib_path = Path(calib) if calib is not None else None
        if precision == "int8" and calib_path is None:
            raise InputError(
                "--int8 needs --calib DIR: a folder of representative images to calibrate the INT8 scales",
                "pass --calib path/to/images, or use --fp16 (no calibration needed)",
            )
        if calib_path is not None and not calib_path.is_dir():
            raise InputError(f"--calib {calib_path} is not a folder of calibration images")
        if calib_path is not None and precision in ("fp32", "fp16"):
            raise InputError(f"--calib only applies to --int8 and --best builds, not {precision}")
        effective = ("int8" if calib_path else "fp16") if precision == "best" else precision
        return cls(precision, effective, float(workspace_gb), opt_level, calib_path)


def default_plan_path(onnx_path: str | os.PathLike[str], precision: str) -> Path:
    """``model.onnx`` → ``model.fp16.plan`` beside it."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}.{precision}.plan")


def build(
    onnx_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    precision: str = "fp32",
    batch: str | int | None = None,
    size: str | None = None,
    workspace_gb: float = 4.0,
    opt_level: int = 3,
    calib: str | os.PathLike[str] | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    cache: bool | EngineCache = True,
    contract: ColorContract | str | None = None,
    device_id: int = 0,
) -> Path:
    """Build a TensorRT engine (plan) from an ONNX colorization model; returns the plan's path.

    Args:
        onnx_path: FP32 ONNX model carrying its colour contract (or pass ``contract``).
        output: where to write the plan (its facts go to ``<output>.json``); default: the cache
            entry when caching, else ``<model>.<precision>.plan`` beside the model.
        precision: ``fp32``, ``fp16`` (ONNX converted to FP16 first), ``int8`` (Q/DQ ONNX from the
            images in ``calib``) or ``best`` (int8 when ``calib`` is given, else fp16).
        batch: ``"MIN:OPT:MAX"`` batch range or ``N`` (= 1:N:N); default the model's fixed batch or 1:4:16.
        size: ``"HxW"`` or ``"HxW:HxW:HxW"`` render sizes (rounded up to the contract's multiple);
            default: from the contract.
        workspace_gb: TensorRT workspace memory-pool limit in GiB.
        opt_level: builder optimization level 0..5 (higher: slower build, maybe faster engine).
        calib: folder of calibration images for int8 / best.
        timing_cache: timing cache file reused across builds; default one per TensorRT version and
            GPU model in the cache folder (none when ``cache=False``).
        cache: reuse / store engines in the engine cache (``True``: the default folder; or an
            :class:`EngineCache`); the same ONNX, settings, GPU and TensorRT give the cached engine.
        contract: contract or preset name overriding the one stored in the ONNX.
        device_id: CUDA device to build for.

    Raises:
        TensorRTUnavailableError: TensorRT is not installed (``colorrt colorize --backend
            onnxruntime`` works meanwhile).
        PrecisionError: the engine's heavy layers do not run in the requested precision.
    """
    options = BuildOptions.create(precision, workspace_gb, opt_level, calib)
    source = Path(onnx_path)
    model_contract, input_shape = model_contract_and_shape(source, contract)
    profiles = trt_plan.derive_profiles(model_contract, trt_plan.parse_shape_ranges(batch, size), input_shape)
    trt = import_tensorrt("colorrt build")
    gpu = gpu_info(device_id)
    onnx_sha256 = trt_plan.sha256_file(source)
    key = trt_plan.cache_key(
        onnx_sha256,
        options.precision,
        profiles,
        trt.__version__,
        gpu.name,
        gpu.compute_capability,
        options.opt_level,
        options.workspace_gb,
        _key_extras(options, model_contract),
    )
    engine_cache = _engine_cache(cache)
    if engine_cache is not None and (cached := engine_cache.get(key)) is not None:
        _log.info("engine cache hit %s", cached)
        return _deliver(cached, output)
    timing_path = _timing_cache_path(timing_cache, engine_cache, trt.__version__, gpu)
    plan_bytes, report = _build_plan(trt, source, model_contract, profiles, options, timing_path, device_id)
    facts = _facts(model_contract, profiles, options, trt.__version__, gpu, onnx_sha256, report, batch, size)
    if engine_cache is not None:
        return _deliver(engine_cache.put(key, plan_bytes, facts), output)
    return _write_plan(
        Path(output) if output else default_plan_path(source, options.precision), plan_bytes, facts
    )


def model_contract_and_shape(
    source: Path, override: ColorContract | str | None
) -> tuple[ColorContract, tuple[int | None, ...]]:
    """The model's contract (its tensor names matched to the graph) and its input's declared shape."""
    from colorrt.engines.onnxruntime import load_onnx, resolve_contract

    model = load_onnx(source)
    contract = resolve_contract(model, override, source)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(
            f"{source} has {len(inputs)} inputs {[v.name for v in inputs]}; "
            "colorrt engines take one NCHW input"
        )
    contract = _match_tensor_name(contract, "input", [v.name for v in inputs], source)
    contract = _match_tensor_name(contract, "output", [v.name for v in model.graph.output], source)
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)
    return contract, shape


def _match_tensor_name(contract: ColorContract, role: str, names: list[str], path: Path) -> ColorContract:
    wanted = getattr(contract, f"{role}_name")
    if wanted in names:
        return contract
    if len(names) == 1:  # presets use generic names; a single tensor is unambiguous
        return contract.replace(**{f"{role}_name": names[0]})
    raise ContractError(
        f"{path}: contract '{contract.name}' names {role} tensor {wanted!r}; the model's {role}s are {names}",
        f"pass a contract whose {role}_name is one of {names}",
    )


def _key_extras(options: BuildOptions, contract: ColorContract) -> dict[str, str]:
    from colorrt import __version__

    # the contract is stored in the plan's facts, so an override of it is a different entry
    extras = {
        "colorrt": __version__,
        "contract_sha256": hashlib.sha256(contract.to_json().encode()).hexdigest(),
    }
    if options.calib is not None:
        extras["calib_sha256"] = trt_plan.sha256_folder(options.calib)
    return extras


def _engine_cache(cache: bool | EngineCache) -> EngineCache | None:
    if isinstance(cache, EngineCache):
        return cache
    return EngineCache() if cache else None


def _timing_cache_path(
    timing_cache: str | os.PathLike[str] | None,
    engine_cache: EngineCache | None,
    trt_version: str,
    gpu: GpuInfo,
) -> Path | None:
    if timing_cache is not None:
        return Path(timing_cache)
    return engine_cache.timing_cache_path(trt_version, gpu.name) if engine_cache is not None else None


def _deliver(plan: Path, output: str | os.PathLike[str] | None) -> Path:
    """Copy a cached plan and its facts to ``output`` atomically; without ``output``, the cache path."""
    if output is None:
        return plan
    output = Path(output)
    if output.exists() and output.resolve() == plan.resolve():
        return plan
    return _write_plan(output, plan.read_bytes(), trt_plan.read_facts(plan))


def _write_plan(destination: Path, plan_bytes: bytes, facts: EngineFacts) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    facts = facts.replace(plan_sha256=hashlib.sha256(plan_bytes).hexdigest(), plan_size=len(plan_bytes))
    trt_plan.atomic_write_bytes(destination, plan_bytes)
    trt_plan.write_facts(destination, facts)
    return destination


def _facts(
    contract: ColorContract,
    profiles: list[Profile],
    options: BuildOptions,
    trt_version: str,
    gpu: GpuInfo,
    onnx_sha256: str,
    report: PrecisionReport,
    batch: Any,
    size: Any,
) -> EngineFacts:
    from datetime import datetime, timezone

    from colorrt import __version__

    return EngineFacts(
        contract=contract,
        precision=options.precision,
        profiles=tuple(profiles),
        trt_version=trt_version,
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        onnx_sha256=onnx_sha256,
        build_options={
            "batch": None if batch is None else str(batch),
            "size": size,
            "workspace_gb": options.workspace_gb,
            "opt_level": options.opt_level,
            "calib": str(options.calib) if options.calib else None,
            "tf32": options.precision != "fp32",
        },
        requested_precision=options.requested,
        precision_counts=dict(report.heavy_counts),
        precision_verified=report.verified,
        colorrt_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _build_plan(
    trt: Any,
    source: Path,
    contract: ColorContract,
    profiles: list[Profile],
    options: BuildOptions,
    timing_path: Path | None,
    device_id: int,
) -> tuple[bytes, PrecisionReport]:
    cp = import_cupy("colorrt build")
    logger = _make_logger(trt)
    with cp.cuda.Device(device_id), tempfile.TemporaryDirectory(prefix="colorrt-build-") as tmp:
        prepared = _prepare_onnx(source, options, Path(tmp))
        plan_bytes = _serialize_network(trt, logger, prepared, profiles, options, timing_path)
        kept = trt_plan.kept_fp32_nodes(prepared)  # the FP16 conversion keeps the head in FP32
        report = _verify_precision(trt, logger, plan_bytes, contract, profiles[0], options.precision, kept)
    return plan_bytes, report


def _prepare_onnx(source: Path, options: BuildOptions, folder: Path) -> Path:
    """The ONNX TensorRT parses: the source for fp32, else the FP16 / Q-DQ conversion of it."""
    if options.precision == "fp32":
        return source
    destination = folder / f"{source.stem}.{options.precision}.onnx"
    if options.precision == "fp16":
        result = _calibration_function("convert_fp16", "fp16")(source, destination)
    else:
        result = _calibration_function("quantize_int8", "int8")(
            source, destination, calib=options.calib, target="tensorrt"
        )
    produced = Path(result) if isinstance(result, (str, os.PathLike)) else destination
    if not produced.is_file():
        raise BackendError(f"colorrt.calibration did not write the {options.precision} model {produced}")
    return produced


def _calibration_function(name: str, precision: str) -> Any:
    why = (
        f"{precision} engines need colorrt.calibration.{name}: TensorRT 11 takes precision from the ONNX "
        "graph only (it has no FP16/INT8 builder flags or calibrators)"
    )
    hint = "build an fp32 engine for now (leave out --fp16/--int8/--best), or update colorrt"
    try:
        import colorrt.calibration as calibration
    except ImportError as e:
        raise BackendError(f"{why}, and colorrt.calibration cannot be imported ({e})", hint) from e
    function = getattr(calibration, name, None)
    if not callable(function):
        raise BackendError(f"{why}, which this installation does not provide", hint)
    return function


def _make_logger(trt: Any) -> Any:
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
            _log.log(levels.get(level, logging.DEBUG), "TensorRT: %s", msg)

        def tail(self, count: int = 15) -> str | None:
            lines = [line for line in self.lines if not line.startswith("[INFO]")][-count:]
            return "TensorRT said:\n    " + "\n    ".join(lines) if lines else None

    return CapturingLogger()


def _network_flags(trt: Any) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None or not trt_plan.strongly_typed_flag_needed(trt.__version__):
        return 0
    return 1 << int(flag)


def _serialize_network(
    trt: Any,
    logger: Any,
    onnx_path: Path,
    profiles: list[Profile],
    options: BuildOptions,
    timing_path: Path | None,
) -> bytes:
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelError(
            f"TensorRT's ONNX parser rejected {onnx_path.name}: "
            f"{'; '.join(errors[:3]) or 'no details given'}",
            "check the model with `colorrt info`; re-export with opset 17 if an operator is unsupported",
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, trt_plan.workspace_bytes(options.workspace_gb))
    config.builder_optimization_level = options.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if options.precision == "fp32":
        tf32 = getattr(trt.BuilderFlag, "TF32", None)
        if tf32 is not None:  # TF32 convolutions drift ~1e-3 from the FP32 ONNX reference
            config.clear_flag(tf32)
    _add_profiles(builder, config, profiles, logger)
    _attach_timing_cache(config, timing_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(
            f"TensorRT could not build an engine from {onnx_path.name}",
            logger.tail() or "run with logging at DEBUG level to see TensorRT's messages",
        )
    _save_timing_cache(config, timing_path)
    return bytes(serialized)


def _add_profiles(builder: Any, config: Any, profiles: list[Profile], logger: Any) -> None:
    for profile in profiles:
        trt_profile = builder.create_optimization_profile()
        for tensor in profile.tensors:
            try:  # the binding raises RuntimeError where the C++ setDimensions returns false
                trt_profile.set_shape(tensor.name, tensor.min, tensor.opt, tensor.max)
            except RuntimeError as e:
                raise BackendError(
                    f"TensorRT rejects the optimization profile {tensor.name}: {tensor.describe()} ({e})",
                    logger.tail() or "check --batch / --size against the model's input shape",
                ) from e
        if config.add_optimization_profile(trt_profile) < 0:
            raise BackendError(
                f"TensorRT rejects the optimization profile {profile.describe()}", logger.tail()
            )


def _attach_timing_cache(config: Any, timing_path: Path | None) -> None:
    data = b""
    if timing_path is not None and timing_path.is_file():
        try:
            data = timing_path.read_bytes()
        except OSError as e:
            warnings.warn(
                f"cannot read the timing cache {timing_path}: {e}; starting an empty one", stacklevel=4
            )
    timing = config.create_timing_cache(data)
    if timing is None or not config.set_timing_cache(timing, ignore_mismatch=False):
        if data:
            warnings.warn(
                f"timing cache {timing_path} does not fit this GPU / TensorRT; starting an empty one",
                stacklevel=4,
            )
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def _save_timing_cache(config: Any, timing_path: Path | None) -> None:
    if timing_path is None:
        return
    try:
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        trt_plan.atomic_write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    except OSError as e:
        warnings.warn(f"cannot save the timing cache {timing_path}: {e}", stacklevel=4)


def _verify_precision(
    trt: Any,
    logger: Any,
    plan_bytes: bytes,
    contract: ColorContract,
    profile: Profile,
    precision: str,
    fp32_nodes: Sequence[str] = (),
) -> PrecisionReport:
    """Inspect the built engine at the profile's opt shape and check its heavy layers' precision
    (layers built from ``fp32_nodes``, which the model computes in FP32 on purpose, may be fp32)."""
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan_bytes)
    if engine is None:
        raise BackendError("TensorRT built an engine it cannot load back", logger.tail())
    context = engine.create_execution_context()
    tensor = profile.tensor(contract.input_name)
    if not context.set_input_shape(tensor.name, tensor.opt):
        raise BackendError(f"the engine rejects its own opt shape {tensor.opt}", logger.tail())
    inspector = engine.create_engine_inspector()
    # With dynamic shapes, formats read "N/A" unless the inspector has a context with shapes set.
    if hasattr(inspector, "execution_context"):
        inspector.execution_context = context
    else:  # TensorRT < 10
        inspector.context = context
    info = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    del inspector, context, engine  # engines go before their runtime
    del runtime
    tolerance = INT8_MAX_MISMATCH_FRACTION if precision == "int8" else 0.0
    report = trt_plan.check_layer_precisions(
        info, precision, max_mismatch_fraction=tolerance, fp32_nodes=fp32_nodes
    )
    if not report.verified:
        warnings.warn(
            f"could not verify the engine's precision: {report.note}", PrecisionWarning, stacklevel=4
        )
    _log.info("%s", report.summary())
    return report


# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EngineIO:
    """Names, dtypes and profiles of an engine's one input and one output."""

    contract: ColorContract
    input_name: str
    output_name: str
    input_dtype: np.dtype
    output_dtype: np.dtype
    profiles: tuple[Profile, ...]

    @classmethod
    def read(cls, trt: Any, engine: Any, contract: ColorContract, path: Path) -> _EngineIO:
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1:
            raise ModelError(f"{path} has inputs {inputs}; colorrt engines take one NCHW input")
        contract = _match_tensor_name(contract, "input", inputs, path)
        contract = _match_tensor_name(contract, "output", outputs, path)
        for name in (contract.input_name, contract.output_name):
            if engine.get_tensor_format(name) != trt.TensorFormat.LINEAR:
                raise ModelError(
                    f"{path}: tensor {name!r} uses a vectorized format; colorrt feeds linear NCHW buffers",
                    "rebuild the engine with colorrt build",
                )
        profiles = tuple(
            _engine_profile(engine, contract.input_name, i) for i in range(engine.num_optimization_profiles)
        )
        return cls(
            contract,
            contract.input_name,
            contract.output_name,
            np.dtype(trt.nptype(engine.get_tensor_dtype(contract.input_name))),
            np.dtype(trt.nptype(engine.get_tensor_dtype(contract.output_name))),
            profiles,
        )


def _engine_profile(engine: Any, name: str, index: int) -> Profile:
    static = tuple(int(d) for d in engine.get_tensor_shape(name))
    if all(d >= 0 for d in static):
        return Profile((trt_plan.TensorRange(name, static, static, static),))
    low, opt, high = (tuple(int(d) for d in dims) for dims in engine.get_tensor_profile_shape(name, index))
    return Profile((trt_plan.TensorRange(name, low, opt, high),))


@dataclass
class _ContextState:
    """What an execution context is currently set up for."""

    profile: int = 0
    shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None


@dataclass
class _CapturedShape:
    """A CUDA graph of one input shape and the execution context it was captured from."""

    context: Any
    graph: Any
    output_shape: tuple[int, ...]


class TensorRTEngine(Engine):
    """Runs a TensorRT plan (or builds one from an ONNX model through the engine cache).

    ``infer`` takes a NumPy array (staged through pinned host memory; returns NumPy) or a CuPy
    array on the engine's device (copied device-to-device only; returns CuPy, ordered after the
    caller's current stream). Calls from several threads run concurrently on ``streams`` CUDA
    streams, each with its own execution context.

    Args:
        path: ``.plan``/``.engine``/``.trt`` file with its ``.json`` facts, or an ``.onnx`` model
            (built with ``build`` through the cache; ``build_options`` go to ``build``).
        contract: contract or preset name; default the one in the plan's facts.
        device: ``"cuda"`` or ``"auto"``.
        streams: CUDA streams (execution contexts) for concurrent ``infer`` calls.
        cuda_graphs: capture a CUDA graph per input shape after its warm-up run and replay it.
        max_graphs: graphs kept per stream; shapes beyond run without a graph.
        device_id: CUDA device.
        check_compatibility: refuse a plan whose facts name another TensorRT version or GPU.
        threads: accepted like every backend's (``--threads``); TensorRT has no host threads to set.
    """

    name = "tensorrt"
    device = "cuda"

    def __init__(
        self,
        path: str | os.PathLike[str],
        contract: ColorContract | str | None = None,
        device: str = "auto",
        *,
        streams: int = 1,
        cuda_graphs: bool = True,
        max_graphs: int = 4,
        device_id: int = 0,
        check_compatibility: bool = True,
        threads: int | None = None,
        **build_options: Any,
    ) -> None:
        if device not in ("auto", "cuda"):
            raise BackendError(
                f"TensorRT engines run on the GPU only; device must be 'cuda' or 'auto', got {device!r}"
            )
        if streams < 1 or max_graphs < 0:
            raise InputError(f"streams must be >= 1 and max_graphs >= 0, got {streams} and {max_graphs}")
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            path = build(path, contract=contract, device_id=device_id, **build_options)
        elif build_options:
            raise InputError(
                f"options {sorted(build_options)} apply when building from an .onnx model; "
                f"{path.name} is built already"
            )
        if not path.is_file():
            raise ModelError(
                f"no such TensorRT engine file: {path}", "build one with colorrt build --model M.onnx"
            )
        self.path = path
        self._trt = import_tensorrt("running a TensorRT engine")
        self._cp = import_cupy("running a TensorRT engine")
        self.facts = _facts_beside(path, contract)
        if self.facts is not None and check_compatibility:
            gpu = gpu_info(device_id)
            trt_plan.check_compatible(
                self.facts,
                trt_version=self._trt.__version__,
                gpu_name=gpu.name,
                compute_capability=gpu.compute_capability,
                path=path,
            )
        self._device = self._cp.cuda.Device(device_id)
        self._logger = _make_logger(self._trt)
        with self._device:
            self._runtime = self._trt.Runtime(self._logger)
            self._engine = _deserialize(self._runtime, path, self._trt.__version__, self._logger)
            chosen = _chosen_contract(contract, self.facts, path)
            self._io = _EngineIO.read(self._trt, self._engine, chosen, path)
            self.contract = self._io.contract
            self.profiles = self._io.profiles
            self._streams: list[_StreamSlot] = [
                _StreamSlot(self, cuda_graphs, max_graphs) for _ in range(streams)
            ]
        self._free: queue.SimpleQueue[_StreamSlot] = queue.SimpleQueue()
        for slot in self._streams:
            self._free.put(slot)

    @property
    def precision(self) -> str:
        """fp32 / fp16 / int8 from the plan's facts ("unknown" without facts)."""
        return self.facts.precision if self.facts is not None else "unknown"

    def _infer_impl(self, batch: Any) -> Any:
        slot = self._free.get()
        try:
            with self._device:
                return slot.run(batch)
        finally:
            self._free.put(slot)

    def close(self) -> None:
        """Wait for the streams, then free graphs, contexts, buffers and the engine."""
        if self._closed:
            return
        super().close()
        with self._device:
            for slot in getattr(self, "_streams", ()):
                slot.release()
        self._streams = []
        self._engine = None
        self._runtime = None

    def _new_context(self) -> Any:
        context = self._engine.create_execution_context()
        if context is None:
            raise BackendError(
                "TensorRT could not create an execution context (out of GPU memory?)", self._logger.tail()
            )
        return context


def _deserialize(runtime: Any, path: Path, version: str, logger: Any) -> Any:
    try:
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
    except RuntimeError as e:  # some TensorRT versions raise instead of returning None
        engine, cause = None, e
    else:
        cause = None
    if engine is None:
        tail = logger.tail()
        raise ModelError(
            f"{path} is not an engine TensorRT {version} can load "
            "(corrupt, truncated, or built by another TensorRT version)",
            "rebuild it with colorrt build" + (f"\n  {tail}" if tail else ""),
        ) from cause
    return engine


def _facts_beside(path: Path, contract: ColorContract | str | None) -> EngineFacts | None:
    try:
        return trt_plan.read_facts(path)
    except ModelError:
        if contract is None:
            raise
        return None  # the caller supplies the contract; the plan cannot be checked against facts


def _chosen_contract(
    contract: ColorContract | str | None, facts: EngineFacts | None, path: Path
) -> ColorContract:
    return chosen_contract(
        contract,
        None if facts is None else facts.contract,
        f"{path} has no facts with its contract",
        "pass contract= / --contract",
    )


class _StreamSlot:
    """One non-default CUDA stream, its execution context, device buffers and per-shape CUDA graphs.

    Device buffers are allocated once for the largest profile shape; every shape uses views that
    start at the same addresses, which is what lets a captured graph be replayed.
    """

    def __init__(self, owner: TensorRTEngine, cuda_graphs: bool, max_graphs: int) -> None:
        cp = owner._cp
        self.owner = owner
        self.io = owner._io
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.context = owner._new_context()
        self.state = _ContextState()
        self.use_graphs = cuda_graphs and max_graphs > 0
        self.max_graphs = max_graphs
        self.graphs: OrderedDict[tuple[int, ...], _CapturedShape] = OrderedDict()
        self.uncapturable: set[tuple[int, ...]] = set()
        inputs, outputs = self._capacity()
        self.input = cp.empty(inputs, dtype=self.io.input_dtype)
        self.output = cp.empty(outputs, dtype=self.io.output_dtype)
        self.pinned_in: np.ndarray | None = None
        self.pinned_out: np.ndarray | None = None

    def _capacity(self) -> tuple[int, int]:
        """Elements of the largest input and output over all profiles' max shapes."""
        inputs = outputs = 0
        for index, profile in enumerate(self.io.profiles):
            shape = profile.tensor(self.io.input_name).max
            out_shape = self._set_shape(self.context, self.state, shape, index)
            inputs, outputs = max(inputs, math.prod(shape)), max(outputs, math.prod(out_shape))
        return inputs, outputs

    def run(self, batch: Any) -> Any:
        cp = self.owner._cp
        shape = tuple(int(s) for s in batch.shape)
        profile = trt_plan.select_profile(shape, self.io.profiles, self.io.input_name)
        on_device = isinstance(batch, cp.ndarray)
        if on_device:
            if batch.device.id != self.owner._device.id:
                raise InputError(
                    f"the batch is on GPU {batch.device.id}, the engine on GPU {self.owner._device.id}"
                )
            caller = cp.cuda.get_current_stream()
            self.stream.wait_event(caller.record())
        if on_device and self._direct(batch):
            return self._run_direct(batch, shape, profile, caller)
        staged = self.input[: math.prod(shape)].reshape(shape)
        if on_device:
            with self.stream:
                cp.copyto(staged, batch)
        else:
            self._stage_from_host(np.asarray(batch), staged)
        out_shape = self._execute(shape, profile)
        result = self.output[: math.prod(out_shape)].reshape(out_shape)
        if on_device:
            with self.stream:
                result = result.copy()
            caller.wait_event(self.stream.record())
            return result
        return self._fetch_to_host(result)

    def _direct(self, batch: Any) -> bool:
        # Without graphs, a contiguous device batch of the right dtype is bound directly (no copy).
        return not self.use_graphs and batch.flags.c_contiguous and batch.dtype == self.io.input_dtype

    def _run_direct(self, batch: Any, shape: tuple[int, ...], profile: int, caller: Any) -> Any:
        cp = self.owner._cp
        out_shape = self._set_shape(self.context, self.state, shape, profile)
        with self.stream:
            result = cp.empty(out_shape, dtype=self.io.output_dtype)
        self._bind(self.context, batch.data.ptr, result.data.ptr)
        self._enqueue(self.context)
        caller.wait_event(self.stream.record())
        return result

    def _execute(self, shape: tuple[int, ...], profile: int) -> tuple[int, ...]:
        """Run the engine on the staged input; returns the output shape."""
        captured = self.graphs.get(shape)
        if captured is not None:
            self.graphs.move_to_end(shape)
            captured.graph.launch(stream=self.stream)
            return captured.output_shape
        if self.use_graphs and len(self.graphs) < self.max_graphs and shape not in self.uncapturable:
            return self._run_and_capture(shape, profile)
        out_shape = self._set_shape(self.context, self.state, shape, profile)
        self._bind(self.context, self.input.data.ptr, self.output.data.ptr)
        self._enqueue(self.context)
        return out_shape

    def _run_and_capture(self, shape: tuple[int, ...], profile: int) -> tuple[int, ...]:
        """Warm-up run of a new shape on its own context (this call's result), then capture a graph."""
        context = self.owner._new_context()
        out_shape = self._set_shape(context, _ContextState(), shape, profile)
        self._bind(context, self.input.data.ptr, self.output.data.ptr)
        self._enqueue(context)
        self.stream.synchronize()  # TensorRT finishes its shape-dependent setup before capture
        try:
            self.stream.begin_capture()
            try:
                self._enqueue(context)
            finally:
                graph = self.stream.end_capture()
        except (self.owner._cp.cuda.runtime.CUDARuntimeError, BackendError) as e:
            warnings.warn(
                f"CUDA graph capture failed for shape {shape} ({e}); running it without a graph", stacklevel=6
            )
            self.uncapturable.add(shape)
            return out_shape
        self.graphs[shape] = _CapturedShape(context, graph, out_shape)
        return out_shape

    def _set_shape(
        self, context: Any, state: _ContextState, shape: tuple[int, ...], profile: int
    ) -> tuple[int, ...]:
        if state.shape == shape and state.profile == profile and state.output_shape is not None:
            return state.output_shape
        if state.profile != profile:
            try:  # the binding raises RuntimeError instead of returning False
                context.set_optimization_profile_async(profile, self.stream.ptr)
            except RuntimeError as e:
                raise BackendError(
                    f"TensorRT refused optimization profile {profile} ({e})", self.owner._logger.tail()
                ) from e
            state.profile = profile
        if not context.set_input_shape(self.io.input_name, shape):
            raise InputError(
                f"the TensorRT engine rejects input shape {shape}",
                self.owner._logger.tail() or "see the profile",
            )
        out_shape = tuple(int(d) for d in context.get_tensor_shape(self.io.output_name))
        if any(d < 0 for d in out_shape):
            raise BackendError(f"TensorRT could not infer the output shape for input {shape}: {out_shape}")
        state.shape, state.output_shape = shape, out_shape
        return out_shape

    def _bind(self, context: Any, input_ptr: int, output_ptr: int) -> None:
        if not (
            context.set_tensor_address(self.io.input_name, input_ptr)
            and context.set_tensor_address(self.io.output_name, output_ptr)
        ):
            raise BackendError("TensorRT rejected a tensor address", self.owner._logger.tail())

    def _enqueue(self, context: Any) -> None:
        if not context.execute_async_v3(self.stream.ptr):
            raise BackendError("TensorRT execute_async_v3 failed", self.owner._logger.tail())

    def _stage_from_host(self, batch: np.ndarray, staged: Any) -> None:
        """NumPy → pinned host buffer (with dtype conversion) → device, asynchronously on the stream."""
        if self.pinned_in is None:
            import cupyx

            self.pinned_in = cupyx.empty_pinned((self.input.size,), dtype=self.io.input_dtype)
        host = self.pinned_in[: staged.size].reshape(staged.shape)
        np.copyto(host, batch, casting="same_kind")
        staged.set(host, stream=self.stream)

    def _fetch_to_host(self, result: Any) -> np.ndarray:
        if self.pinned_out is None:
            import cupyx

            self.pinned_out = cupyx.empty_pinned((self.output.size,), dtype=self.io.output_dtype)
        host = self.pinned_out[: result.size].reshape(result.shape)
        result.get(stream=self.stream, out=host)
        self.stream.synchronize()
        return host.copy()  # the pinned buffer is reused by the next call

    def release(self) -> None:
        self.stream.synchronize()
        self.graphs.clear()
        self.context = None
        self.input = self.output = None
        self.pinned_in = self.pinned_out = None


# ---------------------------------------------------------------------------------------------
# Entry points for the runtime and the CLI
# ---------------------------------------------------------------------------------------------


def inspect_plan(path: str | os.PathLike[str], *, layers: bool = False) -> dict[str, Any]:
    """What ``colorrt info M.plan`` shows: file size and the facts beside it (no TensorRT needed);
    with ``layers=True`` (needs TensorRT) also the I/O tensors and the inspector's precision report."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such TensorRT engine file: {path}")
    info: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size}
    try:
        info["facts"] = trt_plan.read_facts(path).to_dict()
    except ModelError as e:
        info["facts"] = None
        info["facts_problem"] = str(e)
    if layers:
        info.update(_inspect_layers(path))
    return info


def _inspect_layers(path: Path) -> dict[str, Any]:
    import json

    trt = import_tensorrt("inspecting a TensorRT engine's layers")
    logger = _make_logger(trt)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise ModelError(f"{path} is not an engine TensorRT {trt.__version__} can load", logger.tail())
    tensors = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        tensors.append(
            {
                "name": name,
                "mode": str(engine.get_tensor_mode(name)),
                "dtype": np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name,
                "shape": [int(d) for d in engine.get_tensor_shape(name)],
            }
        )
    inspector = engine.create_engine_inspector()
    data = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    layer_list = data.get("Layers", []) if isinstance(data, dict) else []
    del inspector, engine  # engines go before their runtime
    del runtime
    return {"io_tensors": tensors, "num_layers": len(layer_list)}


__all__ = [
    "BUILD_PRECISIONS",
    "BuildOptions",
    "GpuInfo",
    "PrecisionWarning",
    "TensorRTEngine",
    "TensorRTUnavailableError",
    "build",
    "default_plan_path",
    "gpu_info",
    "import_tensorrt",
    "inspect_plan",
    "model_contract_and_shape",
]
