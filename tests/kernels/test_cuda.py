"""GPU kernels (colorrt.kernels.cuda) against the NumPy reference.

Every parity test runs twice: on the kernels' host twins (the same CUDA C source compiled for the
CPU with nvcc, so the maths and the Python launch code are checked on any machine with nvcc) and,
marked ``requires_cuda``, through CuPy on a real GPU. The launch ABI (argument count, sizes and
float/int kinds) is checked against the PTX nvcc emits for the kernels.
"""

from __future__ import annotations

import ctypes
import importlib.util
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from colorrt.contract import PRESETS, ColorContract, eccv16_contract
from colorrt.errors import ContractError, InputError, MissingDependencyError
from colorrt.kernels import cuda
from colorrt.kernels import pipeline as ref
from colorrt.kernels import resize as ref_resize

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
RNG = np.random.default_rng(7)
L_TOL = 1e-3  # Lab / L floats, the bound
U8_TOL = 1  # uint8 levels

AB = PRESETS["pix2pix-colorization"].replace(size_rule="multiple", render_size=24, multiple=4)
GRAY = PRESETS["cyclegan-rgb"].replace(render_size=24)
HINTS = PRESETS["siggraph17"].replace(render_size=16)
BINS = eccv16_contract(RNG.uniform(-90, 90, size=(40, 2)).round(1)).replace(render_size=16)


# ---------------------------------------------------------------- nvcc: compile, PTX, host twins


def _nvcc(*args: str) -> None:
    result = subprocess.run([NVCC, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nvcc failed:\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def ptx_params(tmp_path_factory) -> dict[str, list[str]]:
    """Parameter types (u32/u64/f32) of each kernel entry in the PTX nvcc makes for sm_90."""
    if NVCC is None:
        pytest.skip("nvcc is not installed")
    ptx = tmp_path_factory.mktemp("ptx") / "kernels.ptx"
    _nvcc("--ptx", "-arch=sm_90", "-o", str(ptx), str(cuda.SOURCE_PATH))
    entries = re.findall(r"\.entry (\w+)\(([^)]*)\)", ptx.read_text())
    return {name: re.findall(r"\.param \.(\w+)", params) for name, params in entries}


@needs_nvcc
def test_source_compiles_with_every_kernel_the_module_launches(ptx_params) -> None:
    assert set(ptx_params) == set(cuda.KERNELS)
    assert all(params[-1] == "u64" for params in ptx_params.values())  # the i64 count comes last


class HostTwins:
    """Launcher running the kernels' host twins (``host_<name>``) on NumPy arrays via ctypes."""

    xp = np

    def __init__(self, library: ctypes.CDLL, params: dict[str, list[str]]) -> None:
        self.library = library
        self.params = params
        self._constants: dict = {}

    def launch(self, name: str, count: int, *args) -> None:
        args = (*args, np.int64(count))
        expected = self.params[name]
        assert len(args) == len(expected), f"{name}: {len(args)} arguments, the kernel takes {len(expected)}"
        converted = [
            _c_argument(name, i, a, kind) for i, (a, kind) in enumerate(zip(args, expected, strict=True))
        ]
        getattr(self.library, f"host_{name}")(*converted)

    def constant(self, key, build):
        if key not in self._constants:
            table = np.ascontiguousarray(build())
            table.flags.writeable = False
            self._constants[key] = table
        return self._constants[key]


def _c_argument(name: str, index: int, value, kind: str):
    where = f"{name} argument {index}"
    if isinstance(value, np.ndarray):
        assert kind == "u64", f"{where}: an array where the kernel takes .{kind}"
        assert value.flags.c_contiguous, f"{where}: the kernels need C-contiguous arrays"
        return ctypes.c_void_p(value.ctypes.data)
    expected = {"u32": np.int32, "f32": np.float32, "u64": np.int64}[kind]
    assert type(value) is expected, f"{where}: {type(value).__name__} where the kernel takes .{kind}"
    return {"u32": ctypes.c_int, "f32": ctypes.c_float, "u64": ctypes.c_longlong}[kind](value.item())


@pytest.fixture(scope="module")
def host_twins(tmp_path_factory, ptx_params) -> HostTwins:
    library = tmp_path_factory.mktemp("twins") / "libcolorrt_twins.so"
    _nvcc(
        "-shared",
        "-Xcompiler",
        "-fPIC,-O2",
        "-DCOLORRT_HOST_TWINS",
        "-arch=sm_90",
        "-o",
        str(library),
        str(cuda.SOURCE_PATH),
    )
    return HostTwins(ctypes.CDLL(str(library)), ptx_params)


class Device:
    """A launcher and the two transfers a test needs (identity for the host twins)."""

    def __init__(self, launcher) -> None:
        self.launcher = launcher
        self.xp = launcher.xp

    def put(self, array: np.ndarray):
        return self.xp.asarray(array)

    @staticmethod
    def get(array) -> np.ndarray:
        return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else array


@pytest.fixture(params=["host", pytest.param("gpu", marks=pytest.mark.requires_cuda)])
def dev(request) -> Device:
    if request.param == "host":
        if NVCC is None:
            pytest.skip("nvcc is not installed")
        return Device(request.getfixturevalue("host_twins"))
    return Device(cuda.launcher_for())


def _frames(n: int, h: int, w: int, channels: int | None = 3, dtype=np.uint8) -> np.ndarray:
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    if dtype == np.uint8:
        return RNG.integers(0, 256, size=shape, dtype=np.uint8)
    if dtype == np.uint16:
        return RNG.integers(0, 65536, size=shape, dtype=np.uint16)
    return RNG.random(shape, dtype=np.float32)


# ---------------------------------------------------------------- image -> L


@pytest.mark.parametrize(
    ("channels", "dtype"),
    [(3, np.uint8), (4, np.uint8), (None, np.uint8), (1, np.uint8), (3, np.uint16), (None, np.uint16)]
    + [(3, np.float32), (None, np.float32)],
)
def test_luminance_batch_matches_reference(dev, channels, dtype) -> None:
    frames = _frames(2, 9, 13, channels, dtype)
    got = dev.get(cuda.luminance_batch(dev.put(frames), launcher=dev.launcher))
    expected = np.stack([ref.luminance(f) for f in frames])
    assert got.dtype == np.float32 and got.shape == (2, 9, 13)
    np.testing.assert_allclose(got, expected, rtol=0, atol=L_TOL)


def test_luminance_of_one_image_and_its_errors(dev) -> None:
    image = _frames(1, 5, 7)[0]
    got = dev.get(cuda.luminance(dev.put(image), launcher=dev.launcher))
    np.testing.assert_allclose(got, ref.luminance(image), atol=L_TOL)
    with pytest.raises(InputError, match="H x W grey"):
        cuda.luminance(dev.put(np.zeros((4, 4, 2), np.uint8)), launcher=dev.launcher)
    with pytest.raises(InputError, match="values must be in 0..1"):
        cuda.luminance_batch(dev.put(np.full((1, 2, 2, 3), 200.0, np.float32)), launcher=dev.launcher)
    with pytest.raises(InputError, match="unsupported pixel type"):
        cuda.luminance_batch(dev.put(np.zeros((1, 2, 2), np.int32)), launcher=dev.launcher)
    with pytest.raises(InputError, match="image batch is empty"):
        cuda.luminance_batch(dev.put(np.zeros((0, 2, 2), np.uint8)), launcher=dev.launcher)


def test_luminance_batch_writes_into_out_and_checks_it(dev) -> None:
    frames = dev.put(_frames(2, 4, 6))
    out = dev.xp.zeros((2, 4, 6), dtype=np.float32)
    assert cuda.luminance_batch(frames, out=out, launcher=dev.launcher) is out
    assert float(abs(out).max()) > 0
    with pytest.raises(InputError, match="out must be"):
        cuda.luminance_batch(frames, out=dev.xp.zeros((2, 4, 5), np.float32), launcher=dev.launcher)


# ---------------------------------------------------------------- resize


@pytest.mark.parametrize(("size", "antialias"), [((7, 30), True), ((40, 9), True), ((7, 30), False)])
def test_resize_matches_reference(dev, size, antialias) -> None:
    planes = RNG.random((2, 3, 19, 23), dtype=np.float32) * 100
    got = dev.get(cuda.resize_bilinear(dev.put(planes), size, antialias, launcher=dev.launcher))
    expected = ref_resize.resize_bilinear(planes, size, antialias)
    assert got.shape == (2, 3, *size)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_resize_rejects_bad_arguments(dev) -> None:
    with pytest.raises(InputError, match="float32 or float64"):
        cuda.resize_bilinear(dev.put(np.zeros((4, 4), np.uint8)), (2, 2), launcher=dev.launcher)
    with pytest.raises(InputError, match="positive"):
        cuda.resize_bilinear(dev.put(np.zeros((4, 4), np.float32)), (0, 2), launcher=dev.launcher)


# ---------------------------------------------------------------- preprocess


def _planes(n: int, h: int, w: int) -> np.ndarray:
    return np.stack([ref.luminance(f) for f in _frames(n, h, w)])


@pytest.mark.parametrize("contract", [AB, GRAY, HINTS], ids=lambda c: c.input_space)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_preprocess_matches_reference(dev, contract, dtype) -> None:
    planes = _planes(3, 45, 61)
    got = dev.get(cuda.preprocess(dev.put(planes), contract, dtype=dtype, launcher=dev.launcher))
    expected = ref.preprocess(list(planes), contract, dtype=dtype)
    assert got.dtype == dtype and got.shape == expected.shape
    tolerance = 1e-4 if dtype == np.float32 else 2e-3  # normalized units; fp16 allows one rounding step
    np.testing.assert_allclose(got.astype(np.float32), expected.astype(np.float32), atol=tolerance)


def test_preprocess_of_a_list_of_sizes_and_of_hints(dev) -> None:
    planes = [_planes(1, 40, 40)[0], _planes(1, 33, 29)[0]]  # fixed render: any sizes batch together
    hint = np.zeros((33, 29, 3), np.float32)
    hint[10:12, 5:8] = (40.0, -25.0, 1.0)
    hints = [None, hint]
    got = cuda.preprocess([dev.put(p) for p in planes], HINTS, [None, dev.put(hint)], launcher=dev.launcher)
    expected = ref.preprocess(planes, HINTS, hints)
    np.testing.assert_allclose(dev.get(got), expected, atol=1e-4)
    assert np.count_nonzero(expected[1, 3] > 0) > 0  # the hint survived the downscale


def test_preprocess_float16_rounding_is_exact(dev) -> None:
    identity = ColorContract(name="identity", input_scale=1.0, input_offset=0.0, render_size=4)
    values = [0.0, -1.5, 1e-8, 3e-5, 6.1e-5, 1 + 2**-11, 1 + 3 * 2**-11, 2049.0, 65504.0, 65520.0, 70000.0]
    values += list(RNG.normal(0, 50, size=16 - len(values)))
    plane = np.asarray(values, np.float32).reshape(4, 4)
    got = dev.get(cuda.preprocess(dev.put(plane[None]), identity, dtype=np.float16, launcher=dev.launcher))
    with np.errstate(over="ignore"):  # 70000 overflows to inf on purpose
        expected = plane.astype(np.float16)
    np.testing.assert_array_equal(got[0, 0].view(np.uint16), expected.view(np.uint16))


def test_preprocess_errors(dev) -> None:
    with pytest.raises(InputError, match="different shapes"):
        cuda.preprocess([dev.put(np.ones((8, 8), np.float32)), dev.put(np.ones((8, 16), np.float32))], AB,
                        launcher=dev.launcher)  # fmt: skip
    with pytest.raises(InputError, match="empty batch"):
        cuda.preprocess([], AB, launcher=dev.launcher)
    with pytest.raises(InputError, match="dtype"):
        cuda.preprocess(dev.put(np.ones((1, 8, 8), np.float32)), AB, dtype=np.int8, launcher=dev.launcher)
    with pytest.raises(InputError, match="hints"):
        cuda.preprocess(
            dev.put(np.ones((1, 8, 8), np.float32)), AB, [np.ones((8, 8, 3))], launcher=dev.launcher
        )


def test_preprocess_frames_is_luminance_then_preprocess(dev) -> None:
    frames = _frames(2, 30, 50)
    batch, lightness = cuda.preprocess_frames(dev.put(frames), GRAY, dtype=np.float16, launcher=dev.launcher)
    expected_l = np.stack([ref.luminance(f) for f in frames])
    np.testing.assert_allclose(dev.get(lightness), expected_l, atol=L_TOL)
    expected = ref.preprocess(list(expected_l), GRAY, dtype=np.float16)
    np.testing.assert_allclose(dev.get(batch).astype(np.float32), expected.astype(np.float32), atol=2e-3)


# ---------------------------------------------------------------- decode_ab, merge, postprocess


def _model_output(contract: ColorContract, n: int, h: int, w: int) -> np.ndarray:
    channels = contract.output_channels
    if contract.output_kind == "ab_bins":
        return RNG.normal(0, 2, size=(n, channels, h, w)).astype(np.float32)
    return np.tanh(RNG.normal(0, 0.7, size=(n, channels, h, w))).astype(np.float32)


@pytest.mark.parametrize("contract", [AB, GRAY, BINS], ids=lambda c: c.output_kind)
def test_decode_ab_matches_reference(dev, contract) -> None:
    output = _model_output(contract, 2, 8, 12)
    got = dev.get(cuda.decode_ab(dev.put(output), contract, launcher=dev.launcher))
    expected = ref.decode_ab(output, contract)
    assert got.shape == (2, 2, 8, 12) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=L_TOL)


def test_decode_ab_checks_the_output(dev) -> None:
    with pytest.raises(ContractError, match="expects 2 output channels"):
        cuda.decode_ab(dev.put(np.zeros((1, 3, 4, 4), np.float32)), AB, launcher=dev.launcher)
    with pytest.raises(InputError, match="NCHW"):
        cuda.decode_ab(dev.put(np.zeros((3, 4, 4), np.float32)), AB, launcher=dev.launcher)


def _assert_u8_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == np.uint8 and got.shape == expected.shape
    difference = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    assert difference.max() <= U8_TOL
    assert np.mean(difference > 0) < 0.01  # off-by-one only at rounding boundaries


@pytest.mark.parametrize("ab_size", [(12, 20), (48, 80), (50, 70)], ids=["up", "same", "down"])
def test_merge_matches_reference(dev, ab_size) -> None:
    lightness = _planes(1, 48, 80)[0]
    ab = RNG.uniform(-60, 60, size=(2, *ab_size)).astype(np.float32)
    got = dev.get(cuda.merge(dev.put(lightness), dev.put(ab), launcher=dev.launcher))
    _assert_u8_close(got, ref.merge(lightness, ab))


def test_merge_of_extreme_values_stays_in_range(dev) -> None:
    lightness = np.array([[0.0, 100.0, 50.0, -5.0], [105.0, 30.0, 70.0, 0.0]], np.float32)
    ab = np.array([[[127.0, -128.0], [0.0, 300.0]], [[-127.0, 127.0], [-300.0, 0.0]]], np.float32)
    got = dev.get(cuda.merge(dev.put(lightness), dev.put(ab), launcher=dev.launcher))
    _assert_u8_close(got, ref.merge(lightness, ab))


@pytest.mark.parametrize("contract", [AB, GRAY, BINS], ids=lambda c: c.output_kind)
def test_postprocess_batch_matches_reference(dev, contract) -> None:
    lightness = _planes(2, 36, 52)
    output = _model_output(contract, 2, 9, 13)
    got = dev.get(
        cuda.postprocess_batch(dev.put(output), dev.put(lightness), contract, launcher=dev.launcher)
    )
    expected = ref.postprocess(output, list(lightness), contract)
    for image, reference_image in zip(got, expected, strict=True):
        _assert_u8_close(image, reference_image)


@pytest.mark.parametrize("contract", [AB, GRAY, BINS], ids=lambda c: c.output_kind)
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.8])
def test_chroma_strength_matches_reference(dev, contract, strength) -> None:
    """decode_ab, postprocess and postprocess_batch take the reference's ``strength``, same result."""
    lightness = _planes(2, 20, 28)
    output = _model_output(contract, 2, 5, 7)
    expected_ab = ref.decode_ab(output, contract, strength=strength)
    got_ab = cuda.decode_ab(dev.put(output), contract, strength=strength, launcher=dev.launcher)
    np.testing.assert_allclose(dev.get(got_ab), expected_ab, rtol=0, atol=L_TOL)
    expected = ref.postprocess(output, list(lightness), contract, strength=strength)
    batch = cuda.postprocess_batch(
        dev.put(output), dev.put(lightness), contract, strength=strength, launcher=dev.launcher
    )
    listed = cuda.postprocess(
        dev.put(output), [dev.put(p) for p in lightness], contract, strength=strength, launcher=dev.launcher
    )
    for image, one, reference_image in zip(dev.get(batch), listed, expected, strict=True):
        _assert_u8_close(image, reference_image)
        _assert_u8_close(dev.get(one), reference_image)
    with pytest.raises(InputError, match="strength"):
        cuda.postprocess_batch(
            dev.put(output), dev.put(lightness), contract, strength=3, launcher=dev.launcher
        )


def test_postprocess_list_matches_reference(dev) -> None:
    lightness = [_planes(1, 20, 28)[0], _planes(1, 20, 28)[0]]
    output = _model_output(AB, 2, 8, 12)
    got = cuda.postprocess(dev.put(output), [dev.put(p) for p in lightness], AB, launcher=dev.launcher)
    for image, expected in zip(got, ref.postprocess(output, lightness, AB), strict=True):
        _assert_u8_close(dev.get(image), expected)
    with pytest.raises(InputError, match="holds 2 items"):
        cuda.postprocess(dev.put(output), [dev.put(lightness[0])], AB, launcher=dev.launcher)


def test_full_pipeline_round_trip_keeps_luminance(dev) -> None:
    """Frames -> model input -> (a model that returns the true ab) -> frames: colours come back."""
    frames = _frames(2, 32, 48)
    contract = AB.replace(render_size=48, multiple=4)  # renders at full size: no chroma lost
    _, lightness = cuda.preprocess_frames(dev.put(frames), contract, launcher=dev.launcher)
    lab = np.stack([ref.rgb_to_lab(f) for f in frames]).astype(np.float32)
    true_ab = np.ascontiguousarray(lab[..., 1:].transpose(0, 3, 1, 2)) / np.float32(contract.output_scale)
    got = dev.get(cuda.postprocess_batch(dev.put(true_ab), lightness, contract, launcher=dev.launcher))
    assert np.abs(got.astype(int) - frames.astype(int)).max() <= 1


# ---------------------------------------------------------------- errors without CuPy / GPU


def test_importing_the_module_does_not_import_cupy() -> None:
    code = "import sys, colorrt.kernels.cuda; print('cupy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_missing_cupy_names_the_extra_and_the_cpu_path(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # what Python does when CuPy is not installed
    with pytest.raises(MissingDependencyError) as caught:
        cuda.preprocess_frames(np.zeros((1, 8, 8, 3), np.uint8), AB)
    message = str(caught.value)
    assert "pip install 'colorrt[gpu]'" in message and "device='cpu'" in message and "'cupy'" in message
    assert caught.value.extra == "gpu"


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_no_cuda_device_is_one_clear_error() -> None:
    import cupy

    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        devices = 0
    if devices:
        pytest.skip("a CUDA device is present")
    with pytest.raises(cuda.CudaUnavailableError) as caught:
        cuda.launcher_for()
    assert "nvidia-smi" in str(caught.value) and "device='cpu'" in str(caught.value)


def test_out_of_memory_errors_are_translated() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(cuda.GpuOutOfMemoryError, match="batch_size") as caught:
        with cuda.gpu_errors("running the model"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert "running the model" in str(caught.value)
    with pytest.raises(ValueError):  # other errors pass through untouched
        with cuda.gpu_errors("x"):
            raise ValueError("not memory")


# ---------------------------------------------------------------- GPU only


@pytest.mark.requires_cuda
def test_kernels_run_on_the_current_stream_and_compile_once() -> None:
    import cupy as cp

    launcher = cuda.launcher_for()
    assert cuda.launcher_for() is launcher
    launcher.compile()
    frames = cp.asarray(_frames(4, 64, 96))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        batch, lightness = cuda.preprocess_frames(frames, AB)
        out = cuda.postprocess_batch(cp.zeros((4, 2, *batch.shape[-2:]), cp.float32), lightness, AB)
    stream.synchronize()
    grey = out.get()
    assert (grey.max(axis=-1) - grey.min(axis=-1)).max() <= 1  # zero ab: neutral greys
    np.testing.assert_allclose(
        lightness.get(), np.stack([ref.luminance(f) for f in frames.get()]), atol=L_TOL
    )
