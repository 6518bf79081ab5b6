"""``colorrt info``: a model's contract, inputs, outputs, precision and metadata (ONNX or TensorRT plan)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorrt.cli.common import EXIT_OK
from colorrt.engines.registry import BACKENDS
from colorrt.errors import ModelError

if TYPE_CHECKING:
    from colorrt.contract import ColorContract
    from colorrt.engines.onnxruntime import OnnxDescription

PLAN_SUFFIXES = frozenset(BACKENDS["tensorrt"].suffixes)


def add_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "info",
        help="show a model's contract, inputs, outputs and precision",
        description="Describe a model file.",
    )
    sub.add_argument("model", type=Path, help="model file (.onnx) or TensorRT engine (.plan)")
    sub.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``colorrt info``: contract, inputs/outputs, opset, precision and metadata of a model."""
    from colorrt.engines.onnxruntime import describe_onnx

    suffix = args.model.suffix.lower()
    if suffix in PLAN_SUFFIXES:
        return _info_plan(args)
    if suffix != ".onnx":
        raise ModelError(
            f"colorrt info reads .onnx models and TensorRT engines ({', '.join(sorted(PLAN_SUFFIXES))}); "
            f"got {args.model}",
            "pass the model's .onnx file or its engine",
        )
    description = describe_onnx(args.model)
    print(_info_json(description) if args.json else _info_text(description))
    return EXIT_OK


def _info_text(d: OnnxDescription) -> str:
    lines = [
        f"model:      {d.path} ({_size_text(d.size_bytes)})",
        f"producer:   {d.producer or 'unknown'}",
        f"opset:      {d.opset} (IR version {d.ir_version})",
        f"precision:  weights {d.precision}; input {', '.join(t.dtype for t in d.inputs)}",
        "inputs:",
        *(f"  {t.name:<16} {t.dtype:<8} {_shape_text(t.shape)}" for t in d.inputs),
        "outputs:",
        *(f"  {t.name:<16} {t.dtype:<8} {_shape_text(t.shape)}" for t in d.outputs),
    ]
    if d.contract is None:
        lines.append(f"contract:   {d.contract_problem}")
    else:
        lines.append(
            f"contract:   {d.contract.name}"
            + (f" - {d.contract.description}" if d.contract.description else "")
        )
        lines += [f"  {key:<22} {value}" for key, value in _contract_fields(d.contract)]
    lines.append(f"weights:    {weights_text(d.metadata)}")
    others = {k: v for k, v in d.metadata.items() if k != "colorrt.contract"}
    if others:
        lines.append("metadata:")
        lines += [f"  {key}: {value}" for key, value in sorted(others.items())]
    return "\n".join(lines)


def _info_plan(args: argparse.Namespace) -> int:
    """Engine facts stored beside a TensorRT plan (readable without TensorRT)."""
    from colorrt.contract import ColorContract
    from colorrt.engines.tensorrt import inspect_plan

    info = inspect_plan(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    lines = [f"engine:     {info['path']} ({_size_text(info['size_bytes'])})"]
    facts = info.get("facts")
    if facts is None:
        lines.append(f"facts:      {info.get('facts_problem')}")
    else:
        contract = facts.pop("contract", None)
        lines += [f"  {key:<22} {value}" for key, value in facts.items()]
        if contract:
            lines.append(f"contract:   {contract['name']}")
            lines += [
                f"  {key:<22} {value}" for key, value in _contract_fields(ColorContract.from_dict(contract))
            ]
    print("\n".join(lines))
    return EXIT_OK


def _contract_fields(contract: ColorContract) -> list[tuple[str, str]]:
    """The contract's fields that matter for its input space, size rule and output kind."""
    fields = {"render size": render_size_text(contract), **contract.to_dict()}
    unused = {"name", "description", "contract_version", "size_rule", "render_size", "multiple"}
    if contract.input_space != "L_hints":
        unused |= {"hint_scale", "mask_offset"}
    if contract.output_kind == "ab_bins":
        unused |= {"output_scale", "output_offset"}
        fields["bin_centers"] = f"{len(contract.bin_centers or ())} ab bins"
    else:
        unused |= {"bin_centers", "annealing_temperature"}
    if not fields.get("extra"):
        unused.add("extra")
    if contract.input_space == "L_ab":
        unused.discard("hint_scale")
    fields["merge"] = _merge_text(contract)
    unused |= {"line_art", "line_threshold"}
    if contract.extra_inputs:
        fields["extra_inputs"] = "; ".join(_extra_text(e) for e in contract.extra_inputs)
    return [
        (key, f"{value:.6g}" if isinstance(value, float) else str(value))
        for key, value in fields.items()
        if key not in unused
    ]


def _merge_text(contract: ColorContract) -> str:
    """How the model's output becomes the picture, in words."""
    if contract.merge == "chroma":
        return "chroma (the picture's own L + the model's ab)"
    lines = {
        "none": "no line art",
        "threshold": f"line art: the picture's pixels darker than L {contract.line_threshold:g} kept",
        "multiply": "line art: the picture's grey multiplied over the colour",
    }[contract.line_art]
    return f"wholesale (the model's whole colour, upsampled); {lines}"


def _extra_text(extra: Any) -> str:
    """One extra input in words, e.g. ``global: the input resized to 224x224``."""
    what = {
        "global": f"the input resized to {extra.size}x{extra.size}",
        "palette": f"the reference's binary RGB palette ({extra.bins}^3 = {extra.bins**3} values)",
        "lines": f"Otsu line drawing at {extra.scale}x the render size",
    }[extra.kind]
    return f"{extra.name}: {what}"


def weights_text(metadata: dict[str, str]) -> str:
    """Where the weights came from: a published checkpoint (by SHA-256), other weights, or unknown."""
    from colorrt.models.known import identify

    try:
        weights = str(json.loads(metadata.get("colorrt.export", "{}")).get("weights") or "")
    except (ValueError, AttributeError):
        weights = ""
    if not weights:
        return "not recorded (exported by another tool)"
    known = identify(weights) if weights.startswith("sha256:") else None
    if known is None:
        return (
            f"{weights} (not a published checkpoint colorrt knows)"
            if weights.startswith("sha256:")
            else weights
        )
    return f"{known.describe()}, sha256 verified at export"


def render_size_text(contract: ColorContract) -> str:
    """The size rule in words: ``256x256 (fixed)`` or ``longest side 256, sides multiples of 16``."""
    if contract.size_rule == "fixed":
        return f"{contract.render_size}x{contract.render_size} (fixed)"
    return f"longest side {contract.render_size}, sides multiples of {contract.multiple}"


def _info_json(d: OnnxDescription) -> str:
    data = {
        "path": str(d.path),
        "size_bytes": d.size_bytes,
        "producer": d.producer,
        "opset": d.opset,
        "ir_version": d.ir_version,
        "precision": d.precision,
        "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in d.inputs],
        "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in d.outputs],
        "contract": d.contract.to_dict() if d.contract else None,
        "contract_problem": d.contract_problem,
        "metadata": {k: v for k, v in d.metadata.items() if k != "colorrt.contract"},
    }
    return json.dumps(data, indent=2)


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
