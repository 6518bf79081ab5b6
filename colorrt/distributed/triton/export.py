"""Triton repository export: one model folder (``config.pbtxt`` + ``1/model.onnx|plan``) written in a
staging folder and renamed into place."""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colorrt._version import __version__
from colorrt.atomic import replace_folder
from colorrt.contract import PRESETS, ColorContract, chosen_contract
from colorrt.distributed.triton.config import CONTRACT_PARAMETER, TritonModelConfig, TritonTensor
from colorrt.errors import ContractError, InputError, ModelError

PLATFORMS = {
    ".onnx": "onnxruntime_onnx",
    ".plan": "tensorrt_plan",
    ".engine": "tensorrt_plan",
    ".trt": "tensorrt_plan",
}
MODEL_FILES = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan"}
KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}
DEFAULT_MAX_BATCH = 16  # images per request batch for models with a dynamic batch axis
# ONNX element types / colorrt precisions -> Triton data types
_DATA_TYPES = {
    "float": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "double": "TYPE_FP64",
    "fp32": "TYPE_FP32",
    "fp16": "TYPE_FP16",
}
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TritonExport:
    """A model written into a Triton repository."""

    path: Path  # REPO/<name>
    config: TritonModelConfig
    model_file: Path  # REPO/<name>/1/model.onnx|plan
    notes: tuple[str, ...] = ()  # assumptions the export had to make


def export_triton(
    model: str | os.PathLike[str],
    repo: str | os.PathLike[str],
    *,
    name: str | None = None,
    max_batch: int | None = None,
    instances: int = 2,
    kind: str = "gpu",
    contract: ColorContract | str | None = None,
    io_dtype: str | None = None,
    force: bool = False,
) -> TritonExport:
    """Write ``model`` (``.onnx`` or a TensorRT ``.plan``) into the Triton model repository ``repo``.

    Args:
        model: the model file; a plan needs its ``.plan.json`` facts (written by ``colorrt build``).
        repo: the repository folder (created when missing).
        name: model name in the repository (default: the file's stem).
        max_batch: largest batch Triton forms (default 16; a plan's profile maximum); dynamic
            batching prefers max/4, max/2 and max.
        instances: model instances (execution copies) per device.
        kind: ``"gpu"`` or ``"cpu"`` instances (TensorRT plans run on GPUs only).
        contract: contract or preset name for a model that stores none (or to override it).
        io_dtype: ``"fp32"``/``"fp16"`` I/O of a plan (default: read with TensorRT, else fp32).
        force: replace a model of that name already in the repository.

    The model folder is written in a staging folder and renamed into place, so a polling server
    never sees half of it.
    """
    source = Path(model)
    platform = _platform(source)
    if kind not in KINDS:
        raise InputError(f"instance kind must be one of {sorted(KINDS)}, got {kind!r}")
    if platform == "tensorrt_plan" and kind != "gpu":
        raise InputError("a TensorRT plan runs on GPU instances only", "drop --kind cpu, or export the .onnx")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise InputError(f"instances must be an integer >= 1, got {instances!r}")
    name = _model_name(name if name is not None else source.stem)
    if platform == "onnxruntime_onnx":
        layout, notes = _onnx_layout(source, contract, max_batch)
    else:
        layout, notes = _plan_layout(source, contract, max_batch, io_dtype)
    config = _config(name, platform, layout, instances, KINDS[kind], source)
    path = _write_repository_entry(Path(repo), name, source, config, force)
    return TritonExport(path, config, path / "1" / MODEL_FILES[platform], tuple(notes))


@dataclass(frozen=True)
class _Layout:
    contract: ColorContract
    max_batch_size: int
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]


def _platform(source: Path) -> str:
    if not source.is_file():
        raise InputError(f"no such model file: {source}", "pass an .onnx model or a TensorRT .plan")
    platform = PLATFORMS.get(source.suffix.lower())
    if platform is None:
        raise ModelError(
            f"Triton export takes .onnx models and TensorRT engines ({', '.join(sorted(PLATFORMS))}); "
            f"got {source}",
            "export the checkpoint to ONNX first with colorrt export",
        )
    return platform


def _model_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name.startswith("."):
        raise InputError(
            f"Triton model name {name!r} has characters that do not fit a folder and a URL",
            "use letters, digits, '_', '-' and '.', e.g. --name colorizer",
        )
    return name


def _onnx_layout(
    source: Path, override: ColorContract | str | None, max_batch: int | None
) -> tuple[_Layout, list[str]]:
    from colorrt.engines.onnxruntime import describe_onnx

    description = describe_onnx(source)
    contract = _contract(override, description.contract, description.contract_problem, source)
    contract, tensor_in = _match_tensor(contract, "input", description.inputs, source)
    contract, tensor_out = _match_tensor(contract, "output", description.outputs, source)
    for tensor, channels, role in (
        (tensor_in, contract.input_channels, "input"),
        (tensor_out, contract.output_channels, "output"),
    ):
        _check_shape(tensor.shape, channels, role, tensor.name, source)
    batch = tensor_in.shape[0]
    static_batch = batch if isinstance(batch, int) and batch > 0 else None
    if static_batch is not None and max_batch is not None:
        raise InputError(
            f"{source} has a fixed batch size of {static_batch}: Triton cannot batch its requests",
            "drop --max-batch, or re-export the model with a dynamic batch axis",
        )
    max_batch_size = 0 if static_batch is not None else _max_batch(max_batch, None, source)
    fixed = contract.size_rule == "fixed"
    in_dims = [_dim(d) for d in tensor_in.shape]
    in_dims[1] = contract.input_channels
    if fixed:  # the contract pins the render size even where the graph leaves it open
        if any(d not in (-1, contract.render_size) for d in in_dims[2:]):
            raise ContractError(
                f"{source}: input {tensor_in.name!r} is {in_dims[2]}x{in_dims[3]} but contract "
                f"'{contract.name}' renders at {contract.render_size}x{contract.render_size}",
                "pass the --contract that matches this model",
            )
        in_dims[2:] = [contract.render_size] * 2
    out_dims = [_dim(d) for d in tensor_out.shape]
    out_dims[1] = contract.output_channels
    skip = 0 if max_batch_size == 0 else 1
    inputs = (TritonTensor(tensor_in.name, _data_type(tensor_in.dtype, source), tuple(in_dims[skip:])),)
    outputs = (TritonTensor(tensor_out.name, _data_type(tensor_out.dtype, source), tuple(out_dims[skip:])),)
    notes = [] if static_batch is None else [f"fixed batch {static_batch}: no dynamic batching"]
    return _Layout(contract, max_batch_size, inputs, outputs), notes


def _plan_layout(
    source: Path, override: ColorContract | str | None, max_batch: int | None, io_dtype: str | None
) -> tuple[_Layout, list[str]]:
    from colorrt.engines.tensorrt.facts import read_facts

    facts = read_facts(source)
    contract = _contract(override, facts.contract, None, source)
    if not facts.profiles:
        raise ModelError(f"{source}: its facts list no optimization profile", "rebuild it with colorrt build")
    tensor = facts.profiles[0].tensor(contract.input_name)
    low, high = tensor.min, tensor.max
    if low[0] > 1:
        raise ModelError(
            f"{source}: its profile starts at batch {low[0]}; Triton needs engines that take batch 1",
            "rebuild with --batch 1:OPT:MAX",
        )
    max_batch_size = _max_batch(max_batch, high[0], source)
    dims = tuple(lo if lo == hi else -1 for lo, hi in zip(low[1:], high[1:], strict=True))
    notes = []
    if io_dtype is None:
        io_dtype, note = _plan_io_dtype(source)
        if note:
            notes.append(note)
    data_type = _data_type(io_dtype, source)
    inputs = (TritonTensor(contract.input_name, data_type, dims),)
    # the output's size is the network's business (ECCV16 returns a quarter of its input): left open
    outputs = (TritonTensor(contract.output_name, data_type, (contract.output_channels, -1, -1)),)
    notes.append(
        f"TensorRT plan built with TensorRT {facts.trt_version} on {facts.gpu_name}: the Triton server "
        "must run the same TensorRT version on the same GPU model"
    )
    return _Layout(contract, max_batch_size, inputs, outputs), notes


def _plan_io_dtype(source: Path) -> tuple[str, str | None]:
    """The plan's input dtype, read with TensorRT when it is installed; else fp32 (with a note)."""
    try:
        import tensorrt  # noqa: F401
    except Exception:  # not installed, or no usable CUDA driver: fall back to the common case
        return (
            "fp32",
            "TensorRT is not installed here: assumed fp32 inputs/outputs (pass --io-dtype fp16 if not)",
        )
    from colorrt.engines.tensorrt import inspect_plan

    tensors = inspect_plan(source, layers=True)["io_tensors"]
    dtype = {"float32": "fp32", "float16": "fp16"}.get(tensors[0]["dtype"])
    if dtype is None:
        raise ModelError(f"{source}: input dtype {tensors[0]['dtype']} is not fp32 or fp16")
    return dtype, None


def _contract(
    override: ColorContract | str | None, stored: ColorContract | None, problem: str | None, source: Path
) -> ColorContract:
    return chosen_contract(
        override,
        stored,
        f"{source} carries no colour contract ({problem or 'none stored'}); Triton's config needs one",
        f"pass --contract NAME with one of: {', '.join(sorted(PRESETS))}",
    )


def _match_tensor(
    contract: ColorContract, role: str, tensors: list[Any], source: Path
) -> tuple[ColorContract, Any]:
    """The graph tensor the contract names; a single tensor of another name is taken (presets use
    generic names)."""
    wanted = getattr(contract, f"{role}_name")
    for tensor in tensors:
        if tensor.name == wanted:
            return contract, tensor
    if len(tensors) == 1:
        return contract.replace(**{f"{role}_name": tensors[0].name}), tensors[0]
    raise ContractError(
        f"{source}: contract '{contract.name}' names {role} {wanted!r}; the model's {role}s are "
        f"{[t.name for t in tensors]}"
    )


def _check_shape(shape: tuple, channels: int, role: str, name: str, source: Path) -> None:
    if len(shape) != 4:
        raise ContractError(
            f"{source}: {role} {name!r} has shape {list(shape)}; colorrt expects NCHW (4 dims)"
        )
    found = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None
    if found is not None and found != channels:
        raise ContractError(
            f"{source}: {role} {name!r} has {found} channels; its contract expects {channels}",
            "pass the --contract that matches this model",
        )


def _dim(value: int | str | None) -> int:
    return value if isinstance(value, int) and value > 0 else -1


def _data_type(dtype: str, source: Path) -> str:
    data_type = _DATA_TYPES.get(dtype)
    if data_type is None:
        raise ModelError(f"{source}: tensor type {dtype} cannot be served; expected float32 or float16")
    return data_type


def _max_batch(requested: int | None, limit: int | None, source: Path) -> int:
    if requested is None:
        return limit if limit is not None else DEFAULT_MAX_BATCH
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise InputError(f"max batch must be an integer >= 1, got {requested!r}")
    if limit is not None and requested > limit:
        raise InputError(
            f"--max-batch {requested} is larger than the engine's profile maximum of {limit} ({source})",
            f"pass --max-batch {limit} or less, or rebuild the engine with a larger --batch range",
        )
    return requested


def _preferred(max_batch_size: int) -> tuple[int, ...]:
    return tuple(sorted({s for s in (max_batch_size // 4, max_batch_size // 2, max_batch_size) if s >= 2}))


def _config(
    name: str, platform: str, layout: _Layout, instances: int, kind: str, source: Path
) -> TritonModelConfig:
    return TritonModelConfig(
        name=name,
        platform=platform,
        max_batch_size=layout.max_batch_size,
        inputs=layout.inputs,
        outputs=layout.outputs,
        instance_count=instances,
        instance_kind=kind,
        preferred_batch_sizes=_preferred(layout.max_batch_size) or (max(1, layout.max_batch_size),),
        parameters={
            CONTRACT_PARAMETER: layout.contract.to_json(),
            "colorrt.version": __version__,
            "colorrt.source": source.name,
        },
    )


def _write_repository_entry(
    repo: Path, name: str, source: Path, config: TritonModelConfig, force: bool
) -> Path:
    """Stage REPO/<name> next to the repository, then rename it into place."""
    repo.mkdir(parents=True, exist_ok=True)
    target = repo / name
    if target.exists() and not force:
        raise InputError(f"{target} already exists", "pass --force (force=True) to replace it")
    staging = staging_parent(repo) / f".colorrt-triton-{name}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        version = staging / "1"
        version.mkdir()
        shutil.copy2(source, version / MODEL_FILES[config.platform])
        if config.platform == "onnxruntime_onnx":
            _copy_external_data(source, version)
        (staging / "config.pbtxt").write_text(config.to_pbtxt(), encoding="utf-8")
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def staging_parent(repo: Path) -> Path:
    """The repository's parent when it is writable and on the same file system (a polling server
    then never sees the staging folder), else the repository itself."""
    parent = repo.resolve().parent
    try:
        same_device = os.stat(parent).st_dev == os.stat(repo).st_dev
    except OSError:
        return repo
    return parent if same_device and os.access(parent, os.W_OK) else repo


def _copy_external_data(source: Path, version: Path) -> None:
    """Copy the files holding an ONNX model's external tensors (kept at their relative locations)."""
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if location is None:
            continue
        target = version / location
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(source.parent / location, target)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    raise ModelError(
                        f"{source} keeps tensor {tensor.name!r} in {location}, which is missing",
                        "keep the external data file beside the model",
                    ) from e
                raise
