"""``build``: ONNX → verified TensorRT plan with its facts, through the engine cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorrt._version import __version__
from colorrt.atomic import write_bytes
from colorrt.contract import ColorContract
from colorrt.digest import file_sha256
from colorrt.engines.base import require_one_input
from colorrt.engines.tensorrt.facts import EngineFacts, read_facts, write_facts
from colorrt.engines.tensorrt.inspector import verify_precision
from colorrt.engines.tensorrt.keys import cache_key, sha256_folder, workspace_bytes
from colorrt.engines.tensorrt.loader import GpuInfo, gpu_info, import_tensorrt, log, make_logger
from colorrt.engines.tensorrt.network import serialize_network
from colorrt.engines.tensorrt.precision import PrecisionReport, kept_fp32_nodes
from colorrt.engines.tensorrt.profiles import Profile, derive_profiles, parse_shape_ranges
from colorrt.errors import BackendError, ContractError, InputError, ModelError
from colorrt.gpu import import_cupy

if TYPE_CHECKING:
    from colorrt.engines.cache import EngineCache

BUILD_PRECISIONS = ("fp32", "fp16", "int8", "best")
OPT_LEVELS = range(0, 6)  # TensorRT builder optimization levels


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
        workspace_bytes(workspace_gb)  # validates
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
    profiles = derive_profiles(model_contract, parse_shape_ranges(batch, size), input_shape)
    trt = import_tensorrt("colorrt build")
    gpu = gpu_info(device_id)
    onnx_sha256 = file_sha256(source)
    key = _cache_key(onnx_sha256, options, profiles, trt.__version__, gpu, model_contract)
    engine_cache = _engine_cache(cache)
    if engine_cache is not None and (cached := engine_cache.get(key)) is not None:
        log.info("engine cache hit %s", cached)
        return _deliver(cached, output)
    timing_path = _timing_cache_path(timing_cache, engine_cache, trt.__version__, gpu)
    plan_bytes, report = _build_plan(trt, source, model_contract, profiles, options, timing_path, device_id)
    facts = _facts(model_contract, profiles, options, trt.__version__, gpu, onnx_sha256, report, batch, size)
    if engine_cache is not None:
        return _deliver(engine_cache.put(key, plan_bytes, facts), output)
    destination = Path(output) if output else default_plan_path(source, options.precision)
    return _write_plan(destination, plan_bytes, facts)


def model_contract_and_shape(
    source: Path, override: ColorContract | str | None
) -> tuple[ColorContract, tuple[int | None, ...]]:
    """The model's contract (its tensor names matched to the graph) and its input's declared shape."""
    from colorrt.engines.onnxruntime import load_onnx, resolve_contract

    model = load_onnx(source)
    contract = resolve_contract(model, override, source)
    require_one_input(contract, "TensorRT")  # before profiles read an NHWC axis as channels
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(
            f"{source} has {len(inputs)} inputs {[v.name for v in inputs]}; "
            "colorrt engines take one NCHW input"
        )
    contract = match_tensor_name(contract, "input", [v.name for v in inputs], source)
    contract = match_tensor_name(contract, "output", [v.name for v in model.graph.output], source)
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)
    return contract, shape


def match_tensor_name(contract: ColorContract, role: str, names: list[str], path: Path) -> ColorContract:
    wanted = getattr(contract, f"{role}_name")
    if wanted in names:
        return contract
    if len(names) == 1:  # presets use generic names; a single tensor is unambiguous
        return contract.replace(**{f"{role}_name": names[0]})
    raise ContractError(
        f"{path}: contract '{contract.name}' names {role} tensor {wanted!r}; the model's {role}s are {names}",
        f"pass a contract whose {role}_name is one of {names}",
    )


def _cache_key(
    onnx_sha256: str,
    options: BuildOptions,
    profiles: list[Profile],
    trt_version: str,
    gpu: GpuInfo,
    contract: ColorContract,
) -> str:
    """The engine cache key of this build (see :func:`colorrt.engines.tensorrt.keys.cache_key`)."""
    return cache_key(
        onnx_sha256,
        options.precision,
        profiles,
        trt_version,
        gpu.name,
        gpu.compute_capability,
        options.opt_level,
        options.workspace_gb,
        _key_extras(options, contract),
    )


def _key_extras(options: BuildOptions, contract: ColorContract) -> dict[str, str]:
    # the contract is stored in the plan's facts, so an override of it is a different entry
    extras = {
        "colorrt": __version__,
        "contract_sha256": hashlib.sha256(contract.to_json().encode()).hexdigest(),
    }
    if options.calib is not None:
        extras["calib_sha256"] = sha256_folder(options.calib)
    return extras


def _engine_cache(cache: bool | EngineCache) -> EngineCache | None:
    from colorrt.engines.cache import EngineCache  # the cache module reads this package's facts

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
    return _write_plan(output, plan.read_bytes(), read_facts(plan))


def _write_plan(destination: Path, plan_bytes: bytes, facts: EngineFacts) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    facts = facts.replace(plan_sha256=hashlib.sha256(plan_bytes).hexdigest(), plan_size=len(plan_bytes))
    write_bytes(destination, plan_bytes)
    write_facts(destination, facts)
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
    logger = make_logger(trt)
    with cp.cuda.Device(device_id), tempfile.TemporaryDirectory(prefix="colorrt-build-") as tmp:
        prepared = _prepare_onnx(source, options, Path(tmp))
        plan_bytes = serialize_network(trt, logger, prepared, profiles, options, timing_path)
        kept = kept_fp32_nodes(prepared)  # the FP16 conversion keeps the head in FP32
        report = verify_precision(trt, logger, plan_bytes, contract, profiles[0], options.precision, kept)
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
