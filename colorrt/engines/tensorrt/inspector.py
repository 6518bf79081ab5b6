"""The engine inspector: the precision check of a freshly built engine, and ``inspect_plan``
(what ``colorrt info M.plan`` shows)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.engines.tensorrt.facts import read_facts
from colorrt.engines.tensorrt.loader import import_tensorrt, log, make_logger
from colorrt.engines.tensorrt.precision import PrecisionReport, check_layer_precisions
from colorrt.engines.tensorrt.profiles import Profile
from colorrt.errors import BackendError, ModelError

# Q/DQ quantizers commonly keep the first and last convolutions in higher precision on purpose;
# an INT8 engine fails the check only when most of its heavy layers are not INT8.
INT8_MAX_MISMATCH_FRACTION = 0.5


class PrecisionWarning(UserWarning):
    """The engine's precision could not be verified from the inspector output."""


def verify_precision(
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
    report = check_layer_precisions(info, precision, max_mismatch_fraction=tolerance, fp32_nodes=fp32_nodes)
    if not report.verified:
        warnings.warn(
            f"could not verify the engine's precision: {report.note}", PrecisionWarning, stacklevel=4
        )
    log.info("%s", report.summary())
    return report


def inspect_plan(path: str | os.PathLike[str], *, layers: bool = False) -> dict[str, Any]:
    """What ``colorrt info M.plan`` shows: file size and the facts beside it (no TensorRT needed);
    with ``layers=True`` (needs TensorRT) also the I/O tensors and the inspector's precision report."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such TensorRT engine file: {path}")
    info: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size}
    try:
        info["facts"] = read_facts(path).to_dict()
    except ModelError as e:
        info["facts"] = None
        info["facts_problem"] = str(e)
    if layers:
        info.update(_inspect_layers(path))
    return info


def _inspect_layers(path: Path) -> dict[str, Any]:
    import json

    trt = import_tensorrt("inspecting a TensorRT engine's layers")
    logger = make_logger(trt)
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
