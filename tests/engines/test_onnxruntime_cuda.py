"""ONNX Runtime on CUDA: clear errors where there is no CUDA provider (here), parity on a GPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.engines.onnxruntime_cuda import OnnxRuntimeCudaEngine, cuda_available, onnxruntime_engine
from colorrt.errors import BackendError, InputError, MissingDependencyError
from tests import zoo

HAS_CUDA_PROVIDER = "CUDAExecutionProvider" in ort.get_available_providers()
needs_cuda_provider = pytest.mark.skipif(not HAS_CUDA_PROVIDER, reason="onnxruntime has no CUDA provider")
RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return {"ab": zoo.ab_model(folder / "ab.onnx"), "bins": zoo.bins_model(folder / "bins.onnx")}


def _batch(n: int = 2, h: int = 16, w: int = 24) -> np.ndarray:
    return (RNG.random((n, 1, h, w), dtype=np.float32) * 2 - 1).astype(np.float32)


@pytest.mark.skipif(HAS_CUDA_PROVIDER, reason="this onnxruntime has the CUDA provider")
def test_missing_cuda_provider_names_the_package_and_the_cpu_path(models) -> None:
    with pytest.raises(MissingDependencyError) as caught:
        OnnxRuntimeCudaEngine(models["ab"])
    message = str(caught.value)
    assert "CUDAExecutionProvider" in message and "CPUExecutionProvider" in message
    assert "pip install 'colorrt[gpu]'" in message and "device='cpu'" in message
    with pytest.raises(MissingDependencyError):
        onnxruntime_engine(models["ab"], device="cuda")


def test_auto_and_cpu_pick_the_cpu_engine_without_a_gpu(models) -> None:
    if cuda_available():
        pytest.skip("a GPU and the CUDA provider are here")
    engine = onnxruntime_engine(models["ab"], device="auto", threads=1)
    assert type(engine) is OnnxRuntimeEngine and engine.device == "cpu"
    x = _batch()
    np.testing.assert_array_equal(engine.infer(x), onnxruntime_engine(models["ab"], device="cpu").infer(x))
    with pytest.raises(InputError, match="apply to the CUDA engine"):
        onnxruntime_engine(models["ab"], device="cpu", cuda_graphs=True)


def test_device_cpu_is_refused_by_the_cuda_engine(models) -> None:
    with pytest.raises(BackendError, match="OnnxRuntimeEngine"):
        OnnxRuntimeCudaEngine(models["ab"], device="cpu")
    with pytest.raises(BackendError, match="unknown device"):
        onnxruntime_engine(models["ab"], device="tpu")


# ---------------------------------------------------------------- GPU


@needs_cuda_provider
@pytest.mark.requires_cuda
@pytest.mark.parametrize("cuda_graphs", [False, True])
@pytest.mark.parametrize("name", ["ab", "bins"])
def test_cuda_matches_cpu_for_numpy_and_cupy(models, name, cuda_graphs) -> None:
    import cupy as cp

    cpu = OnnxRuntimeEngine(models[name])
    with OnnxRuntimeCudaEngine(models[name], cuda_graphs=cuda_graphs, max_graphs=2) as engine:
        for shape in [(2, 16, 24), (2, 16, 24), (1, 8, 8), (2, 16, 24), (3, 12, 12)]:
            x = _batch(*shape)
            expected = cpu.infer(x)
            from_numpy = engine.infer(x)
            assert isinstance(from_numpy, np.ndarray)
            np.testing.assert_allclose(from_numpy, expected, atol=1e-4)
            stream = cp.cuda.Stream(non_blocking=True)
            with stream:
                from_cupy = engine.infer(cp.asarray(x))
            assert isinstance(from_cupy, cp.ndarray) and from_cupy.dtype == cp.float32
            np.testing.assert_allclose(from_cupy.get(), expected, atol=1e-4)
        assert engine.graphs_captured == (2 if cuda_graphs else 0)
