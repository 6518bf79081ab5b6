"""A multi-input, multi-output ONNX model on ONNX Runtime: named arrays in, arrays out.

The colorization :class:`~colorrt.engines.base.Engine` runs one NCHW tensor to one NCHW tensor;
pipelines of several networks (the instance-aware bundle: detector, instance and fusion networks)
feed several named tensors and read several outputs, which this small runner does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.engines.onnxruntime import TensorInfo, physical_cores
from colorrt.errors import BackendError, InputError, ModelError

_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


class OnnxGraph:
    """An ONNX model with any number of inputs and outputs on ONNX Runtime (CPU or CUDA provider).

    Args:
        path: the ``.onnx`` file.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (the CPU).
        threads: intra-op threads (default: the physical cores).
    """

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"no such model file: {self.path}", "check the path to the .onnx file")
        self.device = "cpu" if device == "auto" else device
        if self.device not in _PROVIDERS:
            raise InputError(f"unknown device {device!r}; expected 'cpu', 'cuda' or 'auto'")
        self._session = _session(self.path, self.device, threads or physical_cores())
        self.inputs = [TensorInfo(t.name, tuple(t.shape or ()), t.type) for t in self._session.get_inputs()]
        self.outputs = [TensorInfo(t.name, tuple(t.shape or ()), t.type) for t in self._session.get_outputs()]
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)

    def input_dtype(self, name: str) -> type:
        """NumPy dtype the graph takes for input ``name`` (float32 for types not listed)."""
        info = next(t for t in self.inputs if t.name == name)
        return _DTYPES.get(info.dtype, np.float32)

    def run(self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        """The named outputs (all, in graph order, by default) for the named input arrays."""
        if self._session is None:
            raise BackendError(f"{self.path.name}: the ONNX Runtime session is closed")
        try:
            return self._session.run(list(outputs) if outputs is not None else None, dict(feeds))
        except Exception as e:  # ORT raises its own pybind11 types for shape/type errors
            shapes = {name: tuple(np.shape(value)) for name, value in feeds.items()}
            raise BackendError(f"{self.path.name}: ONNX Runtime failed on inputs {shapes}: {e}") from e

    def close(self) -> None:
        """Drop the session."""
        self._session = None


def _session(path: Path, device: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=_PROVIDERS[device])
    except Exception as e:  # ORT's own exception types
        raise ModelError(f"ONNX Runtime cannot load {path}: {e}", "check the file with `colorrt info`") from e
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise BackendError(
            f"ONNX Runtime has no CUDA provider for {path.name}",
            "pip install 'colorrt[gpu]' or use device='cpu'",
        )
    return session
