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
its Q/DQ nodes are checked (:func:`colorrt.calibration.qdq.check_quantized`): zero points and types
as the target requires, positive finite scales, per-channel weight scales.
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

from colorrt.atomic import replaced_when_done
from colorrt.calibration import model as onnx_model
from colorrt.calibration.dataset import DEFAULT_MAX_SAMPLES, CalibrationSet, load_calibration_set
from colorrt.calibration.qdq import (  # noqa: F401  (QdqSummary and TARGET_SPECS: for int8.X users)
    TARGET_SPECS,
    TARGETS,
    WEIGHT_INPUTS,
    QdqSummary,
    QuantizationError,
    TargetSpec,
    check_choice,
    check_quantized,
)
from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.modelfile import save as save_model

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
_log = logging.getLogger("colorrt.calibration")


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
        check_choice("target", self.target, TARGETS)
        check_choice("method", self.method, METHODS)
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
    with replaced_when_done(dst, ".onnx") as temp:
        write_int8(source, calibration, temp, options)
    return dst


def write_int8(
    source: onnx_model.SourceModel,
    calibration: CalibrationSet,
    out: Path,
    options: Int8Options,
    check_runs: bool = True,
) -> Int8Facts:
    """Quantize ``source`` with ``calibration`` and write the checked, stamped model to ``out``.
    ``check_runs``: load ``out`` in ONNX Runtime (callers that open it next anyway skip this)."""
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
    save_model(proto, out)
    if check_runs:
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
    weighted = {n.name for n in graph.node if n.op_type in WEIGHT_INPUTS}
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
