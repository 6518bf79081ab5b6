"""TensorRT engines on a real GPU: build FP32 / FP16 / INT8 engines of a small CycleGAN generator,
compare them with ONNX Runtime (the reference), and check the CUDA-graph path against the plain one.

Everything marked ``requires_tensorrt`` skips (with the reason) where ``import tensorrt`` or the GPU
is unavailable. The model itself is checked on the CPU here too, so the GPU tests start from a
model known to run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from colorrt.contract import PRESETS, write_to_onnx
from colorrt.errors import BackendError, InputError, ModelError

CONTRACT = PRESETS["cyclegan-rgb"].replace(render_size=64)  # grey RGB in [-1, 1] → RGB, sizes multiple of 4
BATCH = "1:2:4"
SIZE = "32x32:64x64:96x96"
FP32_TOLERANCE = 1e-3  # max abs difference on the model output (tanh, in [-1, 1])
FP16_TOLERANCE = 2e-2


def tiny_cyclegan(path: Path, ngf: int = 8, blocks: int = 2, seed: int = 0) -> Path:
    """A CycleGAN ResNet generator (reflection pads, InstanceNorm, 2 stride-2 convs, residual blocks,
    2 transposed convs, tanh) with random weights, dynamic batch/height/width, contract stored."""
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def reflect(x: str, pad: int, name: str) -> str:
        pads = const(f"{name}.pads", np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64))
        nodes.append(helper.make_node("Pad", [x, pads], [name], mode="reflect"))
        return name

    def conv(x: str, cin: int, cout: int, k: int, name: str, stride: int = 1, pad: int = 0) -> str:
        w = const(f"{name}.w", rng.normal(0, 1 / np.sqrt(cin * k * k), (cout, cin, k, k)).astype(np.float32))
        b = const(f"{name}.b", rng.normal(0, 0.05, cout).astype(np.float32))
        nodes.append(helper.make_node("Conv", [x, w, b], [name], strides=[stride] * 2, pads=[pad] * 4))
        return name

    def deconv(x: str, cin: int, cout: int, name: str) -> str:
        w = const(f"{name}.w", rng.normal(0, 1 / np.sqrt(cin * 9), (cin, cout, 3, 3)).astype(np.float32))
        b = const(f"{name}.b", np.zeros(cout, np.float32))
        nodes.append(
            helper.make_node(
                "ConvTranspose", [x, w, b], [name], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]
            )
        )
        return name

    def norm_relu(x: str, c: int, name: str, relu: bool = True) -> str:
        scale, bias = (
            const(f"{name}.s", np.ones(c, np.float32)),
            const(f"{name}.bias", np.zeros(c, np.float32)),
        )
        nodes.append(helper.make_node("InstanceNormalization", [x, scale, bias], [f"{name}.n"], epsilon=1e-5))
        if not relu:
            return f"{name}.n"
        nodes.append(helper.make_node("Relu", [f"{name}.n"], [name]))
        return name

    x = norm_relu(conv(reflect("input", 3, "p0"), 3, ngf, 7, "c1"), ngf, "n1")
    x = norm_relu(conv(x, ngf, ngf * 2, 3, "c2", stride=2, pad=1), ngf * 2, "n2")
    x = norm_relu(conv(x, ngf * 2, ngf * 4, 3, "c3", stride=2, pad=1), ngf * 4, "n3")
    for i in range(blocks):
        y = norm_relu(conv(reflect(x, 1, f"r{i}p1"), ngf * 4, ngf * 4, 3, f"r{i}c1"), ngf * 4, f"r{i}n1")
        y = norm_relu(
            conv(reflect(y, 1, f"r{i}p2"), ngf * 4, ngf * 4, 3, f"r{i}c2"), ngf * 4, f"r{i}n2", relu=False
        )
        nodes.append(helper.make_node("Add", [x, y], [f"r{i}"]))
        x = f"r{i}"
    x = norm_relu(deconv(x, ngf * 4, ngf * 2, "d1"), ngf * 2, "dn1")
    x = norm_relu(deconv(x, ngf * 2, ngf, "d2"), ngf, "dn2")
    x = conv(reflect(x, 3, "p9"), ngf, 3, 7, "c9")
    nodes.append(helper.make_node("Tanh", [x], ["output"]))
    graph = helper.make_graph(
        nodes,
        "tiny_cyclegan",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    write_to_onnx(model, CONTRACT)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def onnxruntime_reference(model: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": batch.astype(np.float32)})[0]


def grey_batch(n: int, height: int, width: int, seed: int = 1) -> np.ndarray:
    """Grey RGB in [-1, 1] (three equal channels), as the cyclegan-rgb contract feeds it."""
    grey = np.random.default_rng(seed).uniform(-1, 1, (n, 1, height, width)).astype(np.float32)
    return np.repeat(grey, 3, axis=1)


def test_the_test_model_runs_in_onnxruntime(tmp_path):
    model = tiny_cyclegan(tmp_path / "tiny.onnx")
    for shape in ((2, 64, 64), (1, 32, 96)):
        out = onnxruntime_reference(model, grey_batch(shape[0], shape[1], shape[2]))
        assert out.shape == (shape[0], 3, shape[1], shape[2])
        assert np.all(np.abs(out) <= 1) and out.std() > 0.05  # tanh output, not a constant


# --- GPU -------------------------------------------------------------------------------------

requires_tensorrt = pytest.mark.requires_tensorrt


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("trt")


@pytest.fixture(scope="module")
def model(workdir) -> Path:
    return tiny_cyclegan(workdir / "tiny_cyclegan.onnx")


@pytest.fixture(scope="module")
def engine_cache(workdir):
    from colorrt.engines.cache import EngineCache

    return EngineCache(workdir / "cache")


@pytest.fixture(scope="module")
def fp32_plan(model, engine_cache) -> Path:
    from colorrt.engines.tensorrt import build

    return build(model, model.with_suffix(".fp32.plan"), batch=BATCH, size=SIZE, cache=engine_cache)


def calibration_function(name: str):
    import colorrt.calibration as calibration

    function = getattr(calibration, name, None)
    if not callable(function):
        pytest.skip(f"colorrt.calibration.{name} is not available, so this precision cannot be built")
    return function


@requires_tensorrt
def test_fp32_engine_matches_onnxruntime(model, fp32_plan):
    from colorrt.engines.tensorrt import TensorRTEngine
    from colorrt.engines.tensorrt.facts import read_facts

    facts = read_facts(fp32_plan)
    assert facts.precision == "fp32" and facts.precision_verified and set(facts.precision_counts) == {"fp32"}
    assert facts.contract.input_name == "input" and facts.profiles[0].tensor().max == (4, 3, 96, 96)
    with TensorRTEngine(fp32_plan) as engine:
        assert engine.contract == CONTRACT and engine.precision == "fp32"
        for n, h, w in ((2, 64, 64), (4, 96, 96), (1, 32, 48)):
            batch = grey_batch(n, h, w, seed=n)
            out = engine.infer(batch)
            assert isinstance(out, np.ndarray) and out.shape == (n, 3, h, w)
            np.testing.assert_allclose(out, onnxruntime_reference(model, batch), atol=FP32_TOLERANCE, rtol=0)


@requires_tensorrt
def test_fp16_engine_matches_onnxruntime_within_fp16_tolerance(model, engine_cache, workdir):
    from colorrt.engines.tensorrt import TensorRTEngine, build
    from colorrt.engines.tensorrt.facts import read_facts

    calibration_function("convert_fp16")
    plan = build(model, workdir / "fp16.plan", precision="fp16", batch=BATCH, size=SIZE, cache=engine_cache)
    facts = read_facts(plan)
    assert facts.precision == "fp16" and facts.precision_verified
    assert facts.precision_counts.get("fp16", 0) > 0
    assert facts.precision_counts.get("fp32", 0) <= 1  # at most the head conv, kept FP32 by convert_fp16
    batch = grey_batch(2, 64, 64)
    with TensorRTEngine(plan) as engine:
        out = np.asarray(engine.infer(batch), dtype=np.float32)
    np.testing.assert_allclose(out, onnxruntime_reference(model, batch), atol=FP16_TOLERANCE, rtol=0)


@requires_tensorrt
def test_int8_engine_builds_from_calibration_images(model, engine_cache, workdir):
    from PIL import Image

    from colorrt.engines.tensorrt import TensorRTEngine, build
    from colorrt.engines.tensorrt.facts import read_facts

    calibration_function("quantize_int8")
    calib = workdir / "calib"
    calib.mkdir(exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(16):
        ramp = np.linspace(0, 255, 64)[None, :] * rng.uniform(0.3, 1.0) + rng.normal(0, 20, (64, 64))
        Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8)).convert("RGB").save(calib / f"{i:02d}.png")
    plan = build(
        model,
        workdir / "int8.plan",
        precision="int8",
        calib=calib,
        batch=BATCH,
        size=SIZE,
        cache=engine_cache,
    )
    facts = read_facts(plan)
    assert facts.precision == "int8" and facts.precision_counts.get("int8", 0) > 0
    batch = grey_batch(2, 64, 64)
    with TensorRTEngine(plan) as engine:
        out = np.asarray(engine.infer(batch), dtype=np.float32)
    reference = onnxruntime_reference(model, batch)
    assert np.isfinite(out).all()
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.9


@requires_tensorrt
def test_cuda_graph_replay_equals_the_plain_path(fp32_plan):
    from colorrt.engines.tensorrt import TensorRTEngine

    first, second = grey_batch(2, 64, 64, seed=10), grey_batch(2, 64, 64, seed=11)
    with TensorRTEngine(fp32_plan, cuda_graphs=False) as plain:
        expected = [plain.infer(first), plain.infer(second)]
    with TensorRTEngine(fp32_plan, cuda_graphs=True) as graphed:
        warm = graphed.infer(first)  # warm-up run, then the graph is captured
        assert (2, 3, 64, 64) in graphed._streams[0].graphs
        replays = [graphed.infer(first), graphed.infer(second), graphed.infer(first)]
    np.testing.assert_allclose(warm, expected[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(replays[0], expected[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(replays[1], expected[1], atol=1e-6, rtol=0)  # the replay reads new input
    np.testing.assert_allclose(replays[2], expected[0], atol=1e-6, rtol=0)
    assert np.abs(expected[0] - expected[1]).max() > 1e-2


@requires_tensorrt
def test_cupy_input_stays_on_the_gpu(fp32_plan):
    import cupy as cp

    from colorrt.engines.tensorrt import TensorRTEngine

    batch = grey_batch(3, 64, 64)
    for graphs in (True, False):
        with TensorRTEngine(fp32_plan, cuda_graphs=graphs) as engine:
            host = engine.infer(batch)
            device = engine.infer(cp.asarray(batch))
            assert isinstance(device, cp.ndarray) and device.shape == host.shape
            np.testing.assert_allclose(cp.asnumpy(device), host, atol=1e-6, rtol=0)
            half = engine.infer(cp.asarray(batch, dtype=cp.float16))  # cast on the device
            np.testing.assert_allclose(cp.asnumpy(half), host, atol=5e-3, rtol=0)


@requires_tensorrt
def test_streams_serve_threads_concurrently(fp32_plan):
    from colorrt.engines.tensorrt import TensorRTEngine

    batches = [grey_batch(2, 64, 64, seed=s) for s in range(8)]
    with TensorRTEngine(fp32_plan, cuda_graphs=False) as plain:
        expected = [plain.infer(b) for b in batches]
    results: dict[int, np.ndarray] = {}
    with TensorRTEngine(fp32_plan, streams=2) as engine:
        threads = [
            threading.Thread(target=lambda i=i: results.__setitem__(i, engine.infer(batches[i])))
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for i in range(8):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-6, rtol=0)


@requires_tensorrt
def test_shape_outside_the_profile_is_a_clear_error(fp32_plan):
    from colorrt.engines.tensorrt import TensorRTEngine

    with TensorRTEngine(fp32_plan) as engine:
        with pytest.raises(InputError, match="batch 8 is outside 1..4"):
            engine.infer(grey_batch(8, 64, 64))
        with pytest.raises(InputError, match="size 128x64"):
            engine.infer(grey_batch(1, 128, 64))
        with pytest.raises(InputError, match="3 channels"):
            engine.infer(np.zeros((1, 1, 64, 64), np.float32))


@requires_tensorrt
def test_same_settings_reuse_the_cached_engine_and_changes_rebuild(model, engine_cache, workdir):
    from colorrt.engines.tensorrt import build

    first = build(model, batch=BATCH, size=SIZE, cache=engine_cache)
    modified = first.stat().st_mtime_ns
    started = time.perf_counter()
    again = build(model, batch=BATCH, size=SIZE, cache=engine_cache)
    assert again == first and first.stat().st_mtime_ns == modified
    assert time.perf_counter() - started < 5  # no TensorRT build happened
    other = build(model, batch=BATCH, size=SIZE, opt_level=1, cache=engine_cache)
    assert other != first and other.is_file()
    assert list(engine_cache.folder.glob("timing-*.cache"))  # timing cache saved for the next builds


@requires_tensorrt
def test_corrupt_plan_and_foreign_facts_are_refused(fp32_plan, workdir):
    from colorrt.engines.tensorrt import TensorRTEngine
    from colorrt.engines.tensorrt.facts import read_facts, write_facts

    broken = workdir / "broken.plan"
    broken.write_bytes(fp32_plan.read_bytes()[: len(fp32_plan.read_bytes()) // 3])
    write_facts(broken, read_facts(fp32_plan))
    with pytest.raises(ModelError, match="corrupt"):
        TensorRTEngine(broken)
    foreign = workdir / "foreign.plan"
    foreign.write_bytes(fp32_plan.read_bytes())
    write_facts(foreign, read_facts(fp32_plan).replace(trt_version="10.0.0.6"))
    with pytest.raises(BackendError, match="built with TensorRT 10.0.0.6"):
        TensorRTEngine(foreign)


@requires_tensorrt
def test_onnx_path_builds_through_the_cache_for_the_runtime(model, engine_cache):
    from colorrt.engines.registry import load_engine

    engine = load_engine(model, backend="tensorrt", batch=BATCH, size=SIZE, cache=engine_cache)
    try:
        batch = grey_batch(1, 64, 64)
        np.testing.assert_allclose(
            engine.infer(batch), onnxruntime_reference(model, batch), atol=FP32_TOLERANCE
        )
    finally:
        engine.close()
