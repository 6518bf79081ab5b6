"""ONNX Runtime on the CUDA execution provider, with IOBinding on CuPy device buffers.

* The session runs on a CuPy stream owned by the engine (``user_compute_stream``); inputs and
  outputs are bound by device pointer (``IoBinding.bind_input(name, "cuda", device_id, dtype,
  shape, ptr)``), so a CuPy batch never visits the host. The engine's stream waits for the caller's
  current stream and the caller's stream waits for the result (CUDA events), and runs are not
  host-synchronized (``disable_synchronize_execution_providers``).
* ``cuda_graphs=True`` enables ONNX Runtime's CUDA graphs (``enable_cuda_graph``): per input shape
  the engine keeps static input/output buffers bound once and a ``gpu_graph_id`` run option, so ONNX
  Runtime captures a graph for that shape on its first runs and replays it afterwards. Every node
  must then run on the CUDA provider.
* NumPy in, NumPy out (staged through the device); CuPy in, CuPy out. Outputs are float32.

:func:`onnxruntime_engine` picks this engine or the CPU one from ``device``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine, require_one_input
from colorrt.engines.onnxruntime import (
    ORT_DTYPES,
    OnnxRuntimeEngine,
    checked_tensors,
    default_opset,
    load_onnx,
    physical_cores,
    resolve_contract,
)
from colorrt.errors import BackendError, InputError, ModelError
from colorrt.gpu import missing_gpu_dependency
from colorrt.kernels.cuda import CudaUnavailableError, GpuOutOfMemoryError, gpu_errors, require_cuda

CUDA_PROVIDER = "CUDAExecutionProvider"
CONV_ALGO_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")


@dataclass
class _GraphSlot:
    """Static buffers of one input shape, bound once, and the run options naming its CUDA graph."""

    binding: Any
    static_input: Any
    static_output: Any
    run_options: Any


class OnnxRuntimeCudaEngine(Engine):
    """Colorization ONNX model on ONNX Runtime's CUDA execution provider.

    Args:
        path: the ``.onnx`` file (its contract is read from the metadata).
        contract: a contract or preset name overriding the stored one.
        device: ``"cuda"`` or ``"auto"``.
        device_id: CUDA device.
        cuda_graphs: capture and replay a CUDA graph per input shape.
        max_graphs: shapes given a graph; further shapes run without one.
        conv_algo_search: cuDNN convolution algorithm search (``EXHAUSTIVE`` tries them all once per shape).
        prefer_nhwc: let the provider run convolutions in NHWC (tensor-core friendly).
        threads: intra-op threads for nodes that fall back to the CPU.
    """

    name = "onnxruntime-cuda"
    device = "cuda"

    def __init__(
        self,
        path: str | os.PathLike[str],
        contract: ColorContract | str | None = None,
        device: str = "cuda",
        *,
        device_id: int = 0,
        cuda_graphs: bool = False,
        max_graphs: int = 4,
        conv_algo_search: str = "EXHAUSTIVE",
        prefer_nhwc: bool = False,
        threads: int | None = None,
    ) -> None:
        if device not in ("cuda", "auto"):
            raise BackendError(
                f"OnnxRuntimeCudaEngine runs on the GPU; got device={device!r}",
                "use OnnxRuntimeEngine (backend 'onnxruntime', device='cpu') for the CPU",
            )
        if conv_algo_search not in CONV_ALGO_SEARCH:
            raise InputError(f"conv_algo_search must be one of {CONV_ALGO_SEARCH}, got {conv_algo_search!r}")
        if max_graphs < 1:
            raise InputError(f"max_graphs must be >= 1, got {max_graphs}")
        self._ort = import_onnxruntime_gpu("the ONNX Runtime CUDA engine")
        self._cp = require_cuda("the ONNX Runtime CUDA engine", device_id)
        self.path = Path(path)
        self.device_id = device_id
        model = load_onnx(self.path)
        self.opset = default_opset(model)
        self.contract = resolve_contract(model, contract, self.path)
        require_one_input(self.contract, "ONNX Runtime CUDA")  # IOBinding of one NCHW input
        with self._cp.cuda.Device(device_id):
            self._stream = self._cp.cuda.Stream(non_blocking=True)
        self.cuda_graphs = cuda_graphs
        self.max_graphs = max_graphs
        options = {
            "device_id": str(device_id),
            "user_compute_stream": str(self._stream.ptr),
            "enable_cuda_graph": "1" if cuda_graphs else "0",
            "cudnn_conv_algo_search": conv_algo_search,
        }
        if prefer_nhwc:
            options["prefer_nhwc"] = "1"
        self._session = _create_session(self._ort, self.path, options, threads or physical_cores())
        self.contract, self.inputs, self.outputs, self.input_info, self.output_info = checked_tensors(
            self._session, self.contract, self.path
        )
        self.input_dtype = np.dtype(ORT_DTYPES[self.input_info.dtype])
        self.output_dtype = np.dtype(ORT_DTYPES.get(self.output_info.dtype, np.float32))
        self.batch_size = self.input_info.static_dim(0)
        self._output_shapes: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._graphs: dict[tuple[int, ...], _GraphSlot] = {}
        self._lock = threading.Lock()  # one stream, one set of static buffers: one run at a time
        self._async = self._ort.RunOptions()
        self._async.add_run_config_entry("disable_synchronize_execution_providers", "1")
        self._async.add_run_config_entry("gpu_graph_id", "-1")  # no capture unless a slot asks for one

    @property
    def precision(self) -> str:
        """Precision of the model's input tensor: ``"fp32"``, ``"fp16"`` or ``"fp64"``."""
        return {np.float32: "fp32", np.float16: "fp16", np.float64: "fp64"}[self.input_dtype.type]

    @property
    def graphs_captured(self) -> int:
        """Input shapes that have a CUDA graph slot."""
        return len(self._graphs)

    def _infer_impl(self, batch: Any) -> Any:
        cp = self._cp
        on_device = isinstance(batch, cp.ndarray)
        if self.batch_size is not None and batch.shape[0] != self.batch_size:
            raise InputError(
                f"{self.path.name} has a fixed batch of {self.batch_size}, got {batch.shape[0]}",
                "re-export it with a dynamic batch (colorrt export does) or pass batches of that size",
            )
        with self._lock, cp.cuda.Device(self.device_id), gpu_errors(f"running {self.path.name}"):
            caller = cp.cuda.get_current_stream()
            if on_device:
                if batch.device.id != self.device_id:
                    raise InputError(
                        f"the batch is on GPU {batch.device.id}, the engine on GPU {self.device_id}"
                    )
                self._stream.wait_event(caller.record())
            with self._stream:
                x = cp.ascontiguousarray(cp.asarray(batch), dtype=self.input_dtype)
                out = self._run(x)
                result = out.astype(np.float32, copy=False)
            if on_device:
                caller.wait_event(self._stream.record())
                return result
            return result.get(stream=self._stream)

    def _run(self, x: Any) -> Any:
        """Run on the engine's stream (current here); returns the output array."""
        shape = tuple(int(d) for d in x.shape)
        slot = self._graphs.get(shape)
        if slot is None and self.cuda_graphs and len(self._graphs) < self.max_graphs:
            slot = self._new_graph_slot(x, shape)
        if slot is not None:
            self._cp.copyto(slot.static_input, x)
            self._session.run_with_iobinding(slot.binding, slot.run_options)
            return slot.static_output.copy()
        out_shape = self._output_shapes.get(shape) or self._learn_output_shape(x, shape)
        out = self._cp.empty(out_shape, dtype=self.output_dtype)
        self._session.run_with_iobinding(self._binding(x, out), self._async)
        return out

    def _binding(self, x: Any, out: Any) -> Any:
        binding = self._session.io_binding()
        binding.bind_input(
            self.contract.input_name, "cuda", self.device_id, self.input_dtype.type, list(x.shape), x.data.ptr
        )
        binding.bind_output(
            self.contract.output_name,
            "cuda",
            self.device_id,
            self.output_dtype.type,
            list(out.shape),
            out.data.ptr,
        )
        return binding

    def _learn_output_shape(self, x: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
        """One run with an output ONNX Runtime allocates on the device, to learn its shape."""
        binding = self._session.io_binding()
        binding.bind_input(
            self.contract.input_name, "cuda", self.device_id, self.input_dtype.type, list(shape), x.data.ptr
        )
        binding.bind_output(self.contract.output_name, "cuda", self.device_id)
        self._session.run_with_iobinding(binding, self._async)
        (value,) = binding.get_outputs()
        out_shape = tuple(int(d) for d in value.shape())
        self._output_shapes[shape] = out_shape
        return out_shape

    def _new_graph_slot(self, x: Any, shape: tuple[int, ...]) -> _GraphSlot:
        cp = self._cp
        out_shape = self._output_shapes.get(shape) or self._learn_output_shape(x, shape)
        static_input = cp.empty(shape, dtype=self.input_dtype)
        static_output = cp.empty(out_shape, dtype=self.output_dtype)
        run_options = self._ort.RunOptions()
        run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        run_options.add_run_config_entry("gpu_graph_id", str(len(self._graphs) + 1))  # 0 is reserved
        slot = _GraphSlot(
            self._binding(static_input, static_output), static_input, static_output, run_options
        )
        self._graphs[shape] = slot
        return slot

    def close(self) -> None:
        """Wait for the stream, then drop the session and the static buffers."""
        if getattr(self, "_stream", None) is not None:
            self._stream.synchronize()
        self._graphs = {}
        self._session = None
        super().close()


def import_onnxruntime_gpu(purpose: str) -> Any:
    """``onnxruntime`` with its CUDA execution provider, or an error saying how to get it."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if CUDA_PROVIDER not in available:
        error = missing_gpu_dependency("onnxruntime-gpu", purpose)
        error.what = (
            f"{purpose} needs ONNX Runtime's {CUDA_PROVIDER}; the installed onnxruntime "
            f"{ort.__version__} offers only {', '.join(available)} (the CPU build)"
        )
        error.hint = f"uninstall 'onnxruntime', then {error.hint}"
        error.args = (f"{error.what}\n  hint: {error.hint}",)
        raise error
    preload = getattr(ort, "preload_dlls", None)  # ORT >= 1.21: CUDA/cuDNN from the nvidia-* wheels
    if preload is not None:
        try:
            preload()
        except Exception:  # best effort: the session still finds system-wide CUDA libraries
            pass
    return ort


def _create_session(ort: Any, path: Path, options: dict[str, str], threads: int) -> Any:
    session_options = ort.SessionOptions()
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session_options.intra_op_num_threads = threads
    session_options.log_severity_level = 3
    providers = [(CUDA_PROVIDER, options), "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as e:  # ORT raises its own pybind11 exception types
        if "out of memory" in str(e).lower():
            raise GpuOutOfMemoryError(
                f"the GPU ran out of memory while loading {path.name} ({e})",
                "close other programs using the GPU (nvidia-smi lists them); "
                "the CPU path works: device='cpu'",
            ) from e
        raise ModelError(
            f"ONNX Runtime (CUDA) cannot load {path}: {e}",
            "check the file with `colorrt info` or re-export it",
        ) from e
    if session.get_providers()[0] != CUDA_PROVIDER:
        raise CudaUnavailableError(
            f"ONNX Runtime fell back to {session.get_providers()[0]} for {path.name}: its CUDA provider "
            "could not start (CUDA or cuDNN libraries missing or not matching onnxruntime-gpu)",
            "install the CUDA and cuDNN versions your onnxruntime-gpu needs (pip install 'colorrt[gpu]'); "
            "the CPU path works: device='cpu'",
        )
    return session


def onnxruntime_engine(
    path: str | os.PathLike[str],
    contract: ColorContract | str | None = None,
    device: str = "auto",
    **options: Any,
) -> Engine:
    """The ONNX Runtime engine for ``device``: CUDA for ``"cuda"``; for ``"auto"`` CUDA when the
    CUDA provider, CuPy and a GPU are all there, else the CPU engine; the CPU engine for ``"cpu"``."""
    if device == "cuda" or (device == "auto" and cuda_available()):
        return OnnxRuntimeCudaEngine(path, contract, "cuda", **options)
    if device not in ("auto", "cpu"):
        raise BackendError(f"unknown device {device!r} for onnxruntime; expected 'cpu', 'cuda' or 'auto'")
    cpu_options = {k: v for k, v in options.items() if k == "threads"}
    ignored = sorted(set(options) - set(cpu_options))
    if ignored:
        raise InputError(
            f"options {ignored} apply to the CUDA engine; the ONNX Runtime engine runs on the CPU"
        )
    return OnnxRuntimeEngine(path, contract, "cpu", **cpu_options)


def cuda_available() -> bool:
    """True when ONNX Runtime has its CUDA provider and CuPy sees a CUDA device."""
    import onnxruntime as ort

    if CUDA_PROVIDER not in ort.get_available_providers():
        return False
    try:
        require_cuda("probe")
    except BackendError:
        return False
    return True
