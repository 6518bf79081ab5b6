"""CUDA streams and graphs of a running engine: one :class:`StreamSlot` per stream, each with its
execution context, device buffers, pinned host staging and per-shape CUDA graphs."""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from colorrt.engines.tensorrt.profiles import select_profile
from colorrt.errors import BackendError, InputError

if TYPE_CHECKING:
    from colorrt.engines.tensorrt.runner import EngineIO


@dataclass
class _ContextState:
    """What an execution context is currently set up for."""

    profile: int = 0
    shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None


@dataclass
class _CapturedShape:
    """A CUDA graph of one input shape and the execution context it was captured from."""

    context: Any
    graph: Any
    output_shape: tuple[int, ...]


class StreamSlot:
    """One non-default CUDA stream, its execution context, device buffers and per-shape CUDA graphs.

    Device buffers are allocated once for the largest profile shape; every shape uses views that
    start at the same addresses, which is what lets a captured graph be replayed.
    """

    def __init__(
        self,
        cp: Any,
        device: Any,
        io: EngineIO,
        logger: Any,
        new_context: Callable[[], Any],
        cuda_graphs: bool,
        max_graphs: int,
    ) -> None:
        self.cp, self.device, self.io, self.logger, self.new_context = cp, device, io, logger, new_context
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.context = self.new_context()
        self.state = _ContextState()
        self.use_graphs = cuda_graphs and max_graphs > 0
        self.max_graphs = max_graphs
        self.graphs: OrderedDict[tuple[int, ...], _CapturedShape] = OrderedDict()
        self.uncapturable: set[tuple[int, ...]] = set()
        inputs, outputs = self._capacity()
        self.input = cp.empty(inputs, dtype=self.io.input_dtype)
        self.output = cp.empty(outputs, dtype=self.io.output_dtype)
        self.pinned_in: np.ndarray | None = None
        self.pinned_out: np.ndarray | None = None

    def _capacity(self) -> tuple[int, int]:
        """Elements of the largest input and output over all profiles' max shapes."""
        inputs = outputs = 0
        for index, profile in enumerate(self.io.profiles):
            shape = profile.tensor(self.io.input_name).max
            out_shape = self._set_shape(self.context, self.state, shape, index)
            inputs, outputs = max(inputs, math.prod(shape)), max(outputs, math.prod(out_shape))
        return inputs, outputs

    def run(self, batch: Any) -> Any:
        cp = self.cp
        shape = tuple(int(s) for s in batch.shape)
        profile = select_profile(shape, self.io.profiles, self.io.input_name)
        on_device = isinstance(batch, cp.ndarray)
        if on_device:
            if batch.device.id != self.device.id:
                raise InputError(f"the batch is on GPU {batch.device.id}, the engine on GPU {self.device.id}")
            caller = cp.cuda.get_current_stream()
            self.stream.wait_event(caller.record())
        if on_device and self._direct(batch):
            return self._run_direct(batch, shape, profile, caller)
        staged = self.input[: math.prod(shape)].reshape(shape)
        if on_device:
            with self.stream:
                cp.copyto(staged, batch)
        else:
            self._stage_from_host(np.asarray(batch), staged)
        out_shape = self._execute(shape, profile)
        result = self.output[: math.prod(out_shape)].reshape(out_shape)
        if on_device:
            with self.stream:
                result = result.copy()
            caller.wait_event(self.stream.record())
            return result
        return self._fetch_to_host(result)

    def _direct(self, batch: Any) -> bool:
        # Without graphs, a contiguous device batch of the right dtype is bound directly (no copy).
        return not self.use_graphs and batch.flags.c_contiguous and batch.dtype == self.io.input_dtype

    def _run_direct(self, batch: Any, shape: tuple[int, ...], profile: int, caller: Any) -> Any:
        cp = self.cp
        out_shape = self._set_shape(self.context, self.state, shape, profile)
        with self.stream:
            result = cp.empty(out_shape, dtype=self.io.output_dtype)
        self._bind(self.context, batch.data.ptr, result.data.ptr)
        self._enqueue(self.context)
        caller.wait_event(self.stream.record())
        return result

    def _execute(self, shape: tuple[int, ...], profile: int) -> tuple[int, ...]:
        """Run the engine on the staged input; returns the output shape."""
        captured = self.graphs.get(shape)
        if captured is not None:
            self.graphs.move_to_end(shape)
            captured.graph.launch(stream=self.stream)
            return captured.output_shape
        if self.use_graphs and len(self.graphs) < self.max_graphs and shape not in self.uncapturable:
            return self._run_and_capture(shape, profile)
        out_shape = self._set_shape(self.context, self.state, shape, profile)
        self._bind(self.context, self.input.data.ptr, self.output.data.ptr)
        self._enqueue(self.context)
        return out_shape

    def _run_and_capture(self, shape: tuple[int, ...], profile: int) -> tuple[int, ...]:
        """Warm-up run of a new shape on its own context (this call's result), then capture a graph."""
        context = self.new_context()
        out_shape = self._set_shape(context, _ContextState(), shape, profile)
        self._bind(context, self.input.data.ptr, self.output.data.ptr)
        self._enqueue(context)
        self.stream.synchronize()  # TensorRT finishes its shape-dependent setup before capture
        try:
            self.stream.begin_capture()
            try:
                self._enqueue(context)
            finally:
                graph = self.stream.end_capture()
        except (self.cp.cuda.runtime.CUDARuntimeError, BackendError) as e:
            warnings.warn(
                f"CUDA graph capture failed for shape {shape} ({e}); running it without a graph", stacklevel=6
            )
            self.uncapturable.add(shape)
            return out_shape
        self.graphs[shape] = _CapturedShape(context, graph, out_shape)
        return out_shape

    def _set_shape(
        self, context: Any, state: _ContextState, shape: tuple[int, ...], profile: int
    ) -> tuple[int, ...]:
        if state.shape == shape and state.profile == profile and state.output_shape is not None:
            return state.output_shape
        if state.profile != profile:
            try:  # the binding raises RuntimeError instead of returning False
                context.set_optimization_profile_async(profile, self.stream.ptr)
            except RuntimeError as e:
                raise BackendError(
                    f"TensorRT refused optimization profile {profile} ({e})", self.logger.tail()
                ) from e
            state.profile = profile
        if not context.set_input_shape(self.io.input_name, shape):
            raise InputError(
                f"the TensorRT engine rejects input shape {shape}",
                self.logger.tail() or "see the profile",
            )
        out_shape = tuple(int(d) for d in context.get_tensor_shape(self.io.output_name))
        if any(d < 0 for d in out_shape):
            raise BackendError(f"TensorRT could not infer the output shape for input {shape}: {out_shape}")
        state.shape, state.output_shape = shape, out_shape
        return out_shape

    def _bind(self, context: Any, input_ptr: int, output_ptr: int) -> None:
        if not (
            context.set_tensor_address(self.io.input_name, input_ptr)
            and context.set_tensor_address(self.io.output_name, output_ptr)
        ):
            raise BackendError("TensorRT rejected a tensor address", self.logger.tail())

    def _enqueue(self, context: Any) -> None:
        if not context.execute_async_v3(self.stream.ptr):
            raise BackendError("TensorRT execute_async_v3 failed", self.logger.tail())

    def _stage_from_host(self, batch: np.ndarray, staged: Any) -> None:
        """NumPy → pinned host buffer (with dtype conversion) → device, asynchronously on the stream."""
        if self.pinned_in is None:
            import cupyx

            self.pinned_in = cupyx.empty_pinned((self.input.size,), dtype=self.io.input_dtype)
        host = self.pinned_in[: staged.size].reshape(staged.shape)
        np.copyto(host, batch, casting="same_kind")
        staged.set(host, stream=self.stream)

    def _fetch_to_host(self, result: Any) -> np.ndarray:
        if self.pinned_out is None:
            import cupyx

            self.pinned_out = cupyx.empty_pinned((self.output.size,), dtype=self.io.output_dtype)
        host = self.pinned_out[: result.size].reshape(result.shape)
        result.get(stream=self.stream, out=host)
        self.stream.synchronize()
        return host.copy()  # the pinned buffer is reused by the next call

    def release(self) -> None:
        self.stream.synchronize()
        self.graphs.clear()
        self.context = None
        self.input = self.output = None
        self.pinned_in = self.pinned_out = None
