"""ONNX Runtime engine: runs a colorization ONNX model on the CPU execution provider.

The contract comes from the model's metadata (written by ``colorrt export``) or from an explicit
override; the graph's input/output names, ranks and channel counts are checked against it when the
engine is created, so a mismatched model fails at load time with a clear message. The GPU engine
(CUDA execution provider with IOBinding) is :class:`~colorrt.engines.onnxruntime_cuda.OnnxRuntimeCudaEngine`;
:func:`~colorrt.engines.onnxruntime_cuda.onnxruntime_engine` picks one of the two from ``device``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import PRESETS, ColorContract, chosen_contract, read_from_onnx
from colorrt.engines.base import Engine
from colorrt.errors import BackendError, ContractError, ModelError
from colorrt.modelfile import PRECISION_KEY, metadata

# ONNX Runtime type strings → NumPy dtypes the engine feeds and returns.
ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (ints for static dims, strings or None for dynamic ones) and dtype of a graph tensor."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str

    def static_dim(self, axis: int) -> int | None:
        """The size of ``axis`` when it is fixed in the graph, else None."""
        dim = self.shape[axis] if axis < len(self.shape) else None
        return dim if isinstance(dim, int) and dim > 0 else None


class OnnxRuntimeEngine(Engine):
    """Colorization model on ONNX Runtime's CPU execution provider.

    Args:
        path: the ``.onnx`` file.
        contract: a :class:`ColorContract` or preset name overriding (or supplying) the model's contract.
        device: ``"cpu"`` or ``"auto"`` (both mean the CPU here; the CUDA execution provider is
            :class:`~colorrt.engines.onnxruntime_cuda.OnnxRuntimeCudaEngine`).
        threads: intra-op threads; default: the physical cores available to this process.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike[str],
        contract: ColorContract | str | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.device = _resolve_device(device)
        model = load_onnx(self.path)
        self.opset = default_opset(model)
        self.metadata = metadata(model)
        self.contract = resolve_contract(model, contract, self.path)
        self.threads = threads if threads is not None else physical_cores()
        self._session = _create_session(self.path, self.threads)
        self.contract, self.inputs, self.outputs, self.input_info, self.output_info = checked_tensors(
            self._session, self.contract, self.path
        )
        self.input_dtype = ORT_DTYPES[self.input_info.dtype]
        self._dtypes = {t.name: ORT_DTYPES.get(t.dtype, np.float32) for t in self.inputs}
        self.batch_size = self.input_info.static_dim(0)  # None: any batch size

    @property
    def precision(self) -> str:
        """What the model computes in: ``"fp32"``, ``"fp16"`` or ``"int8"`` as stamped by
        colorrt.calibration (whose FP16 and INT8 files keep float32 inputs), else the input dtype
        (``"fp32"``, ``"fp16"`` or ``"fp64"``)."""
        stored = self.metadata.get(PRECISION_KEY)
        return stored or {np.float32: "fp32", np.float16: "fp16", np.float64: "fp64"}[self.input_dtype]

    def _infer_impl(self, batch: Any) -> np.ndarray:
        items = batch.items() if isinstance(batch, Mapping) else [(self.contract.input_name, batch)]
        feed = {name: np.asarray(value, dtype=self._dtypes.get(name, np.float32)) for name, value in items}
        count = feed[self.contract.input_name].shape[0]
        if self.batch_size is None or count == self.batch_size:
            return self._run(feed)
        chunks = zip(*(_fixed_chunks(value, self.batch_size) for value in feed.values()), strict=True)
        return np.concatenate([self._run(dict(zip(feed, chunk, strict=True))) for chunk in chunks])[:count]

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        (out,) = self._session.run([self.contract.output_name], feed)
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        """Drop the ONNX Runtime session."""
        self._session = None
        super().close()


def load_onnx(path: Path) -> Any:
    """Parse an ONNX file (weights stay on disk) or raise ModelError naming the file."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.exists():
        raise ModelError(f"no such model file: {path}", "check the path to the .onnx file")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}", "pass the path of an .onnx file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as e:
        raise ModelError(
            f"{path} is not a readable ONNX model: {e}", "re-export it with colorrt export"
        ) from e
    if not model.graph.input or not model.graph.output:
        raise ModelError(
            f"{path} is not an ONNX model (its graph has no inputs or outputs)",
            "re-export it with colorrt export",
        )
    return model


@dataclass(frozen=True)
class OnnxDescription:
    """What ``colorrt info`` shows about an ONNX file (read without creating a session)."""

    path: Path
    contract: ColorContract | None
    contract_problem: str | None  # why there is no usable contract, when there is none
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int | None
    ir_version: int
    producer: str
    precision: str
    metadata: dict[str, str]
    size_bytes: int


def describe_onnx(path: str | os.PathLike[str]) -> OnnxDescription:
    """Contract, graph inputs/outputs, opset, weight precision and metadata of an ONNX file."""
    import onnx

    path = Path(path)
    model = load_onnx(path)
    contract, problem = None, None
    try:
        contract = read_from_onnx(model)
        if contract is None:
            problem = f"none stored; pass --contract NAME with one of: {', '.join(sorted(PRESETS))}"
    except ContractError as e:
        problem = f"stored contract is invalid: {e}"
    initializers = {t.name for t in model.graph.initializer}
    return OnnxDescription(
        path=path,
        contract=contract,
        contract_problem=problem,
        inputs=[_value_info(v) for v in model.graph.input if v.name not in initializers],
        outputs=[_value_info(v) for v in model.graph.output],
        opset=default_opset(model),
        ir_version=model.ir_version,
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p),
        precision=_weight_precision(model, onnx.TensorProto),
        metadata=metadata(model),
        size_bytes=path.stat().st_size,
    )


def _value_info(value: Any) -> TensorInfo:
    import onnx

    tensor_type = value.type.tensor_type
    shape = tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim
    )
    dtype = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()
    return TensorInfo(value.name, shape, dtype)


def _weight_precision(model: Any, tensor_proto: Any) -> str:
    """fp32 / fp16 / mixed from the float initializers, with int8 when Q/DQ nodes are present."""
    names = {tensor_proto.FLOAT: "fp32", tensor_proto.FLOAT16: "fp16", tensor_proto.DOUBLE: "fp64"}
    floats = sorted({names[t.data_type] for t in model.graph.initializer if t.data_type in names})
    text = floats[0] if len(floats) == 1 else ("mixed " + "/".join(floats) if floats else "no float weights")
    quantized = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    return f"int8 (Q/DQ), {text}" if quantized else text


def resolve_contract(model: Any, override: ColorContract | str | None, path: Path) -> ColorContract:
    """The override when given (a contract or preset name), else the model's stored contract."""
    return chosen_contract(
        override,
        read_from_onnx(model) if override is None else None,
        f"{path} carries no colour contract, so colorrt cannot tell how to feed it or read its output",
        f"pass --contract NAME (contract='NAME' in Python) with one of: {', '.join(sorted(PRESETS))}; "
        "or re-export the model with colorrt export, which stores the contract in the file",
    )


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-threads counted once)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = set()
    for cpu in allowed:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(allowed)
        cores.add((package, core))
    return max(1, len(cores) or os.cpu_count() or 1)


def _resolve_device(device: str) -> str:
    if device in ("cpu", "auto"):
        return "cpu"
    if device == "cuda":
        raise BackendError(
            "OnnxRuntimeEngine runs on the CPU; ONNX Runtime's CUDA path is OnnxRuntimeCudaEngine",
            "use device='cpu' here, or colorrt.load_engine(path, backend='onnxruntime', device='cuda')",
        )
    raise BackendError(f"unknown device {device!r} for onnxruntime; expected 'cpu', 'cuda' or 'auto'")


def _create_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # sequential execution: one op at a time, parallel inside ops
    # Idle pool threads sleep instead of spinning: the same model speed, 15% less CPU per frame,
    # which the decode / merge / encode threads of a video pipeline get back (+7% end to end).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = True
    options.enable_cpu_mem_arena = True
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own pybind11 exception types, all plain Exception subclasses
        raise ModelError(
            f"ONNX Runtime cannot load {path}: {e}", "check the file with `colorrt info` or re-export it"
        ) from e


def checked_tensors(
    session: Any, contract: ColorContract, path: Path
) -> tuple[ColorContract, list[TensorInfo], list[TensorInfo], TensorInfo, TensorInfo]:
    """A session's graph tensors checked against ``contract``: ``(contract, inputs, outputs, input,
    output)``, the contract taking the graph's tensor names where it must (see ``_fit_contract``)."""
    inputs = [_tensor_info(t) for t in session.get_inputs()]
    outputs = [_tensor_info(t) for t in session.get_outputs()]
    contract = _fit_contract(contract, inputs, outputs, path)
    tensor_in = next(t for t in inputs if t.name == contract.input_name)
    tensor_out = next(t for t in outputs if t.name == contract.output_name)
    return contract, inputs, outputs, tensor_in, tensor_out


def _tensor_info(arg: Any) -> TensorInfo:
    return TensorInfo(arg.name, tuple(arg.shape or ()), arg.type)


def default_opset(model: Any) -> int | None:
    """The model's ai.onnx opset version (None when it imports none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _fit_contract(
    contract: ColorContract, inputs: list[TensorInfo], outputs: list[TensorInfo], path: Path
) -> ColorContract:
    """Check the graph against the contract; a contract whose tensor names are absent takes the
    model's names when the model has exactly one input and one output (presets use generic names)."""
    contract = _match_name(contract, "input", inputs, path)
    contract = _match_name(contract, "output", outputs, path)
    tensor_in = next(t for t in inputs if t.name == contract.input_name)
    tensor_out = next(t for t in outputs if t.name == contract.output_name)
    missing = [e.name for e in contract.extra_inputs if e.name not in {t.name for t in inputs}]
    if missing:
        raise ContractError(
            f"{path}: contract '{contract.name}' feeds the extra inputs {missing}, which the model lacks "
            f"(its inputs: {[t.name for t in inputs]})",
            "pass the --contract that matches this model",
        )
    _check_tensor(tensor_in, contract.input_channels, "input", contract, path)
    _check_tensor(tensor_out, contract.output_channels, "output", contract, path)
    _check_render_size(tensor_in, contract, path)
    return contract


def _match_name(contract: ColorContract, role: str, tensors: list[TensorInfo], path: Path) -> ColorContract:
    wanted = getattr(contract, f"{role}_name")
    names = [t.name for t in tensors]
    if wanted in names:
        return contract
    if len(names) == 1:
        return contract.replace(**{f"{role}_name": names[0]})
    raise ContractError(
        f"{path}: contract '{contract.name}' names {role} tensor {wanted!r}; the model's {role}s are {names}",
        f"pass a contract whose {role}_name is one of {names}",
    )


def _check_tensor(tensor: TensorInfo, channels: int, role: str, contract: ColorContract, path: Path) -> None:
    if len(tensor.shape) != 4:
        raise ContractError(
            f"{path}: {role} {tensor.name!r} has shape {list(tensor.shape)}; colorrt expects "
            f"{contract.layout} (4 dims)"
        )
    if role == "input" and tensor.dtype not in ORT_DTYPES:
        raise ModelError(
            f"{path}: input {tensor.name!r} has type {tensor.dtype}; expected float, float16 or double"
        )
    found = tensor.static_dim(contract.channel_axis)
    if found is not None and found != channels:
        raise ContractError(
            f"{path}: {role} {tensor.name!r} has {found} channels but contract '{contract.name}' "
            f"({contract.input_space} -> {contract.output_kind}) expects {channels}",
            "pass the --contract that matches this model",
        )


def _check_render_size(tensor: TensorInfo, contract: ColorContract, path: Path) -> None:
    first = 1 if contract.layout == "NHWC" else 2
    height, width = tensor.static_dim(first), tensor.static_dim(first + 1)
    if height is None and width is None:
        return
    fits = contract.size_rule == "fixed" and (height, width) == (contract.render_size, contract.render_size)
    if not fits:
        raise ContractError(
            f"{path}: input {tensor.name!r} has a fixed size {height}x{width} but contract '{contract.name}' "
            f"renders at {_size_rule_text(contract)}",
            f"use a contract with size_rule='fixed' and render_size={height}",
        )


def _size_rule_text(contract: ColorContract) -> str:
    if contract.size_rule == "fixed":
        return f"{contract.render_size}x{contract.render_size}"
    return f"any multiple of {contract.multiple} (longest side ~{contract.render_size})"


def _fixed_chunks(batch: np.ndarray, size: int) -> list[np.ndarray]:
    """Split into chunks of exactly ``size``, padding the last with copies of its final item."""
    chunks = []
    for start in range(0, batch.shape[0], size):
        chunk = batch[start : start + size]
        if chunk.shape[0] < size:
            pad = np.repeat(chunk[-1:], size - chunk.shape[0], axis=0)
            chunk = np.concatenate([chunk, pad])
        chunks.append(chunk)
    return chunks
