"""torch -> ONNX export with the colour contract stored in the file and a parity check vs torch.

Steps, each a small function: build the model (checkpoint or seeded random weights), wrap it so
it maps exactly the contract's input to the contract's output, export (eval mode, opset >= 17,
dynamic batch, dynamic height/width where the architecture allows), ``onnx.checker``, contract and
build facts into ``metadata_props``, parity vs torch on ONNX Runtime CPU, atomic write.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import onnx

from colorrt._version import __version__
from colorrt.contract import ColorContract, write_to_onnx
from colorrt.errors import InputError, ModelError, require
from colorrt.export import feeds
from colorrt.modelfile import save as save_model
from colorrt.modelfile import set_metadata
from colorrt.models.registry import ArchSpec, build_model, get_arch

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Exporter = Literal["auto", "torchscript", "dynamo"]
MIN_OPSET = 17
DEFAULT_TOLERANCE = 1e-4  # max |onnxruntime - torch| in FP32, in model output units
ARCH_KEY = "colorrt.arch"
EXPORT_KEY = "colorrt.export"
Axis = int | str  # a fixed size or a symbolic dimension name


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote: the file, its contract and the parity measured against torch."""

    path: Path
    arch: str
    contract: ColorContract
    max_abs_error: float | None  # None when the parity check was skipped
    opset: int
    input_name: str
    output_name: str
    input_shape: tuple[Axis, ...]
    output_shape: tuple[Axis, ...]
    weights: str  # "sha256:<hex>" of the checkpoint, or "random-init"
    exporter: str

    def summary(self) -> str:
        """A few human-readable lines for the CLI."""
        error = "skipped" if self.max_abs_error is None else f"{self.max_abs_error:.3g}"
        c = self.contract
        return "\n".join(
            [
                f"wrote {self.path} ({self.arch}, opset {self.opset}, {self.exporter} exporter)",
                f"  contract: {c.name} ({c.input_space} -> {c.output_kind}, {c.size_rule} {c.render_size})",
                f"  input  {self.input_name}: {list(self.input_shape)}",
                f"  output {self.output_name}: {list(self.output_shape)}",
                f"  weights: {self.weights}",
                f"  parity vs torch (max abs error, FP32): {error}",
            ]
        )


def export(
    arch: str,
    weights: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    output: str | os.PathLike[str] = "model.onnx",
    *,
    random_init: bool = False,
    opset: int = MIN_OPSET,
    batch: int = 1,
    size: int | None = None,
    dynamic: bool = True,
    check: bool = True,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    exporter: Exporter = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export architecture ``arch`` to an ONNX file carrying its colour contract.

    Args:
        arch: a name from :data:`colorrt.models.ARCHITECTURES` (e.g. ``"cyclegan-resnet9"``).
        weights: checkpoint (``.pth`` path or state dict) to load strictly; or ``random_init=True``.
        output: ONNX file to write (atomically: nothing is left behind on failure).
        opset: ONNX opset, at least 17.
        batch: batch of the sample input used to trace and check (the batch axis is always dynamic).
        size: render size in pixels (square side of the sample, written to the contract); defaults to
            the architecture's render size; must be a multiple of the architecture's size multiple.
        dynamic: dynamic height/width where the architecture allows; False fixes them at ``size``.
        check: run the parity check (ONNX Runtime CPU vs torch on a seeded input) and raise
            ModelError when the max abs error exceeds ``tolerance``.
        seed: seed of the random weights (``random_init``) and of the parity input.
        options: overrides of the architecture's constructor arguments (e.g. ``{"norm": "batch"}``).
        exporter: ``"torchscript"`` (fast, deterministic), ``"dynamo"`` (torch.export) or ``"auto"``
            (torchscript where this torch still ships it).
        tolerance: parity bound (FP32, model output units).
    """
    require("torch", "export", "colorrt export")
    spec = get_arch(arch)
    _check_arguments(opset, batch, exporter, tolerance)
    path = _output_path(output)
    if size is not None:
        _check_size(spec, size)  # before the (possibly large) model is built
    model = build_model(arch, weights=weights, random_init=random_init, seed=seed, options=options)
    module = spec.export_module(model).train(not spec.eval_mode)
    contract, side = _export_contract(spec, model, size, dynamic)
    spatial_multiple = spec.size_multiple if (dynamic and spec.dynamic_size) else None
    samples = feeds.sample_inputs(contract, batch, side, seed)
    names = feeds.tensor_names(spec, contract)
    chosen = _pick_exporter(exporter)
    proto = _to_onnx(module, samples, contract, opset, spatial_multiple, chosen, names)
    _check_model(proto)
    weights_id = _weights_id(weights)
    write_to_onnx(proto, contract)
    facts = _export_facts(spec, weights_id, opset, chosen, seed if random_init else None, options)
    set_metadata(proto, {ARCH_KEY: arch, EXPORT_KEY: facts})
    error = _parity(proto, module, samples, contract, tolerance, arch, names) if check else None
    save_model(proto, path)  # the folder was checked before the export
    return _result(path, arch, contract, error, opset, proto, weights_id, chosen)


def _result(
    path: Path,
    arch: str,
    contract: ColorContract,
    error: float | None,
    opset: int,
    proto: onnx.ModelProto,
    weights_id: str,
    exporter: str,
) -> ExportResult:
    return ExportResult(
        path=path,
        arch=arch,
        contract=contract,
        max_abs_error=error,
        opset=opset,
        input_name=contract.input_name,
        output_name=contract.output_name,
        input_shape=_value_shape(proto.graph.input[0]),
        output_shape=_value_shape(proto.graph.output[0]),
        weights=weights_id,
        exporter=exporter,
    )


def _check_arguments(opset: int, batch: int, exporter: str, tolerance: float) -> None:
    if opset < MIN_OPSET:
        raise InputError(f"opset must be >= {MIN_OPSET}, got {opset}", f"use --opset {MIN_OPSET} or newer")
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise InputError(f"exporter must be 'auto', 'torchscript' or 'dynamo', got {exporter!r}")
    if not tolerance > 0:
        raise InputError(f"tolerance must be > 0, got {tolerance}")


def _output_path(output: str | os.PathLike[str]) -> Path:
    path = Path(output)
    if path.is_dir():
        raise InputError(f"output {path} is a folder", "give a file name such as model.onnx")
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist", "create it first or pick another -o")
    return path


def _export_contract(
    spec: ArchSpec, model: torch.nn.Module, size: int | None, dynamic: bool
) -> tuple[ColorContract, int]:
    """The contract written to the file and the square side of the sample input."""
    contract = spec.contract_for(model)
    side = contract.render_size if size is None else size
    _check_size(spec, side)
    contract = contract.replace(render_size=side)
    if not (dynamic and spec.dynamic_size) and contract.size_rule != "fixed":
        # Static height/width: the runtime must feed exactly side x side.
        contract = contract.replace(size_rule="fixed")
    return contract, side


def _check_size(spec: ArchSpec, side: int) -> None:
    if side < spec.size_multiple or side % spec.size_multiple:
        low = max(spec.size_multiple, side // spec.size_multiple * spec.size_multiple)
        rule = spec.size_note or f"multiples of {spec.size_multiple}"
        raise InputError(
            f"size {side} does not fit '{spec.name}': {rule}",
            f"use a multiple of {spec.size_multiple}, e.g. {low} or {low + spec.size_multiple}",
        )


def _pick_exporter(requested: Exporter) -> str:
    if requested != "auto":
        return requested
    # torch >= 2.9 keeps the TorchScript exporter here; older releases have it in torch.onnx.utils.
    for name in ("torch.onnx._internal.torchscript_exporter", "torch.onnx.utils"):
        if importlib.util.find_spec(name) is not None:
            return "torchscript"
    return "dynamo"


def _to_onnx(
    module: torch.nn.Module,
    sample: torch.Tensor | tuple[torch.Tensor, ...],
    contract: ColorContract,
    opset: int,
    spatial_multiple: int | None,
    exporter: str,
    names: tuple[list[str], list[str]] | None = None,
) -> onnx.ModelProto:
    """``sample``: the main input, or every input in the contract's order (``feeds.sample_inputs``)."""
    import torch

    samples = sample if isinstance(sample, tuple) else (sample,)
    inputs, outputs = names or ([contract.input_name], [contract.output_name])
    try:
        with torch.no_grad(), warnings.catch_warnings():
            _ignore_known_export_warnings()
            if exporter == "torchscript":
                expected = feeds.torch_outputs(module, samples)
                axes = feeds.torchscript_axes(contract, (inputs, outputs), expected, bool(spatial_multiple))
                buffer = io.BytesIO()
                torch.onnx.export(
                    module,
                    samples,
                    buffer,
                    **_legacy_flag(torch),
                    opset_version=opset,
                    dynamic_axes=axes,
                    do_constant_folding=True,
                    input_names=inputs,
                    output_names=outputs,
                )
                return onnx.load_from_string(buffer.getvalue())
            program = torch.onnx.export(
                module,
                samples,
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=feeds.dynamo_shapes(contract, len(samples), spatial_multiple),
                verbose=False,
                input_names=inputs,
                output_names=outputs,
            )
            return program.model_proto
    except Exception as e:  # the exporters raise many types; the cause is kept in the chain
        raise ModelError(
            f"torch.onnx.export ({exporter}) failed: {type(e).__name__}: {e}",
            "try another --opset, or --exporter dynamo/torchscript",
        ) from e


def _legacy_flag(torch: Any) -> dict[str, bool]:
    # torch < 2.5 has no ``dynamo`` argument (TorchScript is its only exporter); >= 2.9 defaults to dynamo.
    return {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def _ignore_known_export_warnings() -> None:
    # Expected with this zoo and harmless; real problems surface in the checker and parity check.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
    warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
    warnings.filterwarnings("ignore", message=r".*operator 'instance_norm' is set to train=True.*")
    warnings.filterwarnings("ignore", message=r".*Only steps=1 can be constant folded.*")
    # The tracer's generic "Converting a tensor to a Python boolean" from shape checks inside
    # InstanceNorm and interpolate; the dynamic-shape tests cover what it warns about.
    warnings.filterwarnings(
        "ignore",
        message=r".*Converting a tensor to a Python boolean.*",
        module=r"torch\.nn\.(modules|functional)",
    )


def _check_model(proto: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ModelError(f"the exported ONNX graph fails onnx.checker: {e}") from e


def _weights_id(weights: str | os.PathLike[str] | Mapping[str, Any] | None) -> str:
    if weights is None:
        return "random-init"
    if isinstance(weights, Mapping):
        return "state-dict (in memory)"
    from colorrt.digest import file_sha256

    if Path(weights).is_dir():  # an official release of several files (Comicolorization's model/)
        files = sorted(p for p in Path(weights).rglob("*") if p.is_file())
        return ";".join(f"{p.relative_to(weights)}:sha256:{file_sha256(p)}" for p in files)
    return f"sha256:{file_sha256(weights)}"


def _published(weights_id: str) -> str | None:
    """The published checkpoint these weights are (by SHA-256), described; None for any other."""
    from colorrt.models.known import identify

    known = identify(weights_id) if weights_id.startswith("sha256:") else None
    return known.describe() if known else None


def _export_facts(
    spec: ArchSpec,
    weights_id: str,
    opset: int,
    exporter: str,
    seed: int | None,
    options: Mapping[str, Any] | None,
) -> str:
    import torch

    facts: dict[str, Any] = {
        "colorrt": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": opset,
        "exporter": exporter,
        "arch": spec.name,
        "weights": weights_id,
        "published": _published(weights_id),
        "mode": "eval" if spec.eval_mode else "train",
        "mode_note": spec.mode_note,
        "licence": spec.licence or None,  # of the official weights (Iizuka et al.'s: non-commercial)
        "options": dict(options or {}),
    }
    if seed is not None:
        facts["seed"] = seed
    return json.dumps(facts, sort_keys=True, default=str)


def _parity(
    proto: onnx.ModelProto,
    module: torch.nn.Module,
    sample: torch.Tensor | tuple[torch.Tensor, ...],
    contract: ColorContract,
    tolerance: float,
    arch: str,
    names: tuple[list[str], list[str]] | None = None,
) -> float:
    """Max abs difference of ONNX Runtime (CPU, FP32) vs torch over every output; raises above tolerance."""
    samples = sample if isinstance(sample, tuple) else (sample,)
    names = names or ([contract.input_name], [contract.output_name])
    return feeds.parity(proto, samples, names, feeds.torch_outputs(module, samples), tolerance, arch)


def _value_shape(value: onnx.ValueInfoProto) -> tuple[Axis, ...]:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
