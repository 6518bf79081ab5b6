"""The GPU path's wiring, tested on a CPU with stand-ins; its GPU half at the end (``requires_cuda``).

Stand-ins: ``tests.host_ops.HostOps`` for CuPy (NumPy arrays, the NumPy reference
kernels, streams whose copies run only when an event or a synchronize orders them) and a CPU engine
posing as a CUDA one (``device == "cuda"``, carrying its ``device_ops``).

What these tests cover: the routing (a Runtime with a CUDA engine takes the GPU path for images,
folders, films, streams and pages; ``gpu_path=False`` and CPU engines do not; without CuPy a warning
and the CPU path), the loop's batching and slot reuse over many batches and size changes, its
event protocol (a missing wait reads stale data under HostOps, shown below), temporal smoothing on
the host (the same cuts, states and frames as the CPU path), the first error raised and every
thread stopped, cancel, and outputs equal to the CPU path's for images, a folder, a film and pages.
With nvcc, the loop also runs the CUDA kernels' Python faces on their host twins (the same C code
compiled for the CPU). Only a GPU shows the rest: the kernels on the device, pinned memory, real
overlap of the three streams, device frames (DLPack, DALI) and CuPy's memory pools; the
``requires_cuda`` tests at the end compare the GPU path with the CPU path there.
"""

from __future__ import annotations

import ctypes
import importlib.util
import itertools
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from colorrt.engines.base import Engine
from colorrt.errors import InputError, MissingDependencyError, NonFiniteOutputError
from colorrt.io.images import read_image, write_image
from colorrt.kernels import cuda
from colorrt.runtime import gpu_path
from colorrt.runtime.gpu_images import DeviceImages
from colorrt.runtime.gpu_loop import GpuBatchLoop
from colorrt.runtime.gpu_path import colorize_stages, device_ops_for
from colorrt.runtime.gpu_stages import GpuColorizeStages
from colorrt.runtime.options import StreamOptions
from colorrt.runtime.queues import Pipeline
from colorrt.runtime.runtime import Runtime
from colorrt.runtime.stages import ColorizeStages
from colorrt.runtime.stream import stream
from tests import synth_pages, zoo
from tests.host_ops import HostOps
from tests.synth_video import read_frames, scene_frames, write_video

RNG = np.random.default_rng(18)


class StandInCuda(Engine):
    """A CPU engine posing as a CUDA one: its batches are HostOps' (NumPy) arrays."""

    device = "cuda"
    name = "stand-in"

    def __init__(self, inner: Engine, ops: HostOps | None = None, fail_on: int | None = None) -> None:
        self.inner, self.contract, self.path = inner, inner.contract, getattr(inner, "path", None)
        self.device_ops = HostOps() if ops is None else ops
        self.fail_on, self.batches = fail_on, []

    def _infer_impl(self, batch):
        self.batches.append(tuple(batch.shape))
        if self.fail_on is not None and len(self.batches) == self.fail_on:
            raise RuntimeError("inference failed on purpose")
        return self.inner.infer(batch)


class CudaWithoutOps(StandInCuda):
    """A CUDA engine bringing no stand-in: the GPU path would need CuPy."""

    def __init__(self, inner: Engine) -> None:
        super().__init__(inner)
        self.device_ops = None


@pytest.fixture(scope="module")
def cpu(zoo_models) -> Runtime:
    return Runtime(zoo_models["ab"], batch_size=3)


def _gpu(runtime: Runtime, ops: HostOps | None = None, **options) -> Runtime:
    return Runtime(StandInCuda(runtime.engine, ops), batch_size=runtime.batch_size, **options)


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("colorrt-")]


def _threads_gone(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while _stage_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _stage_threads()


def _equal(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a.shape == b.shape and a.dtype == b.dtype, i
        np.testing.assert_array_equal(a, b, err_msg=f"image {i}")


# ---------------------------------------------------------------- routing


def test_a_cuda_engine_takes_the_gpu_path_and_gpu_path_false_keeps_the_cpu_one(cpu) -> None:
    gpu = _gpu(cpu)
    assert gpu.device_ops is gpu.engine.device_ops and cpu.device_ops is None
    assert type(colorize_stages(gpu, 4, StreamOptions())) is GpuColorizeStages
    assert type(colorize_stages(cpu, 4, StreamOptions())) is ColorizeStages
    gpu.colorize(RNG.integers(0, 256, (20, 28, 3), np.uint8))
    assert isinstance(gpu.__dict__.get("_device_images"), DeviceImages)  # images went to the device
    off = _gpu(cpu, gpu_path=False)
    assert off.device_ops is None and type(colorize_stages(off, 4, StreamOptions())) is ColorizeStages
    with pytest.raises(InputError, match="needs an engine on CUDA"):
        Runtime(cpu.engine, gpu_path=True)
    with pytest.raises(InputError, match="True, False or None"):
        Runtime(cpu.engine, gpu_path="yes")


def test_frames_of_a_cuda_engine_on_the_cpu_path_need_no_cupy(cpu) -> None:
    """gpu_path=False: the frame stages hand host arrays to the CUDA engine, as Runtime does for images
    (they used to copy every batch through CuPy, which failed without it and for dict feeds)."""
    off = _gpu(cpu, gpu_path=False)
    frames = [RNG.integers(0, 256, (20, 28, 3), np.uint8) for _ in range(5)]
    _equal(list(off.stream(frames, temporal=0.0)), list(cpu.stream(frames, temporal=0.0)))
    assert off.engine.batches  # the stand-in CUDA engine ran


def test_without_cupy_a_cuda_engine_warns_and_runs_the_cpu_path(cpu, monkeypatch) -> None:
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    engine = CudaWithoutOps(cpu.engine)
    monkeypatch.setattr(gpu_path, "_warned_no_cupy", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert device_ops_for(engine) is None
    assert any("CuPy is not installed" in str(w.message) for w in caught)
    with pytest.raises(MissingDependencyError, match="cupy"):
        device_ops_for(engine, True)
    image = RNG.integers(0, 256, (20, 28, 3), np.uint8)
    np.testing.assert_array_equal(Runtime(engine).colorize(image), cpu.colorize(image))


def test_a_cupy_that_cannot_run_falls_back_like_a_missing_one(cpu, monkeypatch) -> None:
    """CuPy installed but its CUDA libraries or device unusable: a warning and the CPU path, not a
    Runtime that fails to start (gpu_path=True still raises)."""

    def unusable(*args, **kwargs):
        raise cuda.CudaUnavailableError("CUDA reports no usable device (driver too old)")

    monkeypatch.setattr(gpu_path, "CudaOps", unusable)
    monkeypatch.setattr(gpu_path, "_warned_no_cupy", False)
    engine = CudaWithoutOps(cpu.engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert device_ops_for(engine) is None
    assert any("CuPy cannot run (CUDA reports no usable device" in str(w.message) for w in caught)
    with pytest.raises(cuda.CudaUnavailableError):
        device_ops_for(engine, True)


# ---------------------------------------------------------------- the loop


def _frames(count: int, shape: tuple[int, ...], dtype=np.uint8) -> list[np.ndarray]:
    top = np.iinfo(dtype).max
    return [RNG.integers(0, top + 1, shape, dtype=dtype) for _ in range(count)]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_loop_keeps_order_over_many_batches_and_size_changes(cpu, depth) -> None:
    frames = _frames(17, (24, 32, 3)) + _frames(5, (20, 36)) + _frames(7, (24, 32, 3), np.uint16)
    engine = StandInCuda(cpu.engine)
    with GpuBatchLoop(engine, batch_size=3, depth=depth, ops=engine.device_ops) as loop:
        out = list(loop.run(iter(frames)))
    _equal(out, list(stream(cpu, frames, temporal=0)))  # uint8 frames out, as the CPU stream's
    assert loop.stats.frames == len(frames) and loop.stats.batches == 6 + 2 + 3
    assert set(engine.batches) == {(3, 1, *cpu.contract.render_shape(*f.shape[:2])) for f in frames}
    assert engine.device_ops.idle  # every queued copy was waited for


class _ForgetfulOps(HostOps):
    """HostOps whose events order nothing: what a loop with missing waits would do on a GPU."""

    def event(self):
        event = super().event()
        event.synchronize = lambda: None
        return event


class _CountingOps(HostOps):
    """HostOps counting what comes back to the host."""

    downloads = 0

    def to_host(self, array):
        self.downloads += 1
        return super().to_host(array)


def test_the_stand_in_shows_a_missing_wait_as_stale_frames(cpu) -> None:
    frames = _frames(7, (24, 32, 3))
    ops = _ForgetfulOps()
    engine = StandInCuda(cpu.engine, ops)
    with GpuBatchLoop(engine, batch_size=2, ops=ops) as loop:
        out = list(loop.run(frames))
    expected = cpu.colorize_batch(frames)
    assert any(not np.array_equal(a, b) for a, b in zip(out, expected, strict=True))


def test_the_loop_checks_its_arguments_and_frames(cpu) -> None:
    engine = StandInCuda(cpu.engine)
    with pytest.raises(InputError, match=">= 1"):
        GpuBatchLoop(engine, batch_size=0, ops=engine.device_ops)
    with pytest.raises(InputError, match="H x W x 1/3/4"):
        list(GpuBatchLoop(engine, ops=engine.device_ops).run([np.zeros((4, 4, 2), np.uint8)]))
    with pytest.raises(InputError, match="uint8, uint16 or float"):
        list(GpuBatchLoop(engine, ops=engine.device_ops).run([np.zeros((4, 4), np.int32)]))


# ---------------------------------------------------------------- films and streams


def _stages_run(stages, frames: list[np.ndarray]) -> list:
    return list(Pipeline(enumerate(frames), stages.stages(), queue_size=2))


def test_temporal_smoothing_on_the_host_gives_the_cpu_paths_frames_cuts_and_states(cpu) -> None:
    frames = list(scene_frames(44, (36, 48), [17, 34], seed=3, pan=2))
    options = StreamOptions(temporal=0.6, min_scene_len=5, workers=2)
    engine = StandInCuda(cpu.engine)
    want = _stages_run(ColorizeStages(cpu.engine, 4, options), frames)
    got = _stages_run(GpuColorizeStages(engine, 4, options, ops=engine.device_ops), frames)
    _equal([f.image for f in got], [f.image for f in want])
    assert [f.tag for f in got if f.cut] == [f.tag for f in want if f.cut] == [17, 34]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.state.stabilizer.ab, b.state.stabilizer.ab)
        np.testing.assert_array_equal(a.state.stabilizer.luma, b.state.stabilizer.luma)
        assert a.state.detector.since_cut == b.state.detector.since_cut


def test_stream_on_the_gpu_path_equals_the_cpu_path_side_by_side_and_strength(cpu) -> None:
    frames = list(scene_frames(9, (36, 48), seed=4)) + [RNG.random((36, 48))]  # a float frame too
    gpu = _gpu(cpu, strength=1.5)
    want = list(stream(Runtime(cpu.engine, batch_size=3, strength=1.5), frames, side_by_side=True))
    _equal(list(stream(gpu, frames, side_by_side=True)), want)
    assert want[0].shape == (36, 96, 3)


def test_the_first_error_stops_every_stage_and_drains_the_streams(cpu) -> None:
    engine = StandInCuda(cpu.engine, fail_on=3)
    runtime = Runtime(engine, batch_size=2)
    with pytest.raises(RuntimeError, match="inference failed on purpose") as caught:
        list(stream(runtime, itertools.cycle(scene_frames(4, (24, 32), seed=6))))
    assert "gpu stage" in "".join(getattr(caught.value, "__notes__", []))
    assert _threads_gone() and engine.device_ops.idle and len(engine.batches) == 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the NaN goes through the kernels before the check
def test_non_finite_model_output_stops_the_loop_before_its_frames(tmp_path) -> None:
    nan = Runtime(zoo.dividing_model(tmp_path / "nan.onnx"))
    gpu = _gpu(nan)
    with pytest.raises(NonFiniteOutputError):
        list(stream(gpu, scene_frames(3, (24, 32), seed=1), temporal=0.5))
    with pytest.raises(NonFiniteOutputError):
        list(stream(gpu, scene_frames(3, (24, 32), seed=1), temporal=0))
    with pytest.raises(NonFiniteOutputError):
        gpu.colorize(RNG.integers(0, 256, (20, 28, 3), np.uint8))
    assert _threads_gone()


def test_cancel_ends_an_endless_gpu_stream_and_closing_stops_it(cpu) -> None:
    frames = stream(_gpu(cpu), itertools.cycle(scene_frames(4, (24, 32), seed=8)))
    threading.Timer(0.3, frames.cancel).start()
    start = time.perf_counter()
    count = sum(1 for _ in frames)
    assert count > 0 and time.perf_counter() - start < 1.3
    assert _threads_gone()
    frames = stream(_gpu(cpu), itertools.cycle(scene_frames(4, (24, 32), seed=9)))
    assert len(list(itertools.islice(frames, 5))) == 5
    frames.close()
    assert _threads_gone()


def test_a_film_on_the_gpu_path_equals_the_cpu_path(cpu, tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    write_video(clip, scene_frames(30, (48, 64), [15], seed=2, pan=2), fps=24)
    options = dict(codec="ffv1", temporal=0.6, progress=False, segment_seconds=0.5)
    cpu.colorize_video(clip, tmp_path / "cpu.mkv", **options)
    report = _gpu(cpu).colorize_video(clip, tmp_path / "gpu.mkv", **options)
    assert report.complete and report.frames == 30
    _equal(read_frames(tmp_path / "gpu.mkv")[0], read_frames(tmp_path / "cpu.mkv")[0])


# ---------------------------------------------------------------- images, folders, pages


@pytest.mark.parametrize("kind", ["ab", "rgb", "bins", "hints"])
def test_images_of_mixed_sizes_and_kinds_equal_the_cpu_path(zoo_models, kind) -> None:
    cpu = Runtime(zoo_models[kind], batch_size=2)
    images = [
        RNG.integers(0, 256, (30, 40, 3), np.uint8),
        RNG.integers(0, 256, (30, 40), np.uint8),
        RNG.integers(0, 256, (17, 23, 3), np.uint8),
        RNG.integers(0, 256, (30, 40, 4), np.uint8),  # alpha kept
        RNG.random((12, 50)),
        RNG.integers(0, 256, (30, 40, 3), np.uint8),
    ]
    hints = None
    if kind == "hints":
        hints = [None] * len(images)
        hints[0] = np.zeros((30, 40, 3), np.float32)
        hints[0][10:14, 10:14] = (40.0, -30.0, 1.0)
    gpu = _gpu(cpu)
    _equal(gpu.colorize_batch(images, hints), cpu.colorize_batch(images, hints))
    deep = RNG.integers(0, 65536, (17, 23, 3), np.uint16)  # 16 bits out: merged on the host
    _equal([gpu.colorize(deep)], [cpu.colorize(deep)])


def test_a_folder_on_the_gpu_path_writes_what_the_cpu_path_writes(cpu, tmp_path) -> None:
    src = tmp_path / "in"
    for i, shape in enumerate([(30, 40, 3), (41, 23), (30, 40, 3), (64, 48, 3), (30, 40)]):
        write_image(src / f"sub{i % 2}" / f"{i}.png", RNG.integers(0, 256, shape, np.uint8))
    (src / "broken.png").write_bytes(b"not a png")
    want = cpu.colorize_folder(src, tmp_path / "cpu", progress=False)
    got = _gpu(cpu).colorize_folder(src, tmp_path / "gpu", progress=False)
    assert (got.done, len(got.failed)) == (want.done, len(want.failed)) == (5, 1)
    for path in sorted((tmp_path / "cpu").rglob("*.png")):
        relative = path.relative_to(tmp_path / "cpu")
        np.testing.assert_array_equal(read_image(tmp_path / "gpu" / relative), read_image(path))


def test_pages_on_the_gpu_path_equal_the_cpu_path(tmp_path) -> None:
    model = synth_pages.colorizer_model(tmp_path / "pages.onnx", render_size=64, channels=4)
    cpu = Runtime(model, batch_size=4)
    src = tmp_path / "pages"
    for i, page in enumerate(synth_pages.make_chapter(2, seed=5, size=(300, 220))):
        write_image(src / f"{i:02d}.png", page.image)
    cpu.colorize_pages(src, tmp_path / "cpu", progress=False)
    ops = _CountingOps()
    _gpu(cpu, ops).colorize_pages(src, tmp_path / "gpu", progress=False)
    assert ops.downloads  # the panels' ab came back from the "device"
    for path in sorted((tmp_path / "cpu").glob("*.png")):
        np.testing.assert_array_equal(read_image(tmp_path / "gpu" / path.name), read_image(path))


class HalfSizeOutput(Engine):
    """A model whose output comes at half the render size (as Iizuka et al.'s does)."""

    def __init__(self, inner: Engine) -> None:
        self.inner, self.contract, self.path, self.device = inner, inner.contract, inner.path, "cpu"

    def _infer_impl(self, batch):
        return np.ascontiguousarray(self.inner.infer(batch)[:, :, ::2, ::2])


def test_pages_with_a_half_size_output_on_the_gpu_path_equal_the_cpu_path(tmp_path) -> None:
    model = synth_pages.colorizer_model(tmp_path / "pages.onnx", render_size=64, channels=4)
    half = HalfSizeOutput(Runtime(model).engine)
    src = tmp_path / "pages"
    write_image(src / "00.png", synth_pages.make_chapter(1, seed=6, size=(300, 220))[0].image)
    Runtime(half, batch_size=4).colorize_pages(src, tmp_path / "cpu", progress=False)
    Runtime(StandInCuda(half), batch_size=4).colorize_pages(src, tmp_path / "gpu", progress=False)
    np.testing.assert_array_equal(
        read_image(tmp_path / "gpu" / "00.png"), read_image(tmp_path / "cpu" / "00.png")
    )


# ---------------------------------------------------------------- the CUDA kernels' host twins


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> HostOps:
    """HostOps running colorrt.kernels.cuda's launch code on the kernels' host twins (nvcc)."""
    from tests.kernels import test_cuda

    if test_cuda.NVCC is None:
        pytest.skip("nvcc is not installed")
    folder = tmp_path_factory.mktemp("twins")
    test_cuda._nvcc("--ptx", "-arch=sm_90", "-o", str(folder / "k.ptx"), str(cuda.SOURCE_PATH))
    entries = test_cuda.re.findall(r"\.entry (\w+)\(([^)]*)\)", (folder / "k.ptx").read_text())
    params = {name: test_cuda.re.findall(r"\.param \.(\w+)", p) for name, p in entries}
    library = folder / "libtwins.so"
    flags = ("-shared", "-Xcompiler", "-fPIC,-O2", "-DCOLORRT_HOST_TWINS", "-arch=sm_90")
    test_cuda._nvcc(*flags, "-o", str(library), str(cuda.SOURCE_PATH))
    return HostOps(test_cuda.HostTwins(ctypes.CDLL(str(library)), params))


@pytest.mark.parametrize("temporal", [0.0, 0.6])
def test_the_cuda_kernels_host_twins_in_the_gpu_path(cpu, twins, temporal) -> None:
    frames = list(scene_frames(11, (36, 48), seed=5))
    gpu = Runtime(StandInCuda(cpu.engine, twins), batch_size=3)
    got = list(stream(gpu, frames, temporal=temporal))
    want = list(stream(cpu, frames, temporal=temporal))
    for a, b in zip(got, want, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1
    images = [RNG.integers(0, 256, (30, 40, 3), np.uint8), RNG.integers(0, 256, (17, 23), np.uint8)]
    for a, b in zip(gpu.colorize_batch(images), cpu.colorize_batch(images), strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1


# ---------------------------------------------------------------- on a GPU


def _torch_runtimes(**options) -> tuple[Runtime, Runtime]:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from colorrt.engines.torch import TorchEngine

    arch = dict(random_init=True, options={"ngf": 16})
    gpu = Runtime(TorchEngine("cyclegan-resnet6", device="cuda", **arch, **options), batch_size=4)
    cpu = Runtime(TorchEngine("cyclegan-resnet6", device="cpu", **arch), batch_size=4)
    return gpu, cpu


def _close(got: list[np.ndarray], want: list[np.ndarray], levels: int = 2) -> None:
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= levels


@pytest.mark.requires_cuda
def test_gpu_runtime_takes_the_device_path_and_matches_the_cpu_on_images() -> None:
    from colorrt.kernels.ops import CudaOps

    gpu, cpu = _torch_runtimes()
    assert isinstance(gpu.device_ops, CudaOps)
    images = [RNG.integers(0, 256, (96, 128, 3), np.uint8), RNG.integers(0, 256, (50, 70), np.uint8)]
    images.append(RNG.integers(0, 256, (64, 64, 4), np.uint8))
    _close(gpu.colorize_batch(images), cpu.colorize_batch(images))
    assert gpu.__dict__.get("_device_images") is not None  # they went through the device kernels


@pytest.mark.requires_cuda
@pytest.mark.parametrize("temporal", [0.0, 0.6])
def test_gpu_stream_with_cuda_graphs_matches_the_cpu(temporal) -> None:
    gpu, cpu = _torch_runtimes(cuda_graphs=True)
    frames = list(scene_frames(21, (72, 96), [10], seed=6, pan=2))  # a short last batch
    _close(list(stream(gpu, frames, temporal=temporal)), list(stream(cpu, frames, temporal=temporal)))


@pytest.mark.requires_cuda
def test_gpu_film_and_folder_match_the_cpu(tmp_path: Path) -> None:
    gpu, cpu = _torch_runtimes()
    clip = tmp_path / "clip.mp4"
    write_video(clip, scene_frames(20, (72, 96), [10], seed=7, pan=2), fps=24)
    for runtime, name in ((gpu, "gpu"), (cpu, "cpu")):
        runtime.colorize_video(clip, tmp_path / f"{name}.mkv", codec="ffv1", progress=False)
    _close(read_frames(tmp_path / "gpu.mkv")[0], read_frames(tmp_path / "cpu.mkv")[0], levels=3)
    src = tmp_path / "in"
    for i, shape in enumerate([(40, 56, 3), (33, 47), (40, 56, 3)]):
        write_image(src / f"{i}.png", RNG.integers(0, 256, shape, np.uint8))
    gpu.colorize_folder(src, tmp_path / "gpu", progress=False)
    cpu.colorize_folder(src, tmp_path / "cpu", progress=False)
    _close(
        [read_image(p) for p in sorted((tmp_path / "gpu").glob("*.png"))],
        [read_image(p) for p in sorted((tmp_path / "cpu").glob("*.png"))],
    )


@pytest.mark.requires_cuda
def test_gpu_pages_match_the_cpu(tmp_path: Path) -> None:
    gpu, cpu = _torch_runtimes()
    src = tmp_path / "pages"
    for i, page in enumerate(synth_pages.make_chapter(2, seed=5, size=(300, 220))):
        write_image(src / f"{i:02d}.png", page.image)
    gpu.colorize_pages(src, tmp_path / "gpu", progress=False)
    cpu.colorize_pages(src, tmp_path / "cpu", progress=False)
    _close(
        [read_image(p) for p in sorted((tmp_path / "gpu").glob("*.png"))],
        [read_image(p) for p in sorted((tmp_path / "cpu").glob("*.png"))],
    )
