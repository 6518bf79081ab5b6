"""GPU batch loop: refuses CPU engines and explains a missing GPU (here); on a GPU, matches the CPU path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from colorrt.contract import PRESETS
from colorrt.engines.base import Engine
from colorrt.errors import InputError, MissingDependencyError
from colorrt.kernels import pipeline
from colorrt.kernels.cuda import CudaUnavailableError
from colorrt.runtime.gpu_loop import GpuBatchLoop, LoopStats

RNG = np.random.default_rng(5)


class ZeroChroma(Engine):
    """A CUDA-side engine whose model returns zero chroma (ab = 0) for any batch."""

    name = "zero-chroma"
    device = "cuda"
    contract = PRESETS["pix2pix-colorization"].replace(size_rule="multiple", render_size=32, multiple=4)

    def _infer_impl(self, batch):
        shape = (batch.shape[0], 2, *batch.shape[2:])
        if isinstance(batch, np.ndarray):
            return np.zeros(shape, dtype=np.float32)
        import cupy

        return cupy.zeros(shape, dtype=np.float32)


class CpuEngine(ZeroChroma):
    device = "cpu"


def test_the_loop_needs_a_cuda_engine() -> None:
    with pytest.raises(InputError, match="needs an engine on CUDA"):
        GpuBatchLoop(CpuEngine())


def _expected_gpu_error() -> type[Exception] | None:
    """The error this machine gives for a GPU loop: no CuPy, no usable device, or None (a GPU is here)."""
    if importlib.util.find_spec("cupy") is None:
        return MissingDependencyError
    import cupy

    try:
        return None if cupy.cuda.runtime.getDeviceCount() > 0 else CudaUnavailableError
    except cupy.cuda.runtime.CUDARuntimeError:
        return CudaUnavailableError


def test_without_cupy_or_gpu_the_error_says_what_to_do() -> None:
    expected = _expected_gpu_error()
    if expected is None:
        pytest.skip("a CUDA device is present")
    with pytest.raises(expected) as caught:
        GpuBatchLoop(ZeroChroma())
    assert "device='cpu'" in str(caught.value)


def test_stats_fps() -> None:
    assert LoopStats(frames=30, seconds=2.0).fps == 15.0 and LoopStats().fps == 0.0


# ---------------------------------------------------------------- GPU


def _frames(count: int, h: int, w: int) -> list[np.ndarray]:
    return [RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.requires_cuda
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_zero_chroma_gives_the_greys_of_the_input_in_order(depth) -> None:
    frames = _frames(11, 40, 56) + _frames(3, 24, 24)  # partial batches and a size change
    with GpuBatchLoop(ZeroChroma(), batch_size=4, depth=depth) as loop:
        out = list(loop.run(iter(frames)))
    assert len(out) == len(frames) and loop.stats.frames == len(frames) and loop.stats.batches == 3 + 1
    for frame, colour in zip(frames, out, strict=True):
        expected = pipeline.merge(pipeline.luminance(frame), np.zeros((2, 8, 8), np.float32))
        assert colour.shape == frame.shape and np.abs(colour.astype(int) - expected).max() <= 1


@pytest.mark.requires_cuda
def test_device_frames_and_device_output() -> None:
    import cupy as cp

    frames = _frames(5, 32, 48)
    with GpuBatchLoop(ZeroChroma(), batch_size=2, output="cupy") as loop:
        out = list(loop.run(cp.asarray(f) for f in frames))
    assert all(isinstance(o, cp.ndarray) for o in out)
    for frame, colour in zip(frames, out, strict=True):
        expected = pipeline.merge(pipeline.luminance(frame), np.zeros((2, 8, 8), np.float32))
        assert np.abs(colour.get().astype(int) - expected).max() <= 1


@pytest.mark.requires_cuda
def test_host_frames_to_device_output_across_a_size_change() -> None:
    import cupy as cp

    frames = _frames(5, 32, 48) + _frames(3, 24, 40)  # the first slots are dropped mid-run
    with GpuBatchLoop(ZeroChroma(), batch_size=2, output="cupy") as loop:
        out = list(loop.run(iter(frames)))
    assert all(isinstance(o, cp.ndarray) for o in out)
    for frame, colour in zip(frames, out, strict=True):
        expected = pipeline.merge(pipeline.luminance(frame), np.zeros((2, 8, 8), np.float32))
        assert np.abs(colour.get().astype(int) - expected).max() <= 1


@pytest.mark.requires_cuda
def test_torch_tensor_frames_come_in_through_dlpack() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    frames = _frames(5, 32, 48)
    with GpuBatchLoop(ZeroChroma(), batch_size=2) as loop:
        out = list(loop.run(torch.from_numpy(f).cuda() for f in frames))  # torch dtypes, no NumPy dtype
    for frame, colour in zip(frames, out, strict=True):
        expected = pipeline.merge(pipeline.luminance(frame), np.zeros((2, 8, 8), np.float32))
        assert np.abs(colour.astype(int) - expected).max() <= 1


@pytest.mark.requires_cuda
def test_torch_engine_in_the_loop_matches_the_cpu_pipeline() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from colorrt.engines.torch import TorchEngine

    options = {"ngf": 16}
    gpu = TorchEngine("cyclegan-resnet6", random_init=True, device="cuda", options=options, cuda_graphs=True)
    cpu = TorchEngine("cyclegan-resnet6", random_init=True, device="cpu", options=options)
    frames = _frames(6, 48, 64)
    with GpuBatchLoop(gpu, batch_size=4) as loop:
        out = list(loop.run(frames))
    lightness = [pipeline.luminance(f) for f in frames]
    batch = pipeline.preprocess(lightness, gpu.contract)
    expected = pipeline.postprocess(cpu.infer(batch), lightness, gpu.contract)
    for colour, reference in zip(out, expected, strict=True):
        assert np.abs(colour.astype(int) - reference).max() <= 2
