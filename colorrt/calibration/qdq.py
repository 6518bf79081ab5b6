"""The Q/DQ form each INT8 target needs, and the check that a quantized graph has it.

* ``tensorrt``: symmetric signed int8 everywhere (zero points 0, weights in [-127, 127]), per-channel
  weights (ConvTranspose per input channel), Q/DQ on the inputs of layers with weights, float biases.
* ``cpu``: uint8 activations, symmetric per-channel 7-bit weights, int32 biases, Q/DQ on every
  operator ONNX Runtime runs in int8 (see :mod:`colorrt.calibration.int8` for why).

:func:`check_quantized` reads a quantized graph's Q/DQ nodes and raises :class:`QuantizationError`
when zero points, types, scales or per-channel axes differ from what the target needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorrt.errors import InputError, ModelError

TARGETS = ("tensorrt", "cpu")
WEIGHT_INPUTS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}  # op type -> index of its weight


class QuantizationError(ModelError):
    """The quantized graph does not have the form its target needs (zero points, types, scales)."""


@dataclass(frozen=True)
class TargetSpec:
    """How a target wants its Q/DQ graph."""

    name: str
    activation_type: str  # "int8" or "uint8"
    activation_symmetric: bool
    quantize_bias: bool  # int32 biases (ONNX Runtime fuses them); TensorRT takes float biases
    op_types: tuple[str, ...] | None  # op types whose tensors are quantized; None: all ONNX Runtime knows
    quantize_outputs: bool  # Q/DQ also on the outputs of the quantized layers
    description: str
    quant_format: str = "qdq"  # "qoperator" (QLinearConv nodes) only for experiments: no target uses it
    # Per-channel axis of ConvTranspose weights ((C_in, C_out/groups, kH, kW)): ONNX Runtime scales
    # output channels (axis 1); TensorRT's deconvolution kernels take per-input-channel scales (axis 0)
    # and give wrong results with axis 1 (NVIDIA/TensorRT issues 1694 and 2380: "we don't support
    # per-output-channel quant for ConvTranspose"). NVIDIA ModelOpt's ONNX quantizer (0.47) writes
    # axis 1 nonetheless (benchmarks/compare_modelopt.py); which one TensorRT 11 takes is unverified.
    conv_transpose_axis: int = 1
    # 7-bit weights: x86 CPUs without VNNI multiply u8 x s8 pairs into saturating int16 sums
    # (vpmaddubsw), which overflow with full 8-bit weights and wreck the output.
    reduce_range: bool = False


TARGET_SPECS = {
    "tensorrt": TargetSpec(
        "tensorrt",
        activation_type="int8",
        activation_symmetric=True,
        quantize_bias=False,
        op_types=("Conv", "ConvTranspose", "Gemm"),
        quantize_outputs=False,
        conv_transpose_axis=0,
        description="TensorRT explicit quantization: symmetric int8, zero points 0, Q/DQ on weighted inputs",
    ),
    "cpu": TargetSpec(
        "cpu",
        activation_type="uint8",
        activation_symmetric=False,
        quantize_bias=True,
        op_types=None,
        quantize_outputs=True,
        reduce_range=True,
        description="ONNX Runtime CPU: uint8 activations, 7-bit per-channel weights, fused QLinearConv",
    ),
}


@dataclass(frozen=True)
class QdqSummary:
    """What :func:`check_quantized` found."""

    qdq_nodes: int
    quantized_layers: int
    float_layers: tuple[str, ...]
    activation_types: tuple[str, ...]


def check_quantized(proto: Any, target: str | TargetSpec) -> QdqSummary:
    """Check every Q/DQ node of a quantized model against what ``target`` needs.

    Both targets: zero points and scales are constants, scales positive and finite, every weight is
    int8 with zero point 0 and one scale per output channel (ConvTranspose for TensorRT: per input
    channel, the only per-channel form its deconvolutions take). ``tensorrt``: every zero point is
    int8 and 0 (symmetric), no int32 biases. ``cpu``: activations uint8 or int8, int32 biases with
    zero point 0. ``target`` may also be a :class:`TargetSpec` (experiments).

    Raises:
        QuantizationError: listing the offending tensors.
    """
    from onnx import numpy_helper

    if isinstance(target, str):
        check_choice("target", target, TARGETS)
        target = TARGET_SPECS[target]
    spec, target = target, target.name
    graph = proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update(_constant_nodes(graph))
    weights = _weight_tensors(graph, spec.conv_transpose_axis)
    problems: list[str] = []
    activation_types: set[str] = set()
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for node in qdq:
        role = _role(node, constants, weights)
        scale, zero = _qdq_parameters(node, constants, problems)
        if scale is None or zero is None:
            continue
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            problems.append(f"{node.name}: scale of {node.input[0]!r} is not positive and finite")
        if role == "activation":
            activation_types.add(str(zero.dtype))
        problems.extend(_zero_point_problems(node, role, zero, target))
        if role == "weight":
            weight = constants[node.input[0]]
            problems.extend(_per_channel_problems(node, weight, scale, weights[node.input[0]]))
            if target == "tensorrt" and weight.dtype == np.int8 and weight.min() < -127:
                problems.append(
                    f"{node.name}: weight {node.input[0]!r} holds -128; TensorRT takes [-127, 127]"
                )
    if problems:
        shown = "\n  ".join(problems[:12]) + (
            f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else ""
        )
        raise QuantizationError(
            f"the quantized model does not have the form target '{target}' needs:\n  {shown}",
            "this is a bug in the quantizer settings; report it with the model",
        )
    dequantized = {n.output[0] for n in qdq if n.op_type == "DequantizeLinear"}
    layers = [n for n in graph.node if n.op_type in WEIGHT_INPUTS and len(n.input) > WEIGHT_INPUTS[n.op_type]]
    int8_layers = [n for n in layers if n.input[WEIGHT_INPUTS[n.op_type]] in dequantized]
    float_layers = tuple(n.name for n in layers if n not in int8_layers and n.input[1] in constants)
    return QdqSummary(len(qdq), len(int8_layers), float_layers, tuple(sorted(activation_types)))


def _constant_nodes(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    found = {}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    found[node.output[0]] = numpy_helper.to_array(attribute.t)
    return found


def _weight_tensors(graph: Any, conv_transpose_axis: int) -> dict[str, tuple[str, int]]:
    """Quantized-weight tensor -> (consuming op type, its output-channel axis), through the weight's DQ."""
    dq_of = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    weights = {}
    for node in graph.node:
        index = WEIGHT_INPUTS.get(node.op_type)
        if index is None or len(node.input) <= index or node.input[index] not in dq_of:
            continue
        axis = conv_transpose_axis if node.op_type == "ConvTranspose" else 0
        weights[dq_of[node.input[index]]] = (node.op_type, axis)
    return weights


def _role(node: Any, constants: dict[str, np.ndarray], weights: dict[str, tuple[str, int]]) -> str:
    if node.op_type == "DequantizeLinear" and node.input[0] in constants:
        if node.input[0] in weights:
            return "weight"
        return "bias" if constants[node.input[0]].dtype == np.int32 else "constant"
    return "activation"


def _qdq_parameters(node: Any, constants: dict[str, np.ndarray], problems: list[str]):
    if len(node.input) < 3 or not node.input[2]:
        problems.append(f"{node.name}: no zero point (ONNX then means uint8 with zero point 0)")
        return None, None
    scale, zero = constants.get(node.input[1]), constants.get(node.input[2])
    if scale is None or zero is None:
        problems.append(f"{node.name}: scale or zero point of {node.input[0]!r} is not a constant")
        return None, None
    return scale, zero


def _zero_point_problems(node: Any, role: str, zero: np.ndarray, target: str) -> list[str]:
    tensor = f"{node.name} ({role} {node.input[0]!r})"
    if role == "weight" or target == "tensorrt":
        if zero.dtype != np.int8:
            return [f"{tensor}: zero point type {zero.dtype}, expected int8"]
        if np.any(zero != 0):
            return [f"{tensor}: zero point {np.unique(zero)[:4].tolist()}, expected 0 (symmetric)"]
        return []
    if role == "bias":
        return [] if not np.any(zero != 0) else [f"{tensor}: bias zero point is not 0"]
    if zero.dtype not in (np.uint8, np.int8):
        return [f"{tensor}: zero point type {zero.dtype}, expected uint8 or int8"]
    return []


def _per_channel_problems(
    node: Any, weight: np.ndarray, scale: np.ndarray, consumer: tuple[str, int]
) -> list[str]:
    op_type, axis = consumer
    if weight.dtype != np.int8:
        return [f"{node.name}: weight {node.input[0]!r} is {weight.dtype}, expected int8"]
    if op_type in ("Conv", "ConvTranspose") and weight.shape[axis] > 1:
        stored_axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.size != weight.shape[axis] or stored_axis % weight.ndim != axis:
            channels = "output" if op_type == "Conv" or axis == 1 else "input"
            return [
                f"{node.name}: weight {node.input[0]!r} of a {op_type} needs one scale per {channels} "
                f"channel (axis {axis}, {weight.shape[axis]} scales), got {scale.size} on axis {stored_axis}"
            ]
    return []


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]!r}?" if close else None
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}", hint)
