"""Triton model configuration: ``config.pbtxt`` written from a :class:`TritonModelConfig`, and read
back against Triton's own schema (tritonclient's ``model_config_pb2``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorrt.contract import METADATA_KEY
from colorrt.errors import BackendError, InputError, require

EXTRA = "scale"
MAX_QUEUE_DELAY_US = 100  # microseconds Triton waits to fill a preferred batch
CONTRACT_PARAMETER = METADATA_KEY  # "colorrt.contract", as in the ONNX metadata


@dataclass(frozen=True)
class TritonTensor:
    """One model input or output as Triton sees it (``dims`` without the batch axis when batching)."""

    name: str
    data_type: str  # TYPE_FP32, TYPE_FP16, ...
    dims: tuple[int, ...]  # -1: any size


@dataclass(frozen=True)
class TritonModelConfig:
    """What ``config.pbtxt`` says (a subset of Triton's ``inference.ModelConfig``)."""

    name: str
    platform: str
    max_batch_size: int  # 0: the model has a fixed batch axis, given in dims
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    instance_count: int
    instance_kind: str  # KIND_GPU / KIND_CPU
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = MAX_QUEUE_DELAY_US
    parameters: dict[str, str] = field(default_factory=dict)

    def to_pbtxt(self) -> str:
        """The config in protobuf text format, as Triton reads it."""
        lines = [
            f"name: {pbtxt_string(self.name)}",
            f"platform: {pbtxt_string(self.platform)}",
            f"max_batch_size: {self.max_batch_size}",
            *_tensors("input", self.inputs),
            *_tensors("output", self.outputs),
        ]
        if self.max_batch_size > 0:
            lines += [
                "dynamic_batching {",
                f"  preferred_batch_size: [ {', '.join(str(s) for s in self.preferred_batch_sizes)} ]",
                f"  max_queue_delay_microseconds: {self.max_queue_delay_us}",
                "}",
            ]
        lines += ["instance_group [", f"  {{ count: {self.instance_count} kind: {self.instance_kind} }}", "]"]
        for key, value in self.parameters.items():
            key, value = pbtxt_string(key), pbtxt_string(value)
            lines.append(f"parameters {{ key: {key} value: {{ string_value: {value} }} }}")
        return "\n".join(lines) + "\n"


def _tensors(kind: str, tensors: tuple[TritonTensor, ...]) -> list[str]:
    lines = [f"{kind} ["]
    for i, t in enumerate(tensors):
        dims = ", ".join(str(d) for d in t.dims)
        comma = "," if i < len(tensors) - 1 else ""
        lines.append(f"  {{ name: {pbtxt_string(t.name)} data_type: {t.data_type} dims: [ {dims} ] }}{comma}")
    return [*lines, "]"]


def pbtxt_string(text: str) -> str:
    """A protobuf text-format string literal (C escapes; UTF-8 kept as it is)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def model_config_schema() -> Any:
    """Triton's ``inference.ModelConfig`` protobuf class, as shipped in tritonclient.

    ``tritonclient.grpc`` refuses to import without its ``grpc`` extra (grpcio, protobuf < 7), yet
    the generated ``model_config_pb2`` it holds needs only protobuf: it is loaded from its file then.
    """
    try:
        from tritonclient.grpc import model_config_pb2

        return model_config_pb2.ModelConfig
    except (ImportError, RuntimeError):
        pass
    tritonclient = require("tritonclient", EXTRA, "reading Triton model configs")
    import importlib.util
    import sys

    module_name = "colorrt_triton_model_config_pb2"
    if module_name not in sys.modules:
        path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
        if not path.is_file():
            raise BackendError(
                f"this tritonclient has no model_config_pb2.py ({path})", "upgrade tritonclient"
            )
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[module_name] = module
    return sys.modules[module_name].ModelConfig


def parse_config(text: str) -> Any:
    """A ``config.pbtxt`` parsed against Triton's schema; InputError saying where it is wrong."""
    from google.protobuf import text_format

    message = model_config_schema()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise InputError(f"not a valid Triton model config: {e}") from e
    return message
