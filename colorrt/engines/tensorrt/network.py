"""ONNX → serialized TensorRT network: parser, builder config, optimization profiles, timing cache."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorrt.atomic import write_bytes
from colorrt.engines.tensorrt.keys import workspace_bytes
from colorrt.engines.tensorrt.profiles import Profile
from colorrt.errors import BackendError, ModelError

if TYPE_CHECKING:
    from colorrt.engines.tensorrt.builder import BuildOptions


def strongly_typed_flag_needed(trt_version: str) -> bool:
    """Whether ``create_network`` must be given ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``.

    TensorRT 10.x needs it (without it the ONNX FP16 casts and Q/DQ nodes are only hints); 11.x
    builds every network strongly typed and deprecates the flag (ignored), so it is left out there.
    An unreadable version string keeps the flag (harmless where it is ignored).
    """
    match = re.match(r"\s*(\d+)(?:\.|$)", str(trt_version))
    return match is None or int(match.group(1)) < 11


def _network_flags(trt: Any) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None or not strongly_typed_flag_needed(trt.__version__):
        return 0
    return 1 << int(flag)


def serialize_network(
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
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes(options.workspace_gb))
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
        write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    except OSError as e:
        warnings.warn(f"cannot save the timing cache {timing_path}: {e}", stacklevel=4)
