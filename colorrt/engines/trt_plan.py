"""Pure planning logic of the TensorRT path; nothing here imports tensorrt or cupy.

* shape ranges (``--batch 1:4:16 --size 256x256:512x512:1088x1920``) → optimization profiles that
  respect the model's colour contract (fixed render size, or sizes that are multiples of N);
* the engine cache key (which changes force a rebuild);
* the precision check on the engine inspector's JSON (an ``--fp16`` build whose convolutions ran
  in FP32 is a known silent trap);
* :class:`EngineFacts`, the build facts stored next to every plan (``M.plan.json``) and shown by
  ``colorrt info``;
* :class:`BufferPlan`, the byte sizes of the input/output buffers for a shape.

Inspector JSON layouts handled (see tests/engines/data/README.md for the sources): TensorRT 8.x/10.x
layers whose ``Inputs``/``Outputs`` carry one ``"Format/Datatype"`` string ("Channel major FP16
format where channel % 8 == 0", "Float", "Half", "Int8", ...), and TensorRT 11.x, which replaced the
top-level ``Bindings`` list by ``"I/O Tensors"`` objects and split the format and the data type into
separate fields (read here as ``"DataType"`` / ``"Format"``, as in its ``I/O Tensors`` entries; the
migration notes show no per-layer example, so every key is tried).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import BackendError, ContractError, InputError, ModelError

Shape = tuple[int, ...]
Size = tuple[int, int]  # (height, width) in pixels

PRECISIONS = ("fp32", "fp16", "int8")  # what an engine can be verified to run in
DEFAULT_BATCH = (1, 4, 16)  # min, opt, max images per batch
FACTS_VERSION = 1
CACHE_KEY_VERSION = 1
_GIB = 1 << 30


# ---------------------------------------------------------------------------------------------
# Shape ranges and optimization profiles
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeRanges:
    """Requested batch and size ranges, each (min, opt, max); ``None`` means "decide from the model"."""

    batch: tuple[int, int, int] | None
    size: tuple[Size, Size, Size] | None


def parse_shape_ranges(batch: str | int | None = "1:4:16", size: str | None = None) -> ShapeRanges:
    """Parse ``--batch`` and ``--size`` text.

    ``batch``: ``"MIN:OPT:MAX"`` (e.g. ``"1:4:16"``) or one number ``N`` meaning ``1:N:N`` (any batch
    up to N, tuned for N); ``None``: the model's fixed batch, else 1:4:16.
    ``size``: ``"HxW"`` (exactly that size) or ``"HxW:HxW:HxW"`` (min:opt:max, height x width);
    ``None``: derived from the contract.
    """
    return ShapeRanges(_parse_batch(batch), _parse_size(size))


def _parse_batch(batch: str | int | None) -> tuple[int, int, int] | None:
    if batch is None:
        return None
    text = str(batch).strip()
    parts = text.split(":")
    usage = "give --batch as MIN:OPT:MAX such as 1:4:16, or one number N for 1:N:N"
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"--batch {text!r} is not a batch range", usage) from None
    if len(values) == 1:
        values = [1, values[0], values[0]]
    if len(values) != 3 or min(values) < 1:
        raise InputError(f"--batch {text!r} is not a batch range of positive numbers", usage)
    lo, opt, hi = values
    if not lo <= opt <= hi:
        raise InputError(f"--batch {text!r}: expected MIN <= OPT <= MAX, got {lo}, {opt}, {hi}", usage)
    return lo, opt, hi


def _parse_size(size: str | None) -> tuple[Size, Size, Size] | None:
    if size is None:
        return None
    text = str(size).strip()
    usage = "give --size as HEIGHTxWIDTH (256x256) or MIN:OPT:MAX sizes (256x256:512x512:1088x1920)"
    sizes = [_parse_hw(part, text, usage) for part in text.split(":")]
    if len(sizes) == 1:
        sizes = sizes * 3
    if len(sizes) != 3:
        raise InputError(f"--size {text!r} has {len(sizes)} sizes; expected 1 or 3", usage)
    lo, opt, hi = sizes
    for axis, name in ((0, "height"), (1, "width")):
        if not lo[axis] <= opt[axis] <= hi[axis]:
            raise InputError(
                f"--size {text!r}: {name}s must grow MIN <= OPT <= MAX, "
                f"got {lo[axis]}, {opt[axis]}, {hi[axis]}",
                usage,
            )
    return lo, opt, hi


def _parse_hw(part: str, text: str, usage: str) -> Size:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise InputError(f"--size {text!r}: {part!r} is not HEIGHTxWIDTH with positive numbers", usage)
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class TensorRange:
    """Min / opt / max shape of one input tensor in an optimization profile."""

    name: str
    min: Shape
    opt: Shape
    max: Shape

    def contains(self, shape: Sequence[int]) -> bool:
        """Whether ``shape`` lies inside the range on every axis."""
        shape = tuple(int(s) for s in shape)
        if len(shape) != len(self.min):
            return False
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def describe(self) -> str:
        """Human text such as ``batch 1..16 (opt 4), 3 ch, 64x64..256x256 (opt 256x256)``."""
        if len(self.min) != 4:
            return f"{list(self.min)}..{list(self.max)} (opt {list(self.opt)})"
        (b0, c, h0, w0), (b1, _, h1, w1), (b2, _, h2, w2) = self.min, self.opt, self.max
        return f"batch {b0}..{b2} (opt {b1}), {c} ch, {h0}x{w0}..{h2}x{w2} (opt {h1}x{w1})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorRange:
        return cls(
            str(data["name"]),
            tuple(int(v) for v in data["min"]),
            tuple(int(v) for v in data["opt"]),
            tuple(int(v) for v in data["max"]),
        )


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile: a shape range for every dynamic input."""

    tensors: tuple[TensorRange, ...]

    def tensor(self, name: str | None = None) -> TensorRange:
        """The range of input ``name`` (default: the only input)."""
        if name is None and len(self.tensors) == 1:
            return self.tensors[0]
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise BackendError(
            f"optimization profile has no input {name!r}; it covers {[t.name for t in self.tensors]}"
        )

    def describe(self) -> str:
        return "; ".join(f"{t.name}: {t.describe()}" for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {"tensors": [t.to_dict() for t in self.tensors]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        return cls(tuple(TensorRange.from_dict(t) for t in data["tensors"]))


def derive_profiles(
    contract: ColorContract,
    ranges: ShapeRanges,
    input_shape: Sequence[int | str | None] | None = None,
) -> list[Profile]:
    """Optimization profile(s) for ``contract``'s input from the requested ranges.

    Sizes are rounded up to the contract's ``multiple``; a ``fixed`` contract always renders at
    ``render_size`` x ``render_size`` and rejects other sizes. ``input_shape`` is the model's
    declared input shape (ints for fixed axes, anything else for dynamic ones): fixed axes must
    agree with the ranges. Channels come from ``contract.input_channels``.
    """
    fixed = _static_axes(input_shape)
    if 1 in fixed and fixed[1] != contract.input_channels:
        raise ContractError(
            f"the model's input has {fixed[1]} channels but contract '{contract.name}' "
            f"({contract.input_space}) feeds {contract.input_channels}",
            "pass the --contract that matches this model",
        )
    batch = _batch_range(ranges.batch, fixed.get(0))
    sizes = _size_range(contract, ranges.size, (fixed.get(2), fixed.get(3)))
    channels = contract.input_channels
    shapes = [(b, channels, h, w) for b, (h, w) in zip(batch, sizes, strict=True)]
    return [Profile((TensorRange(contract.input_name, *shapes),))]


def _static_axes(input_shape: Sequence[int | str | None] | None) -> dict[int, int]:
    if input_shape is None:
        return {}
    if len(input_shape) != 4:
        raise ContractError(f"the model's input has shape {list(input_shape)}; colorrt expects NCHW (4 dims)")
    return {axis: int(d) for axis, d in enumerate(input_shape) if isinstance(d, int) and d > 0}


def _batch_range(requested: tuple[int, int, int] | None, fixed: int | None) -> tuple[int, int, int]:
    if requested is None:
        return (fixed, fixed, fixed) if fixed else DEFAULT_BATCH
    if fixed is not None and requested != (fixed, fixed, fixed):
        raise ContractError(
            f"the model's input has a fixed batch of {fixed}, but the batch range asks for "
            f"{requested[0]}:{requested[1]}:{requested[2]}",
            f"build with --batch {fixed}:{fixed}:{fixed} (or leave --batch out), "
            "or re-export the model with a dynamic batch",
        )
    return requested


def _size_range(
    contract: ColorContract, requested: tuple[Size, Size, Size] | None, fixed: tuple[int | None, int | None]
) -> tuple[Size, Size, Size]:
    if contract.size_rule == "fixed":
        side = contract.render_size
        wanted = ((side, side),) * 3
        if requested is not None and requested != wanted:
            raise ContractError(
                f"contract '{contract.name}' renders at a fixed {side}x{side}, but the size range asks for "
                f"{_sizes_text(requested)}",
                f"leave --size out (the engine is built for {side}x{side}) or pass --size {side}x{side}",
            )
        sizes = wanted
    elif requested is None:
        # a model that fixes one axis keeps it; the other axis gets the contract's default range
        sizes = tuple((fixed[0] or h, fixed[1] or w) for h, w in default_size_range(contract))  # type: ignore[assignment]
    else:
        m = contract.multiple
        sizes = tuple((_round_up(h, m), _round_up(w, m)) for h, w in requested)  # type: ignore[assignment]
    _check_fixed_size(sizes, fixed)
    return sizes


def _check_fixed_size(sizes: tuple[Size, Size, Size], fixed: tuple[int | None, int | None]) -> None:
    for axis, name in ((0, "height"), (1, "width")):
        want = fixed[axis]
        if want is not None and any(s[axis] != want for s in sizes):
            raise ContractError(
                f"the model's input has a fixed {name} of {want}, but the engine would be built for sizes "
                f"{_sizes_text(sizes)}",
                "leave --size out, re-export the model with dynamic height and width, "
                "or use the --contract that matches the model",
            )


def default_size_range(contract: ColorContract) -> tuple[Size, Size, Size]:
    """Size range of a "multiple" contract when ``--size`` is not given.

    The runtime renders with the longest side at ``render_size`` (rounded to the multiple), so the
    maximum is that square; the minimum side is a quarter of it (images wider than 4:1 need
    ``--size``); the engine is tuned for the full square.
    """
    m = contract.multiple
    top = _round_up(contract.render_size, m)
    low = _round_up(max(m, contract.render_size // 4), m)
    return (low, low), (top, top), (top, top)


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-int(value) // multiple) * multiple)


def _sizes_text(sizes: tuple[Size, Size, Size]) -> str:
    return ":".join(f"{h}x{w}" for h, w in sizes)


def check_shape_in_profile(shape: Sequence[int], profile: Profile, name: str | None = None) -> None:
    """Raise InputError saying which axis of ``shape`` falls outside ``profile`` (and how to fix it)."""
    rng = profile.tensor(name)
    shape = tuple(int(s) for s in shape)
    if rng.contains(shape):
        return
    if len(shape) != len(rng.min):
        raise InputError(
            f"TensorRT engine input {rng.name!r} expects {len(rng.min)} dims (NCHW), got shape {shape}"
        )
    if len(shape) == 4 and shape[1] != rng.min[1]:
        raise InputError(f"TensorRT engine input {rng.name!r} has {rng.min[1]} channels, got shape {shape}")
    problems = []
    if len(shape) == 4 and not rng.min[0] <= shape[0] <= rng.max[0]:
        problems.append(f"batch {shape[0]} is outside {rng.min[0]}..{rng.max[0]}")
    if len(shape) == 4 and not all(rng.min[a] <= shape[a] <= rng.max[a] for a in (2, 3)):
        problems.append(
            f"size {shape[2]}x{shape[3]} is outside {rng.min[2]}x{rng.min[3]}..{rng.max[2]}x{rng.max[3]}"
        )
    raise InputError(
        f"shape {shape} is outside the engine's optimization profile "
        f"({'; '.join(problems) or rng.describe()})",
        "split the batch or resize to the render size, or rebuild with a wider "
        "colorrt build --batch MIN:OPT:MAX / --size MIN:OPT:MAX",
    )


def select_profile(shape: Sequence[int], profiles: Sequence[Profile], name: str | None = None) -> int:
    """Index of the first profile that covers ``shape``; InputError explaining the mismatch otherwise."""
    for index, profile in enumerate(profiles):
        if profile.tensor(name).contains(shape):
            return index
    if not profiles:
        raise BackendError("the engine has no optimization profile")
    check_shape_in_profile(shape, profiles[0], name)
    raise AssertionError("unreachable: check_shape_in_profile raises for a shape outside the profile")


# ---------------------------------------------------------------------------------------------
# Cache key
# ---------------------------------------------------------------------------------------------


def strongly_typed_flag_needed(trt_version: str) -> bool:
    """Whether ``create_network`` must be given ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``.

    TensorRT 10.x needs it (without it the ONNX FP16 casts and Q/DQ nodes are only hints); 11.x
    builds every network strongly typed and deprecates the flag (ignored), so it is left out there.
    An unreadable version string keeps the flag (harmless where it is ignored).
    """
    match = re.match(r"\s*(\d+)(?:\.|$)", str(trt_version))
    return match is None or int(match.group(1)) < 11


def workspace_bytes(workspace_gb: float) -> int:
    """Workspace limit in bytes from GiB (rounded to whole bytes)."""
    if not math.isfinite(workspace_gb) or workspace_gb <= 0:
        raise InputError(f"--workspace must be a positive number of GiB, got {workspace_gb}")
    return int(round(workspace_gb * _GIB))


def cache_key(
    onnx_sha256: str,
    precision: str,
    profiles: Sequence[Profile],
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    opt_level: int,
    workspace_gb: float,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Stable hex digest of everything that changes the built engine.

    Building the same ONNX with the same settings on the same GPU and TensorRT version gives the
    same key; changing any of them gives another key, so the cache rebuilds instead of handing back
    a mismatched engine. ``extra`` carries further inputs (colorrt version, calibration-set hash).
    """
    payload = {
        "v": CACHE_KEY_VERSION,
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "profiles": [p.to_dict() for p in profiles],
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "compute_capability": str(compute_capability),
        "opt_level": int(opt_level),
        "workspace_bytes": workspace_bytes(workspace_gb),
        "extra": dict(sorted((extra or {}).items())),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Precision check on the engine inspector's JSON
# ---------------------------------------------------------------------------------------------

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

    from colorrt.calibration.model import FACTS_KEY, metadata

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


# ---------------------------------------------------------------------------------------------
# Build facts stored beside the plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineFacts:
    """The contract and build facts of a TensorRT plan, stored as ``<plan>.json`` beside it."""

    contract: ColorContract
    precision: str  # what the heavy layers run in: fp32 / fp16 / int8
    profiles: tuple[Profile, ...]
    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"
    onnx_sha256: str
    build_options: dict[str, Any] = field(default_factory=dict)
    requested_precision: str = ""  # as asked: fp32 / fp16 / int8 / best
    precision_counts: dict[str, int] = field(default_factory=dict)  # heavy layers per precision
    precision_verified: bool = False
    plan_sha256: str = ""
    plan_size: int = 0  # bytes
    cache_key: str = ""
    colorrt_version: str = ""
    created: str = ""  # ISO 8601 UTC

    def replace(self, **changes: Any) -> EngineFacts:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["contract"] = self.contract.to_dict()
        data["profiles"] = [p.to_dict() for p in self.profiles]
        data["build_options"] = dict(self.build_options)
        data["precision_counts"] = dict(self.precision_counts)
        data["facts_version"] = FACTS_VERSION
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineFacts:
        data = dict(data)
        version = data.pop("facts_version", FACTS_VERSION)
        if not isinstance(version, int) or version > FACTS_VERSION:
            raise ModelError(
                f"engine facts format version {version} is newer than this colorrt "
                f"understands ({FACTS_VERSION})",
                "upgrade colorrt, or rebuild the engine with colorrt build",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            close = {u: difflib.get_close_matches(u, known, n=1) for u in unknown}
            raise ModelError(f"engine facts have unknown fields {unknown} (close: {close})")
        try:
            data["contract"] = ColorContract.from_dict(data["contract"])
            data["profiles"] = tuple(Profile.from_dict(p) for p in data["profiles"])
            return cls(**data)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"engine facts are incomplete or malformed: {e!r}") from e

    @classmethod
    def from_json(cls, text: str) -> EngineFacts:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelError(f"engine facts are not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ModelError("engine facts must be a JSON object")
        return cls.from_dict(data)


def sidecar_path(plan_path: str | os.PathLike[str]) -> Path:
    """Where the facts of ``M.plan`` live: ``M.plan.json``."""
    plan_path = Path(plan_path)
    return plan_path.with_name(plan_path.name + ".json")


def write_facts(plan_path: str | os.PathLike[str], facts: EngineFacts) -> Path:
    """Write the sidecar of ``plan_path`` atomically; returns its path."""
    path = sidecar_path(plan_path)
    atomic_write_bytes(path, facts.to_json().encode("utf-8"))
    return path


def read_facts(plan_path: str | os.PathLike[str]) -> EngineFacts:
    """The facts stored beside ``plan_path``, or ModelError saying what is missing or wrong."""
    path = sidecar_path(plan_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(
            f"{plan_path} has no facts file {path.name} (its colour contract and build settings)",
            "rebuild the engine with colorrt build, or pass contract= / --contract to run it anyway",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read the engine facts {path}: {e}") from e
    try:
        return EngineFacts.from_json(text)
    except ModelError as e:
        raise ModelError(f"{path}: {e.what}", e.hint or "rebuild the engine with colorrt build") from e


def compatibility_problems(
    facts: EngineFacts, *, trt_version: str, gpu_name: str, compute_capability: str
) -> list[str]:
    """Why a plan built as ``facts`` says cannot run here (empty when it can)."""
    problems = []
    if facts.trt_version != trt_version:
        problems.append(f"built with TensorRT {facts.trt_version}, this is TensorRT {trt_version}")
    if str(facts.compute_capability) != str(compute_capability):
        problems.append(
            f"built for compute capability {facts.compute_capability} ({facts.gpu_name}), "
            f"this GPU is {compute_capability} ({gpu_name})"
        )
    elif facts.gpu_name != gpu_name:
        problems.append(f"built on a {facts.gpu_name}, this GPU is a {gpu_name}")
    return problems


def check_compatible(
    facts: EngineFacts,
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    path: str | os.PathLike[str] = "the engine",
) -> None:
    """Raise BackendError when the plan was built for another TensorRT version or GPU."""
    problems = compatibility_problems(
        facts, trt_version=trt_version, gpu_name=gpu_name, compute_capability=compute_capability
    )
    if problems:
        raise BackendError(
            f"{path} cannot run here: {'; '.join(problems)}",
            "TensorRT engines are tied to one TensorRT version and GPU model: rebuild it here with "
            "colorrt build (the ONNX model is portable)",
        )


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``,
    so readers see either the old file or the complete new one, never a partial write."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_folder(folder: str | os.PathLike[str]) -> str:
    """Hex SHA-256 over the relative names and bytes of every file under ``folder`` (sorted)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Buffer plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorBuffer:
    """One engine I/O tensor at a given shape."""

    name: str
    shape: Shape
    dtype: str  # NumPy dtype name
    is_input: bool

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class BufferPlan:
    """Byte sizes of an engine's input and output buffers for one set of shapes."""

    tensors: tuple[TensorBuffer, ...]

    @classmethod
    def build(
        cls, shapes: Mapping[str, Sequence[int]], dtypes: Mapping[str, Any], inputs: Iterable[str]
    ) -> BufferPlan:
        """Plan from tensor shapes, dtypes (anything ``numpy.dtype`` accepts) and the input names."""
        inputs = set(inputs)
        tensors = []
        for name, shape in shapes.items():
            shape = tuple(int(s) for s in shape)
            if any(s < 0 for s in shape):
                raise BackendError(f"tensor {name!r} has an unresolved dynamic shape {list(shape)}")
            tensors.append(TensorBuffer(name, shape, np.dtype(dtypes[name]).name, name in inputs))
        return cls(tuple(tensors))

    def get(self, name: str) -> TensorBuffer:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise BackendError(f"buffer plan has no tensor {name!r}; it has {[t.name for t in self.tensors]}")

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def fits_within(self, capacity: BufferPlan) -> bool:
        """Whether every tensor of this plan fits in the same-named buffer of ``capacity``."""
        sizes = {t.name: t.nbytes for t in capacity.tensors}
        return all(t.name in sizes and t.nbytes <= sizes[t.name] for t in self.tensors)
