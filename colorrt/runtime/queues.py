"""Threads joined by bounded queues: :class:`Pipeline` (one thread per stage) and :func:`ordered_map`.

Stages are joined by bounded queues, so memory stays flat whatever the length of the input; each
stage works while the next item is prepared and the previous one consumed. Items keep their order
(one thread per stage), the first error in any stage stops every stage and is raised to the caller,
and :meth:`Pipeline.cancel` stops the consumer within a queue poll (50 ms).
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from colorrt.errors import InputError

Stage = Callable[[Iterator[Any]], Iterator[Any]]
POLL_S = 0.05  # seconds a blocked queue operation waits before checking for stop/cancel
JOIN_S = 30.0  # seconds close() waits for the stage threads to finish their current call
CANCEL_JOIN_S = 0.5  # seconds close() waits after a cancel (busy daemon threads end on their own)


class _End:
    """Marks the end of a stage's output in its queue."""


_END = _End()


class Pipeline:
    """Runs ``source`` and ``stages`` in threads joined by bounded queues; iterate it for the output.

    Each stage is a function turning an iterator of inputs into an iterator of outputs (so a stage
    may batch, unbatch or keep state). The first exception raised by the source or any stage stops
    the whole pipeline and is re-raised from the iteration; :meth:`cancel` ends the iteration
    quietly. Leaving the iteration early (``break``, an exception in the loop body) stops the threads.

    Args:
        source: iterable of items; iterated in its own thread (closed there when it has ``close``).
        stages: ``(name, function)`` pairs, applied in order.
        queue_size: items each queue holds; bounds memory.
    """

    def __init__(self, source: Iterable[Any], stages: Sequence[tuple[str, Stage]], *, queue_size: int = 4):
        if queue_size < 1:
            raise InputError(f"queue_size must be >= 1, got {queue_size}")
        self._source = source
        self._stages = list(stages)
        self._queues = [queue.Queue(maxsize=queue_size) for _ in range(len(self._stages) + 1)]
        self._stop = threading.Event()
        self._cancelled = threading.Event()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop every stage; the iteration ends (without error) at its next poll, within 50 ms."""
        self._cancelled.set()
        self._stop.set()

    def __iter__(self) -> Iterator[Any]:
        if self._started:
            raise InputError("a Pipeline can be iterated only once", "build a new one for another run")
        self._started = True
        self._start_threads()
        try:
            while True:
                item = self._get(self._queues[-1])
                if item is _END:
                    break
                yield item
        finally:
            self.close()
        self._raise_error()

    def close(self) -> None:
        """Stop the threads and wait for them.

        A stage busy in one long call (an inference) finishes that call on its own: after a cancel
        the wait is cut short at CANCEL_JOIN_S so that cancelling stays prompt.
        """
        self._stop.set()
        deadline = time.monotonic() + (CANCEL_JOIN_S if self.cancelled else JOIN_S)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def _start_threads(self) -> None:
        workers = [("source", self._run_source, ())]
        workers += [
            (name, self._run_stage, (stage, self._queues[i], self._queues[i + 1]))
            for i, (name, stage) in enumerate(self._stages)
        ]
        for name, target, args in workers:
            thread = threading.Thread(target=target, args=args, name=f"colorrt-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run_source(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                if not self._put(self._queues[0], item):
                    return
            self._put(self._queues[0], _END)
        except BaseException as e:  # noqa: B036 -- any failure, even KeyboardInterrupt, must stop the others
            self._fail(e, "source")
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _run_stage(self, stage: Stage, inbox: queue.Queue, outbox: queue.Queue) -> None:
        name = threading.current_thread().name
        outputs = stage(self._drain(inbox))
        try:
            for item in outputs:
                if not self._put(outbox, item):
                    return
            if not self._stop.is_set():
                self._put(outbox, _END)
        except BaseException as e:  # noqa: B036 -- see _run_source
            self._fail(e, name)
        finally:
            close = getattr(outputs, "close", None)
            if close is not None:
                close()

    def _drain(self, inbox: queue.Queue) -> Iterator[Any]:
        while True:
            item = self._get(inbox)
            if item is _END:
                return
            yield item

    def _get(self, box: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return box.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _END

    def _put(self, box: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                box.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _fail(self, error: BaseException, where: str) -> None:
        with self._error_lock:
            if self._error is None and not self._cancelled.is_set():
                if hasattr(error, "add_note"):
                    error.add_note(f"(raised in the {where} stage of the colorrt streaming pipeline)")
                self._error = error
        self._stop.set()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def ordered_map(
    fn: Callable[..., Any], jobs: Iterable[tuple[Any, tuple]], workers: int, name: str
) -> Iterator[tuple[Any, Any]]:
    """``(key, fn(*args))`` for each ``(key, args)`` of ``jobs``, computed on ``workers`` threads.

    Results come in the order of ``jobs``; at most ``2 * workers`` calls are in flight (memory
    stays bounded). NumPy releases the GIL in its array loops, so the threads run in parallel.
    An exception from ``fn`` is raised when its result is due.
    """
    pending: collections.deque[tuple[Any, Future]] = collections.deque()
    with ThreadPoolExecutor(workers, thread_name_prefix=f"colorrt-{name}-worker") as pool:
        try:
            for key, args in jobs:
                pending.append((key, pool.submit(fn, *args)))
                while len(pending) > 2 * workers or (pending and pending[0][1].done()):
                    key, future = pending.popleft()
                    yield key, future.result()
            while pending:
                key, future = pending.popleft()
                yield key, future.result()
        finally:
            for _, future in pending:
                future.cancel()
