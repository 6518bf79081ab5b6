"""TorchEngine: parity with ONNX Runtime on exported CycleGAN ResNets, precisions, layouts, loading, errors.

CPU tests run everywhere; ``requires_cuda`` tests (CUDA graphs, DLPack with CuPy, FP16 on the GPU)
need an NVIDIA GPU with a CUDA build of torch and CuPy.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from colorrt.engines.registry import load_engine  # noqa: E402
from colorrt.engines.torch import TorchEngine, _cudnn_settings, _Float32Norm  # noqa: E402
from colorrt.errors import BackendError, ContractError, InputError, ModelError  # noqa: E402
from colorrt.export import export  # noqa: E402
from colorrt.kernels import pipeline  # noqa: E402
from colorrt.kernels.cuda import CudaUnavailableError  # noqa: E402
from colorrt.models import build_model  # noqa: E402
from colorrt.runtime.runtime import Runtime  # noqa: E402

FP32_TOL = 1e-4  # the FP32 parity bound, model output units
SMALL = {"ngf": 8}  # a narrow ResNet-6 keeps the slow CPU FP16/BF16 convolutions fast
RNG = np.random.default_rng(3)
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")


def _grey_batch(n: int = 2, side: int = 64) -> np.ndarray:
    return (RNG.random((n, 3, side, side), dtype=np.float32) * 2 - 1).astype(np.float32)


class Tiny(torch.nn.Module):
    """L -> ab/110 in two convolutions (for the module and compile tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.b(torch.relu(self.a(x))))


@pytest.fixture(scope="module")
def resnet6() -> TorchEngine:
    return TorchEngine("cyclegan-resnet6", random_init=True, seed=0, device="cpu")


@pytest.mark.parametrize(("arch", "options"), [("cyclegan-resnet6", None), ("cyclegan-resnet9", {"ngf": 16})])
def test_fp32_matches_onnxruntime_on_the_exported_model(tmp_path, arch, options) -> None:
    exported = export(
        arch, output=tmp_path / "m.onnx", random_init=True, size=64, seed=0, check=False, options=options
    )
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    x = _grey_batch(1, 64)
    (expected,) = session.run(None, {"input": x})
    with TorchEngine(arch, random_init=True, seed=0, options=options, device="cpu") as engine:
        got = engine.infer(x)
        assert engine.contract == exported.contract.replace(render_size=256) and engine.device == "cpu"
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() <= FP32_TOL


def test_returns_the_kind_it_was_given(resnet6) -> None:
    x = _grey_batch(1, 32)
    from_numpy = resnet6.infer(x)
    from_tensor = resnet6.infer(torch.from_numpy(x))
    from_half = resnet6.infer(x.astype(np.float16))
    assert isinstance(from_numpy, np.ndarray) and isinstance(from_tensor, torch.Tensor)
    assert from_tensor.dtype == torch.float32 and from_tensor.is_contiguous()
    np.testing.assert_array_equal(from_tensor.numpy(), from_numpy)
    assert from_half.dtype == np.float32 and np.abs(from_half - from_numpy).max() < 0.05
    with pytest.raises(InputError, match="3 channels"):
        resnet6.infer(np.zeros((1, 1, 32, 32), np.float32))


def test_channels_last_gives_the_same_output(resnet6) -> None:
    x = _grey_batch(1, 48)
    with TorchEngine(
        "cyclegan-resnet6", random_init=True, seed=0, device="cpu", channels_last=True
    ) as engine:
        got = engine.infer(x)
    assert np.abs(got - resnet6.infer(x)).max() <= FP32_TOL


@pytest.mark.parametrize(("dtype", "max_error"), [("bf16", 0.15), ("fp16", 0.03)])
def test_lower_precision_on_cpu_is_close_and_keeps_norms_float32(dtype, max_error) -> None:
    x = _grey_batch(1, 32)
    reference = TorchEngine("cyclegan-resnet6", random_init=True, device="cpu", options=SMALL).infer(x)
    with TorchEngine(
        "cyclegan-resnet6", random_init=True, device="cpu", options=SMALL, dtype=dtype
    ) as engine:
        got = engine.infer(x)
        norms = [m for m in engine._module.modules() if isinstance(m, _Float32Norm)]
        instance_norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in engine._module.modules())
        assert engine.precision == dtype and len(norms) == instance_norms == 1 + 2 + 6 * 2 + 2
        convs = [m for m in engine._module.modules() if isinstance(m, torch.nn.Conv2d)]
        assert {c.weight.dtype for c in convs} == {engine.torch_dtype}
    error = np.abs(got - reference)
    assert got.dtype == np.float32
    assert 0 < error.max() <= max_error and error.mean() <= max_error / 4  # it did run in low precision


def test_checkpoint_path_through_load_engine(tmp_path) -> None:
    net = build_model("cyclegan-resnet6", random_init=True, seed=5, options=SMALL)
    path = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), path)
    engine = load_engine(path, device="cpu", arch="cyclegan-resnet6", options=SMALL)
    assert isinstance(engine, TorchEngine) and engine.contract.name == "cyclegan-rgb"
    x = _grey_batch(1, 32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(engine.infer(x), expected, atol=1e-6)
    with pytest.raises(ModelError, match="needs its architecture") as caught:
        load_engine(path, device="cpu")
    assert "cyclegan-resnet9" in str(caught.value)


def test_a_module_needs_a_contract_and_takes_a_preset_name() -> None:
    with pytest.raises(ContractError, match="pass contract=NAME"):
        TorchEngine(Tiny(), device="cpu")
    engine = TorchEngine(Tiny().eval(), contract="pix2pix-colorization", device="cpu")
    out = engine.infer(RNG.random((2, 1, 8, 8), dtype=np.float32))
    assert out.shape == (2, 2, 8, 8) and engine.contract.output_kind == "ab"


def test_runtime_colorizes_with_the_torch_engine() -> None:
    engine = TorchEngine("cyclegan-resnet6", random_init=True, device="cpu", options=SMALL)
    image = RNG.integers(0, 256, size=(36, 44, 3), dtype=np.uint8)
    with Runtime(engine) as runtime:
        colour = runtime.colorize(image)
    assert colour.shape == image.shape and colour.dtype == np.uint8
    # Only chroma comes from the model: the full-resolution lightness is the input's.
    assert np.abs(pipeline.luminance(colour) - pipeline.luminance(image)).max() < 1.0


def test_torch_compile_matches_eager() -> None:
    model = Tiny().eval()
    x = RNG.random((2, 1, 16, 16), dtype=np.float32)
    eager = TorchEngine(model, contract="pix2pix-colorization", device="cpu").infer(x)
    # The eager backend traces with dynamo (graph capture, guards) without the slow C++ build.
    compiled = TorchEngine(model, contract="pix2pix-colorization", device="cpu", compile={"backend": "eager"})
    np.testing.assert_allclose(compiled.infer(x), eager, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("COLORRT_TEST_COMPILE"), reason="inductor takes ~75 s on 2 CPU cores; "
                    "set COLORRT_TEST_COMPILE=1")  # fmt: skip
def test_torch_compile_with_inductor_matches_eager() -> None:
    model = Tiny().eval()
    x = RNG.random((2, 1, 16, 16), dtype=np.float32)
    eager = TorchEngine(model, contract="pix2pix-colorization", device="cpu").infer(x)
    compiled = TorchEngine(model, contract="pix2pix-colorization", device="cpu", compile=True)
    np.testing.assert_allclose(compiled.infer(x), eager, atol=1e-5)


def test_loading_errors_say_what_to_do(tmp_path) -> None:
    with pytest.raises(ModelError, match="did you mean 'cyclegan-resnet9'"):
        TorchEngine("cyclegan-resnet99", random_init=True, device="cpu")
    with pytest.raises(BackendError, match="backend='onnxruntime'"):
        TorchEngine(tmp_path / "m.onnx", device="cpu")
    with pytest.raises(InputError, match="dtype must be one of fp32, fp16, bf16"):
        TorchEngine("cyclegan-resnet6", random_init=True, dtype="int8")
    with pytest.raises(InputError, match="arch='cyclegan-resnet9'"):
        TorchEngine("cyclegan-resnet6", arch="cyclegan-resnet9", random_init=True)
    with pytest.raises(InputError, match="needs weights"):
        TorchEngine("cyclegan-resnet6", device="cpu")
    with pytest.raises(BackendError, match="unknown device 'tpu'"):
        TorchEngine("cyclegan-resnet6", random_init=True, device="tpu")
    with pytest.raises(InputError, match="nn.Module that is built already"):
        TorchEngine(Tiny(), contract="pix2pix-colorization", random_init=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_no_cuda_device_is_one_clear_error() -> None:
    with pytest.raises(CudaUnavailableError) as caught:
        TorchEngine("cyclegan-resnet6", random_init=True, device="cuda")
    message = str(caught.value)
    assert "torch sees no CUDA device" in message and "device='cpu'" in message
    with pytest.raises(InputError, match="cuda_graphs needs the GPU"):
        TorchEngine("cyclegan-resnet6", random_init=True, device="auto", cuda_graphs=True)


def test_cudnn_settings_are_scoped_to_the_call() -> None:
    cudnn = torch.backends.cudnn
    if not hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        pytest.skip("this torch has only the legacy allow_tf32 flag")
    before = (cudnn.benchmark, cudnn.conv.fp32_precision)
    with _cudnn_settings(tf32=False):
        assert cudnn.benchmark and cudnn.conv.fp32_precision == "ieee"
    with _cudnn_settings(tf32=True):
        assert cudnn.conv.fp32_precision == "tf32"
    assert (cudnn.benchmark, cudnn.conv.fp32_precision) == before


def test_a_closed_engine_refuses_work() -> None:
    engine = TorchEngine(Tiny(), contract="pix2pix-colorization", device="cpu")
    engine.close()
    with pytest.raises(BackendError, match="closed"):
        engine.infer(np.zeros((1, 1, 8, 8), np.float32))


# ---------------------------------------------------------------- GPU


@gpu
@pytest.mark.requires_cuda
def test_cuda_fp32_matches_cpu_and_fp16_is_close(resnet6) -> None:
    x = _grey_batch(2, 64)
    expected = resnet6.infer(x)
    with TorchEngine("cyclegan-resnet6", random_init=True, seed=0, device="cuda") as engine:
        assert engine.device == "cuda"
        assert np.abs(engine.infer(x) - expected).max() <= 1e-3  # TF32 off: FP32 convolutions
    for layout in (False, True):
        with TorchEngine("cyclegan-resnet6", random_init=True, seed=0, device="cuda", dtype="fp16",
                         channels_last=layout) as engine:  # fmt: skip
            assert np.abs(engine.infer(x) - expected).max() <= 0.05


@gpu
@pytest.mark.requires_cuda
def test_cuda_graphs_replay_per_shape_and_match_eager() -> None:
    eager = TorchEngine("cyclegan-resnet6", random_init=True, seed=0, device="cuda")
    graphs = TorchEngine(
        "cyclegan-resnet6", random_init=True, seed=0, device="cuda", cuda_graphs=True, max_graphs=2
    )
    for side in (64, 64, 32, 64, 48):  # third shape evicts the least recently used one
        x = torch.from_numpy(_grey_batch(2, side)).cuda()
        out = graphs.infer(x)
        assert out.device.type == "cuda"
        torch.testing.assert_close(out, eager.infer(x), atol=1e-4, rtol=0)
    assert graphs.graphs_captured == 2
    first = graphs.infer(torch.ones(1, 3, 32, 32, device="cuda"))
    second = graphs.infer(torch.zeros(1, 3, 32, 32, device="cuda"))
    assert not torch.equal(first, second)  # replay outputs are copies, not the static buffer


@gpu
@pytest.mark.requires_cuda
def test_cupy_arrays_go_through_dlpack_on_the_current_stream() -> None:
    import cupy as cp

    engine = TorchEngine("cyclegan-resnet6", random_init=True, seed=0, device="cuda", cuda_graphs=True)
    x = _grey_batch(2, 64)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        batch = cp.asarray(x)
        out = engine.infer(batch)
        assert isinstance(out, cp.ndarray) and out.dtype == cp.float32 and out.shape == (2, 3, 64, 64)
        shared = torch.from_dlpack(out)
        assert shared.data_ptr() == out.data.ptr  # zero copy
    stream.synchronize()
    np.testing.assert_allclose(out.get(), engine.infer(x), atol=1e-4)
