"""PyTorch engine: eager FP32 / FP16 / BF16, channels_last, CUDA-graph replay, optional torch.compile.

It is the baseline every speed-up is measured against, and a real GPU backend where TensorRT is
absent. The model is one of:

* an architecture name from :data:`colorrt.models.ARCHITECTURES` with ``weights=`` (a ``.pth``) or
  ``random_init=True``;
* a checkpoint path (``.pth`` / ``.pt``, what ``load_engine`` passes) with ``arch=``;
* an ``nn.Module`` that maps the contract's input to its output, with ``contract=``.

``infer`` takes a NumPy array, a torch tensor or (on the GPU) a CuPy array, and returns the same
kind: NumPy in, NumPy out; a tensor comes back on the tensor's device; a CuPy array is shared with
torch through DLPack (no copy) and the result comes back as CuPy. The model runs on CuPy's current
stream then, so it orders with the GPU kernels around it. Outputs are float32 NCHW.

Lower precision casts the weights and activations; normalization layers stay in float32 (instance
norm loses precision in FP16). CUDA graphs are captured per input shape after a warm-up and
replayed from static buffers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch  # this module is imported only when the torch backend is asked for (see registry)
from torch import nn

from colorrt.contract import PRESETS, ColorContract, chosen_contract
from colorrt.engines.base import Engine
from colorrt.engines.torch_graphs import GraphCache, float_nchw
from colorrt.errors import BackendError, InputError, ModelError
from colorrt.kernels.cuda import CudaUnavailableError, gpu_errors

PRECISIONS = ("fp32", "fp16", "bf16")
CHECKPOINT_SUFFIXES = (".pth", ".pt")
_NUMPY_INPUT = {"fp32": np.float32, "fp16": np.float16, "bf16": np.float32}  # NumPy has no bfloat16


class TorchEngine(Engine):
    """Runs a torch colorization model (see the module docstring for what ``model`` may be).

    Args:
        model: architecture name, checkpoint path (with ``arch``) or ``nn.Module`` (with ``contract``).
        contract: a contract or preset name; default: the architecture's contract.
        device: ``"auto"`` (CUDA when torch sees a GPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        arch: architecture of a checkpoint path.
        weights: checkpoint for an architecture name (path or state dict).
        random_init: seeded random weights instead (tests, benchmarks).
        seed: seed of ``random_init``.
        options: constructor overrides of the architecture (e.g. ``{"norm": "batch"}``).
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"`` weights and activations.
        channels_last: run convolutions in NHWC memory layout (faster with tensor cores).
        cuda_graphs: capture a CUDA graph per input shape and replay it (GPU only).
        max_graphs: graphs kept (least recently used dropped); other shapes run eagerly.
        compile: ``torch.compile`` the model: True, a mode name such as ``"max-autotune"``, or a
            dict of ``torch.compile`` keyword arguments (e.g. ``{"mode": ..., "fullgraph": True}``).
        threads: CPU threads for torch (process-wide, ``torch.set_num_threads``).
        tf32: let cuDNN use TF32 tensor cores for FP32 convolutions (faster, ~1e-3 off the FP32
            reference); off by default so FP32 means FP32.
    """

    name = "torch"

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module,
        contract: ColorContract | str | None = None,
        device: str = "auto",
        *,
        arch: str | None = None,
        weights: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        random_init: bool = False,
        seed: int = 0,
        options: Mapping[str, Any] | None = None,
        dtype: str = "fp32",
        channels_last: bool = False,
        cuda_graphs: bool = False,
        max_graphs: int = 4,
        compile: bool | str | Mapping[str, Any] = False,
        threads: int | None = None,
        tf32: bool = False,
    ) -> None:
        if dtype not in PRECISIONS:
            raise InputError(f"dtype must be one of {', '.join(PRECISIONS)}, got {dtype!r}")
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch_device = _resolve_device(device)
        self.device = self.torch_device.type
        _check_graph_options(cuda_graphs, compile, max_graphs, self.device)
        module, default_contract, self.source = _load_module(model, arch, weights, random_init, seed, options)
        self.contract = _choose_contract(contract, default_contract, self.source)
        self.dtype = dtype
        self.torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        self.input_dtype = np.dtype(_NUMPY_INPUT[dtype])
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        with gpu_errors(f"loading {self.source} onto {self.torch_device}"):
            self._module = _prepare(module, self.torch_device, self.torch_dtype, self.memory_format)
        if compile:
            self._module = torch.compile(self._module, **_compile_options(compile))
        self._graphs = GraphCache(self._module, max_graphs) if cuda_graphs else None
        self.tf32 = tf32

    @property
    def precision(self) -> str:
        """``"fp32"``, ``"fp16"`` or ``"bf16"``."""
        return self.dtype

    @property
    def graphs_captured(self) -> int:
        """Number of CUDA graphs held (0 without ``cuda_graphs``)."""
        return 0 if self._graphs is None else len(self._graphs.graphs)

    def _infer_impl(self, batch: Any) -> Any:
        if isinstance(batch, Mapping):
            return self._infer_feed(batch)
        if _is_cupy(batch):
            return self._infer_cupy(batch)
        if isinstance(batch, torch.Tensor):
            with gpu_errors(f"running {self.source}"):
                return self._forward(batch).to(batch.device)
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        with gpu_errors(f"running {self.source}"):
            return self._forward(tensor).cpu().numpy()

    def _infer_cupy(self, batch: Any) -> Any:
        """CuPy in, CuPy out through DLPack, on CuPy's current stream."""
        import cupy

        if self.device != "cuda":
            raise InputError(
                "the torch engine runs on the CPU but got a CuPy (GPU) array",
                "create the engine with device='cuda', or pass a NumPy array",
            )
        index = (
            self.torch_device.index if self.torch_device.index is not None else torch.cuda.current_device()
        )
        if cupy.cuda.Device().id != index:
            raise InputError(
                f"CuPy's current device is GPU {cupy.cuda.Device().id}, the torch engine runs on GPU {index}",
                f"call the engine inside `with cupy.cuda.Device({index}):` (CuPy's stream is on that GPU)",
            )
        device = torch.device("cuda", index)
        stream = cupy.cuda.get_current_stream()
        # The external stream must be tagged with its device, else torch.cuda.stream() switches to
        # the current torch device and the model runs on that device's own stream.
        torch_stream = (
            torch.cuda.ExternalStream(stream.ptr, device=device)
            if stream.ptr
            else torch.cuda.default_stream(device)
        )
        with torch.cuda.device(device), torch.cuda.stream(torch_stream):
            with gpu_errors(f"running {self.source}"):
                out = self._forward(torch.from_dlpack(batch))
            return cupy.from_dlpack(out)

    def _infer_feed(self, feed: Mapping[str, Any]) -> np.ndarray:
        """A model of several inputs: NumPy arrays by name, run eagerly in the contract's order."""
        names = [self.contract.input_name, *(e.name for e in self.contract.extra_inputs)]
        if self._graphs is not None or not all(isinstance(feed[n], np.ndarray) for n in names):
            raise InputError(
                f"the torch engine runs '{self.contract.name}' (inputs {names}) eagerly on NumPy arrays",
                "leave cuda_graphs off and pass NumPy arrays (colorrt.kernels.extras.model_feed)",
            )
        tensors = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in names]
        with gpu_errors(f"running {self.source}"):
            return self._forward(*tensors).cpu().numpy()

    def _forward(self, tensor: torch.Tensor, *extras: torch.Tensor) -> torch.Tensor:
        x = tensor.to(self.torch_device, self.torch_dtype, non_blocking=True)
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), self._cudnn_flags():
            if self._graphs is not None:
                return self._graphs.run(x)
            out = self._module(x, *(e.to(self.torch_device, self.torch_dtype) for e in extras))
            return float_nchw(out[0] if isinstance(out, (tuple, list)) else out)  # the contract output first

    def _cudnn_flags(self) -> Any:
        """cuDNN autotuning for the fixed shapes we run, TF32 only when asked for (GPU only)."""
        if self.device != "cuda":
            return contextlib.nullcontext()
        return _cudnn_settings(self.tf32)

    def close(self) -> None:
        """Drop the model and its CUDA graphs."""
        self._graphs = None
        self._module = None
        super().close()


# ---------------------------------------------------------------- loading


def _load_module(
    model: Any,
    arch: str | None,
    weights: Any,
    random_init: bool,
    seed: int,
    options: Mapping[str, Any] | None,
) -> tuple[nn.Module, ColorContract | None, str]:
    """(module mapping contract input -> output, the architecture's contract or None, a label)."""
    from colorrt.models.registry import ARCHITECTURES, build_model, get_arch

    if isinstance(model, nn.Module):
        if arch is not None or weights is not None or random_init:
            raise InputError(
                "arch, weights and random_init apply to architecture names and checkpoint paths, "
                "not to an nn.Module that is built already"
            )
        return model, None, type(model).__name__
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(
            f"the torch engine takes an architecture name, a checkpoint path or an nn.Module, "
            f"got {type(model).__name__}"
        )
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        raise BackendError(
            f"{path} is an ONNX model; the torch engine runs torch checkpoints",
            "run it with backend='onnxruntime' (or 'tensorrt' on a GPU)",
        )
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or path.is_file():
        if arch is None:
            raise ModelError(
                f"{path} is a checkpoint (weights only); the torch engine needs its architecture",
                f"pass arch=NAME (--arch) with one of: {', '.join(ARCHITECTURES)}",
            )
        if weights is not None or random_init:
            raise InputError(f"{path} holds the weights already; drop weights= / random_init=")
        name, weights = arch, path
    else:
        name = os.fspath(model)
        if arch is not None and arch != name:
            raise InputError(f"model names architecture '{name}' but arch='{arch}' was given; pass one")
        get_arch(name)  # an unknown name: ModelError listing the choices and the closest one
    net = build_model(name, weights=weights, random_init=random_init, seed=seed, options=options)
    spec = get_arch(name)
    return spec.export_module(net).train(not spec.eval_mode), spec.contract_for(net), name


def _choose_contract(
    contract: ColorContract | str | None, default: ColorContract | None, source: str
) -> ColorContract:
    return chosen_contract(
        contract,
        default,
        f"the torch module {source} has no colour contract, so colorrt cannot tell how to feed it",
        f"pass contract=NAME with one of: {', '.join(sorted(PRESETS))}, or a ColorContract",
    )


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        _require_torch_cuda(device)
        return torch.device(device)
    raise BackendError(f"unknown device {device!r} for the torch engine; expected 'auto', 'cpu' or 'cuda'")


def _require_torch_cuda(device: str) -> None:
    if not torch.cuda.is_available():
        build = f"a CPU-only build ({torch.__version__})" if torch.version.cuda is None else torch.__version__
        raise CudaUnavailableError(
            f"device={device!r}: torch sees no CUDA device (torch is {build})",
            "on a machine with an NVIDIA GPU install a CUDA build of torch and check nvidia-smi; "
            "the CPU path works without a GPU: device='cpu'",
        )
    index = torch.device(device).index
    if index is not None and index >= torch.cuda.device_count():
        raise CudaUnavailableError(
            f"device={device!r}: torch sees {torch.cuda.device_count()} CUDA device(s)",
            "pick an existing device index (nvidia-smi lists them)",
        )


def _compile_options(compile: bool | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(compile, Mapping):
        return dict(compile)
    return {"mode": compile} if isinstance(compile, str) else {}


def _check_graph_options(
    cuda_graphs: bool, compile: bool | str | Mapping[str, Any], max_graphs: int, device: str
) -> None:
    mode = _compile_options(compile).get("mode") if compile else None
    if cuda_graphs and device != "cuda":
        raise InputError(
            f"cuda_graphs needs the GPU, but the torch engine runs on {device}",
            "use device='cuda' on a machine with an NVIDIA GPU, or leave cuda_graphs off",
        )
    if cuda_graphs and mode in ("reduce-overhead", "max-autotune"):
        raise InputError(
            f"compile mode {mode!r} captures CUDA graphs itself; cuda_graphs=True would capture them twice",
            "use one of them (e.g. compile='max-autotune-no-cudagraphs' with cuda_graphs=True)",
        )
    if max_graphs < 1:
        raise InputError(f"max_graphs must be >= 1, got {max_graphs}")


def _prepare(module: nn.Module, device: Any, dtype: Any, memory_format: Any) -> nn.Module:
    """The module on ``device`` in ``dtype`` (norm layers kept float32) and ``memory_format``, frozen."""
    module = module.to(device=device, memory_format=memory_format)
    if dtype != torch.float32:
        module = module.to(dtype)
        _keep_norms_float32(module)
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _keep_norms_float32(module: nn.Module) -> None:
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    for name, child in list(module.named_children()):
        if isinstance(child, norms):
            setattr(module, name, _Float32Norm(child.float()))
        else:
            _keep_norms_float32(child)


class _Float32Norm(nn.Module):
    """Runs a normalization layer in float32 and returns the input's dtype."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.float()).to(x.dtype)


@contextlib.contextmanager
def _cudnn_settings(tf32: bool) -> Any:
    """cuDNN benchmark mode and the FP32 convolution precision, restored afterwards.

    torch >= 2.9 has ``cudnn.conv.fp32_precision`` and refuses to read the legacy ``allow_tf32``
    once the two APIs are mixed, so the new API is used where it exists.
    """
    cudnn = torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    new_api = conv is not None and hasattr(conv, "fp32_precision")
    saved = (cudnn.benchmark, conv.fp32_precision if new_api else cudnn.allow_tf32)
    cudnn.benchmark = True
    if new_api:
        conv.fp32_precision = "tf32" if tf32 else "ieee"
    else:
        cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        cudnn.benchmark = saved[0]
        if new_api:
            conv.fp32_precision = saved[1]
        else:
            cudnn.allow_tf32 = saved[1]


def _is_cupy(batch: Any) -> bool:
    return type(batch).__module__.split(".")[0] == "cupy"
