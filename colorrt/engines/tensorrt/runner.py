""":class:`TensorRTEngine`: runs a TensorRT plan (or builds one from an ONNX model first)."""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import ColorContract, chosen_contract
from colorrt.engines.base import Engine, require_one_input
from colorrt.engines.tensorrt.builder import build, match_tensor_name
from colorrt.engines.tensorrt.facts import EngineFacts, check_compatible, read_facts
from colorrt.engines.tensorrt.loader import gpu_info, import_tensorrt, make_logger
from colorrt.engines.tensorrt.profiles import Profile, TensorRange
from colorrt.engines.tensorrt.streams import StreamSlot
from colorrt.errors import BackendError, InputError, ModelError
from colorrt.gpu import import_cupy


@dataclass(frozen=True)
class EngineIO:
    """Names, dtypes and profiles of an engine's one input and one output."""

    contract: ColorContract
    input_name: str
    output_name: str
    input_dtype: np.dtype
    output_dtype: np.dtype
    profiles: tuple[Profile, ...]

    @classmethod
    def read(cls, trt: Any, engine: Any, contract: ColorContract, path: Path) -> EngineIO:
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1:
            raise ModelError(f"{path} has inputs {inputs}; colorrt engines take one NCHW input")
        contract = match_tensor_name(contract, "input", inputs, path)
        contract = match_tensor_name(contract, "output", outputs, path)
        for name in (contract.input_name, contract.output_name):
            if engine.get_tensor_format(name) != trt.TensorFormat.LINEAR:
                raise ModelError(
                    f"{path}: tensor {name!r} uses a vectorized format; colorrt feeds linear NCHW buffers",
                    "rebuild the engine with colorrt build",
                )
        profiles = tuple(
            _engine_profile(engine, contract.input_name, i) for i in range(engine.num_optimization_profiles)
        )
        return cls(
            contract,
            contract.input_name,
            contract.output_name,
            np.dtype(trt.nptype(engine.get_tensor_dtype(contract.input_name))),
            np.dtype(trt.nptype(engine.get_tensor_dtype(contract.output_name))),
            profiles,
        )


def _engine_profile(engine: Any, name: str, index: int) -> Profile:
    static = tuple(int(d) for d in engine.get_tensor_shape(name))
    if all(d >= 0 for d in static):
        return Profile((TensorRange(name, static, static, static),))
    low, opt, high = (tuple(int(d) for d in dims) for dims in engine.get_tensor_profile_shape(name, index))
    return Profile((TensorRange(name, low, opt, high),))


class TensorRTEngine(Engine):
    """Runs a TensorRT plan (or builds one from an ONNX model through the engine cache).

    ``infer`` takes a NumPy array (staged through pinned host memory; returns NumPy) or a CuPy
    array on the engine's device (copied device-to-device only; returns CuPy, ordered after the
    caller's current stream). Calls from several threads run concurrently on ``streams`` CUDA
    streams, each with its own execution context.

    Args:
        path: ``.plan``/``.engine``/``.trt`` file with its ``.json`` facts, or an ``.onnx`` model
            (built with ``build`` through the cache; ``build_options`` go to ``build``).
        contract: contract or preset name; default the one in the plan's facts.
        device: ``"cuda"`` or ``"auto"``.
        streams: CUDA streams (execution contexts) for concurrent ``infer`` calls.
        cuda_graphs: capture a CUDA graph per input shape after its warm-up run and replay it.
        max_graphs: graphs kept per stream; shapes beyond run without a graph.
        device_id: CUDA device.
        check_compatibility: refuse a plan whose facts name another TensorRT version or GPU.
        threads: accepted like every backend's (``--threads``); TensorRT has no host threads to set.
    """

    name = "tensorrt"
    device = "cuda"

    def __init__(
        self,
        path: str | os.PathLike[str],
        contract: ColorContract | str | None = None,
        device: str = "auto",
        *,
        streams: int = 1,
        cuda_graphs: bool = True,
        max_graphs: int = 4,
        device_id: int = 0,
        check_compatibility: bool = True,
        threads: int | None = None,
        **build_options: Any,
    ) -> None:
        if device not in ("auto", "cuda"):
            raise BackendError(
                f"TensorRT engines run on the GPU only; device must be 'cuda' or 'auto', got {device!r}"
            )
        if streams < 1 or max_graphs < 0:
            raise InputError(f"streams must be >= 1 and max_graphs >= 0, got {streams} and {max_graphs}")
        self.path = path = _plan_path(Path(path), contract, device_id, build_options)
        self._trt = import_tensorrt("running a TensorRT engine")
        self._cp = import_cupy("running a TensorRT engine")
        self.facts = _facts_beside(path, contract)
        if self.facts is not None and check_compatibility:
            gpu = gpu_info(device_id)
            check_compatible(
                self.facts,
                trt_version=self._trt.__version__,
                gpu_name=gpu.name,
                compute_capability=gpu.compute_capability,
                path=path,
            )
        self._device = self._cp.cuda.Device(device_id)
        self._logger = make_logger(self._trt)
        with self._device:
            self._runtime = self._trt.Runtime(self._logger)
            self._engine = _deserialize(self._runtime, path, self._trt.__version__, self._logger)
            chosen = _chosen_contract(contract, self.facts, path)
            self._io = EngineIO.read(self._trt, self._engine, chosen, path)
            self.contract = self._io.contract
            require_one_input(self.contract, "TensorRT")  # profiles and buffers of one NCHW input
            self.profiles = self._io.profiles
            self._streams: list[StreamSlot] = [
                StreamSlot(
                    self._cp, self._device, self._io, self._logger, self._new_context, cuda_graphs, max_graphs
                )
                for _ in range(streams)
            ]
        self._free: queue.SimpleQueue[StreamSlot] = queue.SimpleQueue()
        for slot in self._streams:
            self._free.put(slot)

    @property
    def precision(self) -> str:
        """fp32 / fp16 / int8 from the plan's facts ("unknown" without facts)."""
        return self.facts.precision if self.facts is not None else "unknown"

    def _infer_impl(self, batch: Any) -> Any:
        slot = self._free.get()
        try:
            with self._device:
                return slot.run(batch)
        finally:
            self._free.put(slot)

    def close(self) -> None:
        """Wait for the streams, then free graphs, contexts, buffers and the engine."""
        if self._closed:
            return
        super().close()
        with self._device:
            for slot in getattr(self, "_streams", ()):
                slot.release()
        self._streams = []
        self._engine = None
        self._runtime = None

    def _new_context(self) -> Any:
        context = self._engine.create_execution_context()
        if context is None:
            raise BackendError(
                "TensorRT could not create an execution context (out of GPU memory?)", self._logger.tail()
            )
        return context


def _plan_path(
    path: Path, contract: ColorContract | str | None, device_id: int, build_options: dict[str, Any]
) -> Path:
    """The plan to run: ``path`` itself, or the plan built from an ``.onnx`` model (``build_options``)."""
    if path.suffix.lower() == ".onnx":
        import_tensorrt(f"the TensorRT backend (--backend tensorrt), building an engine from {path.name},")
        path = build(path, contract=contract, device_id=device_id, **build_options)
    elif build_options:
        raise InputError(
            f"options {sorted(build_options)} apply when building from an .onnx model; "
            f"{path.name} is built already"
        )
    if not path.is_file():
        raise ModelError(
            f"no such TensorRT engine file: {path}", "build one with colorrt build --model M.onnx"
        )
    return path


def _deserialize(runtime: Any, path: Path, version: str, logger: Any) -> Any:
    try:
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
    except RuntimeError as e:  # some TensorRT versions raise instead of returning None
        engine, cause = None, e
    else:
        cause = None
    if engine is None:
        tail = logger.tail()
        raise ModelError(
            f"{path} is not an engine TensorRT {version} can load "
            "(corrupt, truncated, or built by another TensorRT version)",
            "rebuild it with colorrt build" + (f"\n  {tail}" if tail else ""),
        ) from cause
    return engine


def _facts_beside(path: Path, contract: ColorContract | str | None) -> EngineFacts | None:
    try:
        return read_facts(path)
    except ModelError:
        if contract is None:
            raise
        return None  # the caller supplies the contract; the plan cannot be checked against facts


def _chosen_contract(
    contract: ColorContract | str | None, facts: EngineFacts | None, path: Path
) -> ColorContract:
    return chosen_contract(
        contract,
        None if facts is None else facts.contract,
        f"{path} has no facts with its contract",
        "pass contract= / --contract",
    )
