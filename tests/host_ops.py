"""HostOps: the GPU path's stand-in on a CPU, so that its wiring is tested where there is no GPU.

Arrays are NumPy ("device" and pinned alike) and the kernels are the NumPy reference (or, given a
launcher, the CUDA kernels' host twins through :class:`~colorrt.kernels.ops.CudaKernels`). Streams
keep CUDA's ordering rules but make them observable: a copy queued on a stream runs only when
something orders it — an event recorded after it is synchronized or waited on by another stream,
the stream is synchronized, or the stream is made current again for kernels. Kernels and engine
calls run at once, on the calling thread. So copies happen as late as a GPU may run them and
compute as early: a missing ``wait_event`` or ``synchronize`` reads stale data here as it could
on a GPU. What this cannot show: real concurrency (the GPU's copy engines beside its compute),
pinned memory, device-resident frames (everything here counts as a host array) and the kernels'
device code.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from colorrt.kernels.ops import CudaKernels, Kernels, ReferenceKernels, check_copy


class HostEvent:
    """A point in a :class:`HostStream`'s queue; an event never recorded counts as done (as CUDA's)."""

    def __init__(self, ops: HostOps) -> None:
        self._ops = ops
        self._stream: HostStream | None = None
        self._position = 0

    def record(self, stream: HostStream | None = None) -> None:
        """Mark the end of what ``stream`` (default: the current one) has queued so far."""
        self._stream = stream if stream is not None else self._ops.current_stream()
        self._position = self._stream.queued

    def synchronize(self) -> None:
        """Run the stream's queued work up to this event."""
        if self._stream is not None:
            self._stream.run_until(self._position)

    @property
    def done(self) -> bool:
        """True when the work before the event has run."""
        return self._stream is None or self._stream.ran >= self._position


class HostStream:
    """A stream of :class:`HostOps` (see the module docstring for when its queued copies run)."""

    ptr = 0

    def __init__(self, ops: HostOps) -> None:
        self._ops = ops
        self._queue: list[Callable[[], None]] = []
        self.ran = 0  # how many queued operations have run

    @property
    def queued(self) -> int:
        """Operations queued so far (run or not)."""
        return len(self._queue)

    def enqueue(self, operation: Callable[[], None]) -> None:
        self._queue.append(operation)

    def run_until(self, position: int) -> None:
        while self.ran < position:
            operation = self._queue[self.ran]
            self.ran += 1
            operation()

    def synchronize(self) -> None:
        """Run everything queued."""
        self.run_until(len(self._queue))

    def record(self, event: HostEvent | None = None) -> HostEvent:
        event = event if event is not None else HostEvent(self._ops)
        event.record(self)
        return event

    def wait_event(self, event: HostEvent) -> None:
        """Later work on this stream comes after the event: the producer's work up to it runs now."""
        event.synchronize()

    def __enter__(self) -> HostStream:
        self.synchronize()  # kernels run at once: what this stream queued before them goes first
        self._ops._stack().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._ops._stack().pop()


class HostOps:
    """The CPU stand-in of :class:`~colorrt.kernels.ops.CudaOps` (see the module docstring).

    Args:
        launcher: run the CUDA kernels' Python faces through this NumPy launcher (the host twins)
            instead of the NumPy reference kernels.
    """

    name = "host"
    xp = np

    def __init__(self, launcher: Any = None) -> None:
        self.kernels: Kernels = ReferenceKernels() if launcher is None else CudaKernels(launcher)
        self._local = threading.local()
        self.streams: list[HostStream] = []  # every stream made, so tests can check they were drained

    def _stack(self) -> list[HostStream]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = [HostStream(self)]  # the thread's null stream
        return stack

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def stream(self) -> HostStream:
        stream = HostStream(self)
        self.streams.append(stream)
        return stream

    def event(self) -> HostEvent:
        return HostEvent(self)

    def current_stream(self) -> HostStream:
        return self._stack()[-1]

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def pinned(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def upload(self, dst: np.ndarray, src: np.ndarray, stream: HostStream) -> None:
        check_copy(dst, src)
        stream.enqueue(lambda: np.copyto(dst, src))

    def download(self, dst: np.ndarray, src: np.ndarray, stream: HostStream) -> None:
        check_copy(dst, src)
        stream.enqueue(lambda: np.copyto(dst, src))

    def on_device(self, array: Any) -> bool:
        return False

    def as_array(self, frame: Any) -> np.ndarray:
        return np.asarray(frame)

    def to_device(self, array: Any) -> np.ndarray:
        return np.array(array)

    def to_host(self, array: Any) -> np.ndarray:
        self.current_stream().synchronize()
        return np.array(array)

    def errors(self, what: str) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    @property
    def idle(self) -> bool:
        """True when no stream has queued work left (everything was waited for)."""
        return all(stream.ran == stream.queued for stream in self.streams)
