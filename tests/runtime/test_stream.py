"""Pipelined streaming: order, batching by shape, error propagation, cancel, bounded memory."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.runtime.runtime import Runtime
from colorrt.runtime.stream import Pipeline, stream
from tests.synth_video import scene_frames
from tests.zoo import ab_model


class SpyEngine:
    """Wraps a real engine: records batch shapes, can fail or stall on a chosen call."""

    def __init__(self, engine, fail_on: int | None = None, delay_s: float = 0.0) -> None:
        self.engine, self.fail_on, self.delay_s = engine, fail_on, delay_s
        self.contract, self.device, self.name = engine.contract, "cpu", "spy"
        self.shapes: list[tuple[int, ...]] = []

    def infer(self, batch):
        self.shapes.append(tuple(batch.shape))
        if self.fail_on is not None and len(self.shapes) == self.fail_on:
            raise RuntimeError("inference failed on purpose")
        time.sleep(self.delay_s)
        return self.engine.infer(batch)


class SpyRuntime:
    def __init__(self, engine, batch_size: int = 4) -> None:
        self.engine, self.batch_size = engine, batch_size


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(ab_model(tmp_path_factory.mktemp("zoo") / "ab.onnx"), batch_size=4)


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("colorrt-")]


def _wait_threads_gone(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while _stage_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _stage_threads()


def test_order_and_batches_by_render_shape(runtime: Runtime):
    small = list(scene_frames(5, (48, 64), seed=1))
    wide = list(scene_frames(3, (48, 96), seed=2))
    frames = small[:3] + wide + small[3:]  # 3 small, 3 wide, 2 small
    spy = SpyEngine(runtime.engine)
    out = list(stream(SpyRuntime(spy, batch_size=2), frames, temporal=0))
    assert [s[0] for s in spy.shapes] == [2, 1, 2, 1, 2]  # partial batches where the shape changes
    small_shape, wide_shape = runtime.contract.render_shape(48, 64), runtime.contract.render_shape(48, 96)
    assert small_shape != wide_shape
    assert [s[2:] for s in spy.shapes] == [small_shape, small_shape, wide_shape, wide_shape, small_shape]
    for frame, colour in zip(frames, out, strict=True):
        np.testing.assert_array_equal(colour, runtime.colorize(frame))  # same order, same result


def test_partial_last_batch(runtime: Runtime):
    spy = SpyEngine(runtime.engine)
    out = list(stream(SpyRuntime(spy, batch_size=4), scene_frames(10, seed=3)))
    assert len(out) == 10 and [s[0] for s in spy.shapes] == [4, 4, 2]


def test_accepts_grey_rgb_and_deep_frames(runtime: Runtime):
    grey = next(scene_frames(1, seed=4))
    frames = [grey, np.dstack([grey] * 3), grey[..., None], grey.astype(np.uint16) * 257, grey / 255.0]
    out = list(stream(runtime, frames, temporal=0))
    for colour in out:
        assert colour.shape == (48, 64, 3) and colour.dtype == np.uint8
        assert np.abs(colour.astype(int) - out[0]).max() <= 1


def test_bad_frame_is_an_input_error(runtime: Runtime):
    frames = [np.zeros((48, 64, 4), np.uint8)]
    with pytest.raises(InputError, match=r"\(H, W\) grey or \(H, W, 3\) RGB"):
        list(stream(runtime, frames))
    assert _wait_threads_gone()


def test_source_error_reaches_the_caller_and_stops_every_stage(runtime: Runtime):
    def frames() -> Iterator[np.ndarray]:
        yield from scene_frames(7, seed=5)
        raise ValueError("camera unplugged")

    received = []
    with pytest.raises(ValueError, match="camera unplugged") as info:
        for frame in stream(runtime, frames()):
            received.append(frame)
    assert "source stage" in "".join(getattr(info.value, "__notes__", []))
    assert len(received) <= 7
    assert _wait_threads_gone()


def test_engine_error_reaches_the_caller(runtime: Runtime):
    spy = SpyEngine(runtime.engine, fail_on=3)
    with pytest.raises(RuntimeError, match="inference failed on purpose"):
        list(stream(SpyRuntime(spy, batch_size=2), itertools.cycle(scene_frames(4, seed=6))))
    assert _wait_threads_gone()


def test_breaking_out_of_the_loop_stops_the_threads(runtime: Runtime):
    frames = stream(runtime, itertools.cycle(scene_frames(4, seed=7)))
    for count, _ in enumerate(frames, start=1):
        if count == 5:
            break
    frames.close()
    assert _wait_threads_gone()


def test_cancel_stops_an_endless_stream_within_a_second(runtime: Runtime):
    spy = SpyEngine(runtime.engine, delay_s=0.02)
    frames = stream(SpyRuntime(spy, batch_size=2), itertools.cycle(scene_frames(4, seed=8)))
    threading.Timer(0.3, frames.cancel).start()
    start = time.perf_counter()
    count = sum(1 for _ in frames)
    elapsed = time.perf_counter() - start
    assert count > 0 and elapsed < 0.3 + 1.0
    assert _wait_threads_gone()


def test_queues_bound_the_frames_in_flight(runtime: Runtime):
    pulled = 0

    def counting() -> Iterator[np.ndarray]:
        nonlocal pulled
        for frame in itertools.cycle(scene_frames(4, seed=9)):
            pulled += 1
            yield frame

    frames = stream(runtime, counting(), batch_size=2, queue_size=2)
    taken = 0
    for _ in frames:
        taken += 1
        time.sleep(0.01)  # a slow consumer
        if taken == 40:
            break
    frames.close()
    # source queue (2) + prepare's partial batch (2) + 3 batch queues of 2 batches of 2 + the frames
    # each stage holds: a few dozen at most, however long the stream runs
    assert pulled - taken < 30, (pulled, taken)


def test_generic_pipeline_stages_and_notes():
    def double(items):
        for x in items:
            yield 2 * x

    def pairs(items):
        batch = []
        for x in items:
            batch.append(x)
            if len(batch) == 2:
                yield tuple(batch)
                batch = []
        if batch:
            yield tuple(batch)

    assert list(Pipeline(range(5), [("double", double), ("pairs", pairs)])) == [(0, 2), (4, 6), (8,)]

    def explode(items):
        for x in items:
            if x == 3:
                raise KeyError("bad item")
            yield x

    with pytest.raises(KeyError) as info:
        list(Pipeline(range(10), [("explode", explode)], queue_size=1))
    assert "colorrt-explode" in "".join(info.value.__notes__)


def test_pipeline_runs_once():
    pipeline = Pipeline(range(3), [])
    assert list(pipeline) == [0, 1, 2]
    with pytest.raises(InputError, match="only once"):
        list(pipeline)


def test_bad_options(runtime: Runtime):
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        stream(runtime, [], temporal=1.5)
    with pytest.raises(InputError, match="queue_size"):
        stream(runtime, [], queue_size=0)
