"""The precision check on the engine inspector's JSON: an ``--fp16`` build whose convolutions ran
in FP32 is a known silent trap. Pure logic: no tensorrt, no cupy.

Inspector JSON layouts handled (see tests/engines/data/README.md for the sources): TensorRT 8.x/10.x
layers whose ``Inputs``/``Outputs`` carry one ``"Format/Datatype"`` string ("Channel major FP16
format where channel % 8 == 0", "Float", "Half", "Int8", ...), and TensorRT 11.x, which replaced the
top-level ``Bindings`` list by ``"I/O Tensors"`` objects and split the format and the data type into
separate fields (read here as ``"DataType"`` / ``"Format"``, as in its ``I/O Tensors`` entries; the
migration notes show no per-layer example, so every key is tried).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from colorrt.errors import BackendError, InputError

PRECISIONS = ("fp32", "fp16", "int8")  # what an engine can be verified to run in


# Words of TensorRT's format/datatype strings → canonical names (first matching word wins).
_DTYPE_WORDS = {
    "float": "fp32",
    "fp32": "fp32",
    "half": "fp16",
    "fp16": "fp16",
    "bfloat16": "bf16",
    "bf16": "bf16",
    "int8": "int8",
    "uint8": "uint8",
    "fp8": "fp8",
    "int4": "int4",
    "fp4": "fp4",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
    "double": "fp64",
}
_COMPUTE_DTYPES = {"fp32", "fp16", "bf16", "int8", "fp8", "int4", "fp4", "fp64"}
_HEAVY_PARAMETER_TYPES = {"convolution", "deconvolution", "matrixmultiply", "fullyconnected", "gemm"}
_HEAVY_LAYER_TYPE = re.compile(r"conv|gemm|matrixmultiply|fullyconnected", re.IGNORECASE)
# Heavy-layer precisions each expected engine precision accepts.
_ACCEPTED = {"fp32": {"fp32"}, "fp16": {"fp16", "int8", "fp8"}, "int8": {"int8", "fp8", "int4", "fp4"}}


def dtype_from_text(text: str | None) -> str:
    """Canonical dtype named by a TensorRT format or datatype string, or ``"unknown"``.

    ``"Channel major FP16 format where channel % 8 == 0"`` → fp16, ``"Float"`` → fp32,
    ``"Thirty-two wide channel vectorized row major Int8 format."`` → int8,
    ``"N/A due to dynamic shapes"`` → unknown.
    """
    for word in re.findall(r"[A-Za-z0-9]+", text or ""):
        dtype = _DTYPE_WORDS.get(word.lower())
        if dtype:
            return dtype
    return "unknown"


def tensor_dtype(tensor: Mapping[str, Any] | str) -> str:
    """Dtype of one inspector tensor entry (TensorRT 10 ``Format/Datatype`` or 11 ``DataType``)."""
    if isinstance(tensor, str):
        return dtype_from_text(tensor)
    for key in ("DataType", "Datatype", "Format/Datatype", "Format/DataType", "Format"):
        dtype = dtype_from_text(tensor.get(key)) if isinstance(tensor.get(key), str) else "unknown"
        if dtype != "unknown":
            return dtype
    return "unknown"


def is_heavy_layer(layer: Mapping[str, Any]) -> bool:
    """Convolution, deconvolution, matrix multiply or a fused kernel built around one."""
    parameter = str(layer.get("ParameterType", "")).replace(" ", "").lower()
    return parameter in _HEAVY_PARAMETER_TYPES or bool(
        _HEAVY_LAYER_TYPE.search(str(layer.get("LayerType", "")))
    )


def layer_precision(layer: Mapping[str, Any]) -> str:
    """The precision a layer computes in: its first activation input's dtype, else weights, else outputs."""
    for tensor in layer.get("Inputs") or ():
        dtype = tensor_dtype(tensor)
        if dtype in _COMPUTE_DTYPES:
            return dtype
    weights = layer.get("Weights")
    if isinstance(weights, Mapping):
        dtype = dtype_from_text(str(weights.get("Type", "")))
        if dtype in _COMPUTE_DTYPES:
            return dtype
    for tensor in layer.get("Outputs") or ():
        dtype = tensor_dtype(tensor)
        if dtype in _COMPUTE_DTYPES:
            return dtype
    return "unknown"


@dataclass(frozen=True)
class LayerPrecision:
    """One engine layer and the precision it runs in."""

    name: str
    layer_type: str
    precision: str


@dataclass(frozen=True)
class PrecisionReport:
    """What the inspector says about an engine's precisions.

    ``heavy_counts``: heavy layers per precision; ``all_counts``: every layer with a known
    precision; ``mismatched``: heavy layers outside what ``expected`` accepts; ``verified``: False
    when the JSON did not allow a check (``note`` says why); ``kept_fp32``: heavy layers in fp32
    because the model computes them in FP32 on purpose (not mismatched).
    """

    expected: str
    heavy_layers: tuple[LayerPrecision, ...]
    heavy_counts: dict[str, int]
    all_counts: dict[str, int]
    mismatched: tuple[LayerPrecision, ...]
    verified: bool
    note: str = ""
    kept_fp32: tuple[LayerPrecision, ...] = ()

    @property
    def ok(self) -> bool:
        return self.verified and not self.mismatched

    def summary(self) -> str:
        """One line: ``fp16 engine: 12 heavy layers (fp16 12)``."""
        if not self.verified:
            return f"{self.expected} engine: precision not verified ({self.note})"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.heavy_counts.items()))
        text = f"{self.expected} engine: {len(self.heavy_layers)} heavy layers ({counts})"
        if self.kept_fp32:
            text += f"; {len(self.kept_fp32)} kept in fp32 by the model"
        if self.mismatched:
            text += f"; {len(self.mismatched)} not {self.expected}"
        return text


class PrecisionError(BackendError):
    """The built engine does not run its heavy layers in the requested precision."""

    def __init__(self, what: str, hint: str, report: PrecisionReport) -> None:
        super().__init__(what, hint)
        self.report = report


def check_layer_precisions(
    inspector_json: str | Mapping[str, Any],
    expected: str = "fp16",
    *,
    max_mismatch_fraction: float = 0.0,
    raise_on_mismatch: bool = True,
    fp32_nodes: Iterable[str] = (),
) -> PrecisionReport:
    """Check the heavy layers of an engine inspector JSON (``LayerInformationFormat.JSON``).

    Heavy layers (convolution, deconvolution, matrix multiply and fused kernels around them) must
    run in ``expected`` (``fp16`` also accepts int8/fp8 kernels; ``int8`` accepts fp8/int4/fp4),
    except that a layer built from one of ``fp32_nodes`` (ONNX node names the model computes in
    FP32 on purpose, see :func:`kept_fp32_nodes`) may run in fp32. More than
    ``max_mismatch_fraction`` of them elsewhere raises :class:`PrecisionError` naming the layers.
    JSON without datatypes (built without ``ProfilingVerbosity.DETAILED``, or dynamic shapes
    inspected without an execution context) gives a report with ``verified=False``.
    """
    if expected not in PRECISIONS:
        raise InputError(f"expected precision must be one of {list(PRECISIONS)}, got {expected!r}")
    layers = _inspector_layers(inspector_json)
    if layers and all(isinstance(layer, str) for layer in layers):
        note = (
            "the inspector lists layer names only: the engine was built without ProfilingVerbosity.DETAILED"
        )
        return PrecisionReport(expected, (), {}, {}, (), False, note)
    described = [layer for layer in layers if isinstance(layer, Mapping)]
    all_counts = Counter(p for p in map(layer_precision, described) if p != "unknown")
    heavy_described = [layer for layer in described if is_heavy_layer(layer)]
    heavy = tuple(
        LayerPrecision(str(layer.get("Name", "?")), str(layer.get("LayerType", "?")), layer_precision(layer))
        for layer in heavy_described
    )
    fp32_nodes = frozenset(fp32_nodes)
    kept = tuple(
        h
        for h, layer in zip(heavy, heavy_described, strict=True)
        if h.precision == "fp32" and not fp32_nodes.isdisjoint(_onnx_nodes(layer))
    )
    known = [h for h in heavy if h.precision != "unknown"]
    counts = dict(Counter(h.precision for h in known))
    note = ""
    if not heavy:
        note = "no convolution or matrix-multiply layers found in the inspector JSON"
    elif not known:
        note = "the inspector gave no datatypes for the heavy layers (N/A due to dynamic shapes?)"
    mismatched = tuple(h for h in known if h.precision not in _ACCEPTED[expected] and h not in kept)
    report = PrecisionReport(
        expected, heavy, counts, dict(all_counts), mismatched, bool(known), note, kept_fp32=kept
    )
    if raise_on_mismatch and known and len(mismatched) > max_mismatch_fraction * len(known):
        raise _precision_error(report, len(known))
    return report


def _onnx_nodes(layer: Mapping[str, Any]) -> set[str]:
    """ONNX nodes an engine layer was built from: its ``[ONNX Layer: name]`` metadata entries and
    the parts of a fused name (``"/model.19/Conv + /model.20/Tanh"``)."""
    names = set(re.findall(r"\[ONNX Layer: ([^\]]+)\]", str(layer.get("Metadata", ""))))
    return names | {part.strip() for part in str(layer.get("Name", "")).split(" + ")}


def kept_fp32_nodes(onnx_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """ONNX nodes an FP16 model made by colorrt.calibration computes in FP32 on purpose (its
    normalizations, softmax and head: ``fp32_nodes`` in its ``colorrt.quantization`` metadata);
    empty for any other model."""
    import onnx

    from colorrt.modelfile import FACTS_KEY, metadata

    text = metadata(onnx.load(str(onnx_path), load_external_data=False)).get(FACTS_KEY, "")
    try:
        facts = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return ()
    nodes = facts.get("fp32_nodes", ()) if isinstance(facts, dict) else ()
    return tuple(str(name) for name in nodes)


def _inspector_layers(inspector_json: str | Mapping[str, Any]) -> list[Any]:
    if isinstance(inspector_json, str):
        try:
            data = json.loads(inspector_json)
        except json.JSONDecodeError as e:
            raise BackendError(f"the engine inspector returned text that is not JSON: {e}") from e
    else:
        data = inspector_json
    layers = data.get("Layers") if isinstance(data, Mapping) else None
    if not isinstance(layers, list):
        raise BackendError(
            "the engine inspector JSON has no 'Layers' list",
            "pass the output of get_engine_information(LayerInformationFormat.JSON)",
        )
    return layers


def _precision_error(report: PrecisionReport, known: int) -> PrecisionError:
    by_precision = Counter(h.precision for h in report.mismatched)
    found = ", ".join(f"{n} in {p}" for p, n in sorted(by_precision.items()))
    names = [h.name for h in report.mismatched]
    shown = ", ".join(names[:12]) + (f", ... ({len(names) - 12} more)" if len(names) > 12 else "")
    hints = {
        "fp16": "TensorRT 11 takes precision from the ONNX graph: the FP16 conversion left these layers in "
        "FP32 (check colorrt.calibration.convert_fp16), or build without --fp16 on purpose",
        "int8": "TensorRT 11 runs INT8 only where the ONNX has Q/DQ nodes: check the quantized model "
        "(colorrt.calibration.quantize_int8 with target='tensorrt') covers these layers",
        "fp32": "the ONNX graph already carries reduced-precision casts; build from the FP32 export",
    }
    return PrecisionError(
        f"the {report.expected} engine runs {len(report.mismatched)} of {known} heavy layers in another "
        f"precision ({found}): {shown}",
        hints[report.expected],
        report,
    )
