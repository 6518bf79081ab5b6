"""ONNX plumbing shared by the FP16 and INT8 conversions: load and check the FP32 source, find the
model's head, write precision metadata (through :mod:`colorrt.modelfile`), check the result runs.

A converted file keeps the source's colour contract and gains two metadata entries:
``colorrt.precision`` (``fp32`` / ``fp16`` / ``int8``) and, for INT8, ``colorrt.quant_target``
(``tensorrt`` / ``cpu``), plus a JSON record of how it was made (``colorrt.quantization``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colorrt.contract import ColorContract, write_to_onnx
from colorrt.engines.onnxruntime import load_onnx, resolve_contract
from colorrt.errors import InputError, ModelError
from colorrt.modelfile import FACTS_KEY, PRECISION_KEY, TARGET_KEY, metadata, set_metadata

PRECISIONS = ("fp32", "fp16", "int8")
# Layers with weights: the head of a model is everything after the last of them on the way to an output.
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm"})
_log = logging.getLogger("colorrt.calibration")
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger"})


@dataclass(frozen=True)
class SourceModel:
    """A checked FP32 source model: its path, parsed proto (weights loaded) and contract."""

    path: Path
    proto: Any  # onnx.ModelProto
    contract: ColorContract
    input_name: str
    output_name: str


def load_source(path: str | os.PathLike[str], contract: ColorContract | str | None = None) -> SourceModel:
    """Load an FP32 colorization ONNX model to convert, or raise a clear error.

    Raises:
        ModelError: not a readable ONNX file, already FP16 / INT8, or not one image input and output.
        ContractError: no contract stored and none given (``contract`` may be a preset name).
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ModelError(
            f"{path} is not an .onnx file", "quantize the FP32 ONNX model written by `colorrt export`"
        )
    proto = load_onnx(path)
    _load_external_weights(proto, path)
    resolved = resolve_contract(proto, contract, path)
    _check_is_fp32(proto, path)
    input_name, output_name = _single_io(proto, path)
    resolved = resolved.replace(input_name=input_name, output_name=output_name)
    return SourceModel(path, proto, resolved, input_name, output_name)


def _load_external_weights(proto: Any, path: Path) -> None:
    import onnx
    from onnx.external_data_helper import uses_external_data

    if any(uses_external_data(t) for t in proto.graph.initializer):
        try:
            onnx.load_external_data_for_model(proto, str(path.parent))
        except (OSError, ValueError) as e:
            raise ModelError(
                f"cannot read the external weights of {path}: {e}", "keep the weight files beside it"
            ) from e


def _check_is_fp32(proto: Any, path: Path) -> None:
    import onnx

    stored = metadata(proto).get(PRECISION_KEY, "fp32")
    quantized = sorted({n.op_type for n in proto.graph.node if n.op_type in _QDQ_OPS})
    if stored != "fp32" or quantized:
        what = f"precision {stored}" if stored != "fp32" else f"{', '.join(quantized)} nodes"
        raise ModelError(
            f"{path} is already converted ({what}); FP16 and INT8 are made from the FP32 model",
            "pass the FP32 ONNX written by `colorrt export`",
        )
    halves = [t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    inputs = [v for v in proto.graph.input if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16]
    if halves or inputs:
        raise ModelError(
            f"{path} already holds FP16 weights or inputs; FP16 and INT8 are made from the FP32 model",
            "pass the FP32 ONNX written by `colorrt export`",
        )


def _single_io(proto: Any, path: Path) -> tuple[str, str]:
    import onnx

    initializers = {t.name for t in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(proto.graph.output) != 1:
        raise ModelError(
            f"{path} has {len(inputs)} inputs and {len(proto.graph.output)} outputs; colorization models "
            "for quantization have exactly one image input and one output"
        )
    (source,), (result,) = inputs, proto.graph.output
    for value in (source, result):
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT or len(tensor.shape.dim) != 4:
            raise ModelError(
                f"{path}: tensor {value.name!r} must be a float32 NCHW tensor (4 dims) to quantize, "
                f"got {onnx.TensorProto.DataType.Name(tensor.elem_type).lower()} with "
                f"{len(tensor.shape.dim)} dims"
            )
    return source.name, result.name


def stamp(
    proto: Any, contract: ColorContract, precision: str, target: str | None, facts: dict[str, Any]
) -> None:
    """Write the contract, ``colorrt.precision``, ``colorrt.quant_target`` and the conversion facts."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    write_to_onnx(proto, contract)
    set_metadata(
        proto,
        {
            PRECISION_KEY: precision,
            TARGET_KEY: target,
            FACTS_KEY: json.dumps(facts, sort_keys=True, separators=(",", ":")),
        },
    )


def prepare_graph(source: SourceModel, path: Path) -> Any:
    """Shape inference and constant folding (ONNX Runtime's quantization pre-processing, which emits
    standard ONNX operators only), every node named; saved to ``path`` and returned."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = Path(path).absolute()  # the working directory changes below
    with tempfile.TemporaryDirectory(prefix="colorrt-prepare-") as scratch, _working_directory(scratch):
        try:  # on a copy: the pre-processing may move the weights of the proto it gets to external files
            quant_pre_process(_copy(source.proto), path)
        except Exception as e:  # symbolic shape inference fails on some graphs (Einsum, U-Net skips)
            _log.info("symbolic shape inference failed (%s); using ONNX shape inference only", e)
            quant_pre_process(_copy(source.proto), path, skip_symbolic_shape=True)
    prepared = onnx.load(str(path))
    name_nodes(prepared.graph)
    set_metadata(prepared, {"onnx.quant.pre_process": None})
    strip_unused_opsets(prepared)
    onnx.save(prepared, str(path))
    return prepared


@contextlib.contextmanager
def _working_directory(folder: str) -> Iterator[None]:
    """Run in ``folder``: when ONNX Runtime's symbolic shape inference stops short, it saves
    ``sym_shape_infer_temp.onnx`` and a ``<uuid>.data`` into the working directory, which must not be
    the caller's. (The working directory is the process's: this is not thread-safe.)"""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _copy(proto: Any) -> Any:
    import onnx

    duplicate = onnx.ModelProto()
    duplicate.CopyFrom(proto)
    return duplicate


def name_nodes(graph: Any) -> None:
    """Give every unnamed node a unique name (exclusions and reports refer to nodes by name)."""
    taken = {n.name for n in graph.node if n.name}
    for index, node in enumerate(graph.node):
        if node.name:
            continue
        name = f"{node.op_type}_{index}"
        while name in taken:
            name += "_"
        node.name = name
        taken.add(name)


def check_node_names(graph: Any, names: Iterable[str], option: str) -> None:
    """InputError listing the ``names`` (given as ``option``) the graph has no node for, each with
    the closest node name."""
    known = sorted(node.name for node in graph.node)
    unknown = sorted(set(names) - set(known))
    if not unknown:
        return
    import difflib

    close = {n: difflib.get_close_matches(n, known, n=1) for n in unknown}
    hints = [f"{n!r} (did you mean {c[0]!r}?)" if c else repr(n) for n, c in close.items()]
    raise InputError(
        f"{option} names nodes the model does not have: {', '.join(hints)}",
        "list the node names with onnx (or Netron); names are those of the constant-folded graph",
    )


def head_nodes(graph: Any) -> tuple[list[str], list[str]]:
    """Names of the model's head: ``(tail, last_layers)``.

    Walking back from the graph outputs, ``tail`` holds every node met before a layer with weights
    (the final activation, an ab-bin softmax decoder, an upsample) and ``last_layers`` the weighted
    layers where the walk stopped (the layer that produces the colours).
    """
    producers = {output: node for node in graph.node for output in node.output}
    initializers = {t.name for t in graph.initializer}
    tail: dict[str, None] = {}
    last: dict[str, None] = {}
    pending = [o.name for o in graph.output]
    seen: set[str] = set()
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in WEIGHTED_OPS:
            last[node.name] = None
            continue
        tail[node.name] = None
        pending.extend(name for name in node.input if name and name not in initializers)
    return list(tail), list(last)


def strip_unused_opsets(proto: Any) -> None:
    """Drop opset imports of domains no node uses (ONNX Runtime's optimizer lists all of its own)."""
    used = {node.domain or "" for node in proto.graph.node} | {""}
    kept = [o for o in proto.opset_import if (o.domain or "") in used or o.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)


def check_destination(dst: str | os.PathLike[str], src: Path) -> Path:
    """The output path, checked before any slow work: an .onnx name, not the source itself."""
    dst = Path(dst)
    if dst.suffix.lower() != ".onnx":
        raise InputError(f"the output must be an .onnx file, got {dst}", "name it like model.int8.onnx")
    if dst.exists() and dst.resolve() == src.resolve():
        raise InputError(
            f"the output {dst} is the source model itself", "write the converted model to a new file"
        )
    if dst.is_dir():
        raise InputError(f"the output {dst} is a folder", "pass a file name such as model.int8.onnx")
    return dst


def check_runs(path: Path) -> None:
    """Create an ONNX Runtime CPU session for ``path``; ModelError when ONNX Runtime refuses it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own pybind11 exception types
        raise ModelError(f"ONNX Runtime cannot load the converted model: {e}") from e
