"""FP16 mixed precision: the model's weights and most layers in float16, the sensitive parts in float32.

TensorRT 11 builds FP16 layers only where the ONNX graph is FP16 (strongly typed networks), so the
precision is written into the file. Kept in float32 (ops in :data:`DEFAULT_KEEP_FP32_OPS` and the
model's head):

* normalizations: InstanceNorm's per-image mean and variance over a whole plane lose precision in
  float16 (FIELD.md), BatchNorm/LayerNorm/GroupNorm likewise;
* softmax (over the 313 ab bins of ECCV16-style models) and the ops around it;
* the model's head: its last layer with weights (the one that produces the colours, about 1 % of
  a CycleGAN's work) and everything after it (tanh, the ab-bin decoding, the upsample), so the
  colours leave the model at full precision.

The model's input and output stay float32 (Cast nodes at the edges), so the runtime feeds it the
same way as the FP32 model. The converter is ONNX Runtime's ``convert_float_to_float16`` (the same
tool as onnxconverter-common's, maintained inside onnxruntime); a lossy float32 -> float16 -> float32
round trip it leaves before the output is removed. ONNX Runtime's CPU provider runs such a model
(where it has no float16 kernel it computes in float32); TensorRT and the CUDA provider run it in FP16.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colorrt.atomic import replaced_when_done
from colorrt.calibration import model as onnx_model
from colorrt.contract import ColorContract
from colorrt.modelfile import save as save_model

DEFAULT_KEEP_FP32_OPS = (
    "InstanceNormalization",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "LpNormalization",
    "MeanVarianceNormalization",
    "Softmax",
    "LogSoftmax",
)


def convert_fp16(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    keep_fp32_ops: Sequence[str] = DEFAULT_KEEP_FP32_OPS,
    keep_fp32_nodes: Sequence[str] = (),
    keep_head_fp32: bool = True,
    contract: ColorContract | str | None = None,
) -> Path:
    """Convert an FP32 colorization ONNX model to FP16 mixed precision; returns ``dst``.

    Args:
        src: FP32 ONNX model carrying its colour contract (or pass ``contract``).
        dst: the ``.onnx`` file to write (atomically: on any error nothing is left behind).
        keep_fp32_ops: op types computed in float32.
        keep_fp32_nodes: node names (of the constant-folded graph) computed in float32.
        keep_head_fp32: keep the last layer with weights and everything after it (final
            activation, ab decoding, upsampling) in float32.
        contract: contract (or preset name) for a model that stores none; written into ``dst``.

    Raises:
        ModelError: the source is not an FP32 colorization ONNX model, or ONNX Runtime cannot load
            the result.
        ContractError: the source has no contract and none was given.
    """
    source = onnx_model.load_source(src, contract)
    dst = onnx_model.check_destination(dst, source.path)
    with replaced_when_done(dst, ".onnx") as temp:
        write_fp16(
            source,
            temp,
            keep_fp32_ops=keep_fp32_ops,
            keep_fp32_nodes=keep_fp32_nodes,
            keep_head_fp32=keep_head_fp32,
        )
    return dst


def write_fp16(
    source: onnx_model.SourceModel,
    out: Path,
    *,
    keep_fp32_ops: Sequence[str] = DEFAULT_KEEP_FP32_OPS,
    keep_fp32_nodes: Sequence[str] = (),
    keep_head_fp32: bool = True,
    check_runs: bool = True,
) -> dict[str, Any]:
    """Convert ``source`` to FP16 mixed precision and write the stamped model to ``out``; returns the
    facts stored in its ``colorrt.quantization`` metadata. ``check_runs``: load ``out`` in ONNX Runtime
    (callers that open it next anyway, like the quality report, skip this)."""
    from onnxruntime.transformers import float16

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="colorrt-fp16-") as tmp:
        prepared = onnx_model.prepare_graph(source, Path(tmp) / "prepared.onnx")
    onnx_model.check_node_names(prepared.graph, keep_fp32_nodes, "keep_fp32_nodes")
    blocked_nodes = set(keep_fp32_nodes)
    if keep_head_fp32:
        tail, last_layers = onnx_model.head_nodes(prepared.graph)
        blocked_nodes |= set(tail) | set(last_layers)
    blocked_ops = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(keep_fp32_ops))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one "value truncated" warning per tiny weight
        converted = float16.convert_float_to_float16(
            prepared, keep_io_types=True, op_block_list=blocked_ops, node_block_list=sorted(blocked_nodes)
        )
    removed = drop_cast_round_trips(converted)
    fp32_nodes = sorted(
        n.name for n in converted.graph.node if n.op_type in blocked_ops or n.name in blocked_nodes
    )
    facts = {
        "precision": "fp16",
        "converter": "onnxruntime.transformers.float16.convert_float_to_float16",
        "keep_fp32_ops": sorted(set(keep_fp32_ops)),
        "fp32_nodes": fp32_nodes,
        "io": "float32",
        "cast_round_trips_removed": removed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    onnx_model.stamp(converted, source.contract, "fp16", None, facts)
    save_model(converted, out)
    if check_runs:
        onnx_model.check_runs(out)
    return facts


def drop_cast_round_trips(model: Any) -> int:
    """Remove ``Cast(to float16) -> Cast(to float32)`` chains (they only round the values); returns how many.

    The converter leaves one before a float32 output whose producer was kept in float32.
    """
    import onnx

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    types = _tensor_types(model)
    removed = 0
    for second in list(graph.node):
        first = producers.get(second.input[0]) if second.op_type == "Cast" else None
        if first is None or first.op_type != "Cast" or first not in graph.node:
            continue
        if _cast_to(second) != onnx.TensorProto.FLOAT or _cast_to(first) != onnx.TensorProto.FLOAT16:
            continue
        if len(consumers.get(first.output[0], [])) != 1 or first.output[0] in outputs:
            continue
        if types.get(first.input[0]) != onnx.TensorProto.FLOAT:
            continue
        source = first.input[0]
        graph.node.remove(first)
        if second.output[0] in outputs:  # keep the output's name: Identity is free in ORT and TensorRT
            second.op_type, second.input[0] = "Identity", source
            del second.attribute[:]
        else:
            for node in consumers.get(second.output[0], []):
                node.input[:] = [source if n == second.output[0] else n for n in node.input]
            graph.node.remove(second)
        removed += 1
    return removed


def _cast_to(node: Any) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None)


def _tensor_types(model: Any) -> dict[str, int]:
    """Element type of every tensor ONNX shape inference can type (graph inputs, outputs, values)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001  # untyped tensors only make the caller keep a cast it could drop
        inferred = model.graph
    values = list(inferred.value_info) + list(inferred.input) + list(inferred.output)
    return {v.name: v.type.tensor_type.elem_type for v in values}
