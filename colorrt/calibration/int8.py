"""INT8 post-training quantization into Q/DQ ONNX with ONNX Runtime's static quantizer.

TensorRT 11 takes INT8 only from QuantizeLinear/DequantizeLinear pairs in the graph, and CPU users get
INT8 through ONNX Runtime's fused Q/DQ kernels. The two want different graphs, so a file is made for
one target (stored in its ``colorrt.quant_target`` metadata):

* ``tensorrt``: symmetric signed int8 everywhere (every zero point 0, weights in [-127, 127]),
  per-channel weights (ConvTranspose per input channel, the form TensorRT's deconvolutions take),
  Q/DQ only on the inputs of layers with weights (Conv, ConvTranspose, Gemm), float biases: the
  placement TensorRT's explicit-quantization guide recommends (and NVIDIA ModelOpt produces);
  TensorRT fuses the rest.
* ``cpu``: uint8 activations (asymmetric, so ReLU outputs use the whole range) with symmetric
  per-channel 7-bit weights and int32 biases, Q/DQ on every operator ONNX Runtime can run in int8,
  so that its graph optimizer fuses ``DQ -> Conv -> Q`` into ``QLinearConv``. U8S8 is ONNX Runtime's
  x86 fast path (S8S8 runs at about half its speed without VNNI); 7-bit weights keep the u8 x s8
  pair sums of CPUs without VNNI from saturating (with 8-bit weights the default model's output
  was visibly wrong: mean CIEDE2000 3.5 instead of 0.25).

Normalizations, softmax and the model's head (its last layer with weights and everything after it)
stay in float by default; more nodes can be excluded by name or op type. Before a file is written
its Q/DQ nodes are checked (:func:`check_quantized`): zero points and types as the target requires,
positive finite scales, per-channel weight scales.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.calibration import model as onnx_model
from colorrt.calibration.dataset import DEFAULT_MAX_SAMPLES, CalibrationSet, load_calibration_set
from colorrt.contract import ColorContract
from colorrt.errors import InputError, ModelError

TARGETS = ("tensorrt", "cpu")
METHODS = ("entropy", "minmax", "percentile")
# Percentile: the best, or within 0.02 CIEDE2000 of the best, on every model and target measured
# (docs/benchmarks.md); entropy needs many pictures (0.31 with 64, 1.73 with 27 on one model).
DEFAULT_METHOD = "percentile"
DEFAULT_PERCENTILE = 99.99  # percent of |activation| values inside the range (percentile calibration)
# Kept in float on every target: no int8 kernels, and quantizing their parameters only loses accuracy.
FLOAT_OP_TYPES = (
    "InstanceNormalization",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "Softmax",
    "LogSoftmax",
)
_WEIGHT_INPUTS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}  # op type -> index of its weight
_log = logging.getLogger("colorrt.calibration")


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
class Int8Options:
    """Settings of one INT8 quantization (validated on creation)."""

    target: str = "tensorrt"
    method: str = DEFAULT_METHOD
    exclude_nodes: tuple[str, ...] = ()
    exclude_op_types: tuple[str, ...] = ()
    keep_head_fp32: bool = True
    percentile: float = DEFAULT_PERCENTILE
    seed: int = 0
    spec_override: TargetSpec | None = None  # experiments (benchmarks): another Q/DQ form for the target

    def __post_init__(self) -> None:
        _check_choice("target", self.target, TARGETS)
        _check_choice("method", self.method, METHODS)
        if not 50.0 < self.percentile <= 100.0:
            raise InputError(f"percentile must be in (50, 100], got {self.percentile}")
        object.__setattr__(self, "exclude_nodes", tuple(self.exclude_nodes))
        object.__setattr__(self, "exclude_op_types", tuple(self.exclude_op_types))

    @property
    def spec(self) -> TargetSpec:
        """The Q/DQ form: the target's, or the experiment's override."""
        return self.spec_override or TARGET_SPECS[self.target]


@dataclass(frozen=True)
class Int8Facts:
    """What the quantizer did: stored as JSON in the file's ``colorrt.quantization`` metadata."""

    target: str
    method: str
    samples: int
    calibration: str  # CalibrationSet.describe()
    fingerprint: str
    seed: int
    float_nodes: tuple[str, ...]  # nodes left in float on purpose (head, exclusions)
    quantized_layers: int  # weighted layers that read int8 weights
    float_layers: tuple[str, ...]  # weighted layers left in float
    qdq_nodes: int
    seconds: float
    onnxruntime: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": "int8",
            "target": self.target,
            "method": self.method,
            "samples": self.samples,
            "calibration": self.calibration,
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "float_nodes": list(self.float_nodes),
            "quantized_layers": self.quantized_layers,
            "float_layers": list(self.float_layers),
            "qdq_nodes": self.qdq_nodes,
            "quantizer": f"onnxruntime {self.onnxruntime} quantize_static (QDQ)",
            **self.extra,
        }


def quantize_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    calib: str | os.PathLike[str] | CalibrationSet,
    target: str = "tensorrt",
    method: str = DEFAULT_METHOD,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    exclude_nodes: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    keep_head_fp32: bool = True,
    percentile: float = DEFAULT_PERCENTILE,
    seed: int = 0,
    contract: ColorContract | str | None = None,
) -> Path:
    """Quantize an FP32 colorization ONNX model to INT8 Q/DQ ONNX; returns ``dst``.

    Args:
        src: FP32 ONNX model carrying its colour contract (or pass ``contract``).
        dst: the ``.onnx`` file to write (atomically: on any error nothing is left behind).
        calib: a folder of images, a CBZ/zip of pages, a video, or a :class:`CalibrationSet`.
        target: ``"tensorrt"`` (symmetric int8, zero points 0) or ``"cpu"`` (ONNX Runtime U8S8).
        method: activation-range calibration: ``"percentile"`` (``percentile`` percent of the
            values inside the range; the default), ``"entropy"`` (KL divergence) or ``"minmax"``.
        max_samples: most calibration pictures read from ``calib`` (a CalibrationSet is used whole).
        exclude_nodes: node names kept in float.
        exclude_op_types: op types kept in float, besides :data:`FLOAT_OP_TYPES`.
        keep_head_fp32: keep the last layer with weights and everything after it in float.
        seed: which pictures / frames are drawn from ``calib``.
        contract: contract (or preset name) for a model that stores none; written into ``dst``.

    Raises:
        ModelError: the source is not an FP32 colorization ONNX model.
        ContractError: the source has no contract and none was given.
        InputError: bad calibration source, too few pictures, unknown node names or options.
        QuantizationError: the quantized graph fails the target's checks.
    """
    options = Int8Options(
        target, method, tuple(exclude_nodes), tuple(exclude_op_types), keep_head_fp32, percentile, seed
    )
    source = onnx_model.load_source(src, contract)
    dst = onnx_model.check_destination(dst, source.path)
    if isinstance(calib, CalibrationSet):
        calibration = calib
    else:
        calibration = load_calibration_set(calib, source.contract, max_samples=max_samples, seed=seed)
    with onnx_model.replaced_when_done(dst, "int8") as temp:
        write_int8(source, calibration, temp, options)
    return dst


def write_int8(
    source: onnx_model.SourceModel, calibration: CalibrationSet, out: Path, options: Int8Options
) -> Int8Facts:
    """Quantize ``source`` with ``calibration`` and write the checked, stamped model to ``out``."""
    import onnx
    import onnxruntime

    _check_calibration_fits(source, calibration)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="colorrt-int8-") as tmp:
        prepared = onnx_model.prepare_graph(source, Path(tmp) / "prepared.onnx")
        float_nodes = _float_nodes(prepared, options)
        quantized_path = Path(tmp) / "quantized.onnx"
        _run_quantizer(
            Path(tmp) / "prepared.onnx", prepared, quantized_path, calibration, float_nodes, options
        )
        proto = onnx.load(str(quantized_path))
    onnx_model.strip_unused_opsets(proto)
    onnx_model.set_metadata(proto, {"onnx.quant.pre_process": None, "onnx.infer": None})  # ORT notes
    summary = check_quantized(proto, options.spec)
    facts = Int8Facts(
        target=options.target,
        method=options.method,
        samples=len(calibration),
        calibration=calibration.describe(),
        fingerprint=calibration.fingerprint(),
        seed=options.seed,
        float_nodes=tuple(sorted(float_nodes)),
        quantized_layers=summary.quantized_layers,
        float_layers=summary.float_layers,
        qdq_nodes=summary.qdq_nodes,
        seconds=round(time.perf_counter() - started, 2),
        onnxruntime=onnxruntime.__version__,
        extra={"form": _form(options.spec)},
    )
    onnx_model.stamp(proto, source.contract, "int8", options.target, facts.to_dict())
    onnx_model.save_atomically(proto, out)
    onnx_model.check_runs(out)
    return facts


def _form(spec: TargetSpec) -> dict[str, Any]:
    return {
        "activations": f"{spec.activation_type} {_symmetry(spec.activation_symmetric)} per-tensor",
        "weights": "int8 symmetric per-channel",
        "bias": "int32" if spec.quantize_bias else "float",
        "placement": "inputs and outputs of int8-capable ops"
        if spec.quantize_outputs
        else f"inputs of {', '.join(spec.op_types or ())}",
        "format": spec.quant_format,
    }


def _symmetry(symmetric: bool) -> str:
    return "symmetric" if symmetric else "asymmetric"


def _check_calibration_fits(source: onnx_model.SourceModel, calibration: CalibrationSet) -> None:
    want, got = source.contract.input_channels, calibration.contract.input_channels
    if want != got or not len(calibration):
        raise InputError(
            f"the calibration set was made for contract '{calibration.contract.name}' ({got} input "
            f"channels, {len(calibration)} samples); the model takes contract '{source.contract.name}' "
            f"({want} channels)",
            "build the calibration set with the model's own contract",
        )


def _float_nodes(prepared: Any, options: Int8Options) -> set[str]:
    """Names of the nodes to keep in float: exclusions, normalizations and softmax, and the head."""
    graph = prepared.graph
    onnx_model.check_node_names(graph, options.exclude_nodes, "exclude_nodes")
    float_types = set(FLOAT_OP_TYPES) | set(options.exclude_op_types)
    keep = set(options.exclude_nodes) | {n.name for n in graph.node if n.op_type in float_types}
    if options.keep_head_fp32:
        tail, last_layers = onnx_model.head_nodes(graph)
        keep |= set(tail) | set(last_layers)
    weighted = {n.name for n in graph.node if n.op_type in _WEIGHT_INPUTS}
    if not weighted:
        raise InputError(
            "the model has no layers with weights (Conv, ConvTranspose, Gemm, MatMul), so INT8 has nothing "
            "to quantize",
            "keep this model in FP32 (or try --fp16)",
        )
    op_types = options.spec.op_types
    quantizable = {
        n.name for n in graph.node if n.name in weighted and (not op_types or n.op_type in op_types)
    }
    if quantizable <= keep:
        raise InputError(
            f"every layer with weights is excluded ({len(weighted)}: {', '.join(sorted(weighted)[:4])}...), "
            "so nothing would be quantized",
            "exclude fewer nodes, or pass keep_head_fp32=False (--quantize-head) for a one-layer model",
        )
    return keep


def _run_quantizer(
    prepared: Path,
    prepared_proto: Any,
    out: Path,
    calibration: CalibrationSet,
    float_nodes: set[str],
    options: Int8Options,
) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    spec = options.spec
    activation = QuantType.QInt8 if spec.activation_type == "int8" else QuantType.QUInt8
    method = {
        "entropy": CalibrationMethod.Entropy,
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
    }[options.method]
    extra: dict[str, Any] = {
        "ActivationSymmetric": spec.activation_symmetric,
        "WeightSymmetric": True,
        "CalibTensorRangeSymmetric": spec.activation_symmetric,
        "QuantizeBias": spec.quantize_bias,
        # Float biases need no weight-scale adjustment (and it breaks on per-input-channel ConvTranspose).
        "QDQDisableWeightAdjustForInt32Bias": not spec.quantize_bias,
        "CalibStridedMinMax": 1,  # collect one sample at a time: histograms of big activations stay small
        "CalibPercentile": options.percentile,
        "TensorQuantOverrides": _conv_transpose_axes(prepared_proto, spec.conv_transpose_axis),
    }
    if not spec.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = list(spec.op_types or ())
    with _quiet_quantizer(), contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        quantize_static(
            str(prepared),
            str(out),
            _Reader(calibration),
            quant_format=QuantFormat.QOperator if spec.quant_format == "qoperator" else QuantFormat.QDQ,
            op_types_to_quantize=list(spec.op_types) if spec.op_types else None,
            per_channel=True,
            reduce_range=spec.reduce_range,
            activation_type=activation,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=sorted(float_nodes),
            calibrate_method=method,
            extra_options=extra,
        )


def _conv_transpose_axes(prepared: Any, axis: int) -> dict[str, list[dict[str, int]]]:
    """Per-channel axis of every ConvTranspose weight (ONNX Runtime's quantizer takes 1 otherwise;
    its QDQOpTypePerChannelSupportToAxis option is not consulted for Conv/ConvTranspose)."""
    initializers = {t.name for t in prepared.graph.initializer}
    return {
        node.input[1]: [{"axis": axis}]
        for node in prepared.graph.node
        if node.op_type == "ConvTranspose" and len(node.input) > 1 and node.input[1] in initializers
    }


@contextlib.contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer logs advice on the root logger; keep it out of colorrt's output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


class _Reader:
    """Feeds a calibration set to ONNX Runtime's calibrator one sample at a time (strided collection)."""

    def __init__(self, calibration: CalibrationSet) -> None:
        self.name = calibration.contract.input_name
        self.inputs = calibration.inputs()
        self.start, self.end = 0, len(self.inputs)
        self.position = 0

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = start_index, min(end_index, len(self.inputs))
        self.position = self.start

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.end:
            return None
        self.position += 1
        return {self.name: self.inputs[self.position - 1]}

    def rewind(self) -> None:
        self.position = self.start


# ---------------------------------------------------------------------------------------------- checks


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
        _check_choice("target", target, TARGETS)
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
    layers = [
        n for n in graph.node if n.op_type in _WEIGHT_INPUTS and len(n.input) > _WEIGHT_INPUTS[n.op_type]
    ]
    int8_layers = [n for n in layers if n.input[_WEIGHT_INPUTS[n.op_type]] in dequantized]
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
        index = _WEIGHT_INPUTS.get(node.op_type)
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


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]!r}?" if close else None
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}", hint)
