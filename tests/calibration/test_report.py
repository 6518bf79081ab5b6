"""Quality report: metric maths against independent formulas, sane numbers on real conversions."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from skimage.color import deltaE_ciede2000, rgb2lab

from colorrt.calibration import load_calibration_set
from colorrt.calibration.report import PSNR_CAP_DB, QualityError, check_quality, colourfulness, evaluate, psnr
from colorrt.kernels import pipeline
from tests.calibration import helpers

CONTRACT = helpers.RGB_CONTRACT


def _hasler(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003), written out plainly."""
    r, g, b = (rgb[..., i].astype(np.float64).ravel() for i in range(3))
    rg, yb = r - g, (r + g) / 2 - b
    sigma = math.sqrt(np.var(rg) + np.var(yb))
    mu = math.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    return sigma + 0.3 * mu


def test_colourfulness_matches_the_paper_formula():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert colourfulness(image) == pytest.approx(_hasler(image), rel=1e-12)
    assert colourfulness(np.full((4, 4, 3), 90, np.uint8)) == 0.0  # grey
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200  # rg = 200, yb = 100, no spread
    assert colourfulness(red) == pytest.approx(0.3 * math.hypot(200, 100))


def test_psnr():
    error = np.full(100, 11.0)  # MSE 121 with peak 110: 10 log10(12100 / 121) = 20 dB
    assert psnr(error) == pytest.approx(20.0)
    assert psnr(np.zeros(5)) == PSNR_CAP_DB


def test_a_model_against_itself_is_perfect(assets):
    held = load_calibration_set(assets["pictures"], CONTRACT, max_samples=3)
    report = evaluate(assets["resnet"], assets["resnet"], held, precision="int8", max_delta_e=0.5)
    assert report.delta_e_mean == report.delta_e_max == 0.0 and report.psnr_ab_db == PSNR_CAP_DB
    assert report.colourfulness_reference == report.colourfulness_converted > 5
    assert report.passed and report.samples == 3 and report.max_abs_output_error == 0.0


def _damped(source, path, factor: float):
    """The model with its output pulled towards grey: y * factor (RGB in [-1, 1])."""
    model = onnx.load(str(source))
    tanh = next(n for n in model.graph.node if n.op_type == "Tanh")
    tanh.output[0] = "undamped"
    model.graph.node.append(helper.make_node("Mul", ["undamped", "factor"], ["output"], name="damp"))
    model.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "factor"))
    onnx.save(model, str(path))
    return path


def test_metrics_agree_with_a_direct_computation(assets, tmp_path):
    damped = _damped(assets["resnet"], tmp_path / "damped.onnx", 0.9)
    held = load_calibration_set(assets["pictures"], CONTRACT, max_samples=2, seed=4)
    report = evaluate(assets["resnet"], damped, held, precision="fp16")
    assert report.colourfulness_converted < report.colourfulness_reference  # washed out
    assert report.colourfulness_change < 0
    import onnxruntime as ort

    deltas, errors = [], []
    for sample in held.samples:
        outs = [
            ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
                None, {"input": sample.input}
            )[0]
            for p in (assets["resnet"], damped)
        ]
        abs_ = [pipeline.decode_ab(o, CONTRACT)[0] for o in outs]
        rgbs = [pipeline.merge(sample.luminance, ab) for ab in abs_]
        deltas.append(deltaE_ciede2000(rgb2lab(rgbs[0]), rgb2lab(rgbs[1])).ravel())
        errors.append((abs_[0] - abs_[1]).ravel())
    deltas = np.concatenate(deltas)
    assert report.delta_e_mean == pytest.approx(deltas.mean(), rel=1e-6)
    assert report.delta_e_p95 == pytest.approx(np.percentile(deltas, 95), rel=1e-6)
    mse = np.mean(np.concatenate(errors).astype(np.float64) ** 2)
    assert report.psnr_ab_db == pytest.approx(10 * math.log10(110**2 / mse), rel=1e-6)
    assert 0.5 < report.delta_e_mean < 15


def test_int8_of_a_smooth_model_is_close_to_fp32(assets, int8_models):
    held = load_calibration_set(assets["pictures"], CONTRACT, max_samples=4, seed=11)
    report = evaluate(assets["resnet"], int8_models["tensorrt"], held, precision="int8", target="tensorrt")
    assert 0 < report.delta_e_mean < 2.0
    assert report.delta_e_p95 < 5.0 and report.psnr_ab_db > 30
    assert abs(report.colourfulness_change) < 0.05


def test_failed_bound_raises_and_json_is_complete(assets, tmp_path):
    damped = _damped(assets["resnet"], tmp_path / "damped.onnx", 0.5)
    held = load_calibration_set(assets["pictures"], CONTRACT, max_samples=2)
    report = evaluate(assets["resnet"], damped, held, precision="int8", target="cpu", max_delta_e=1.0)
    assert not report.passed
    path = report.write_json(tmp_path / "report.json")
    data = json.loads(path.read_text())
    assert data["passed"] is False and data["max_delta_e"] == 1.0 and len(data["per_sample"]) == 2
    assert data["delta_e_mean"] == pytest.approx(report.delta_e_mean)
    with pytest.raises(QualityError, match=r"mean CIEDE2000 .* > --max-delta-e 1") as caught:
        check_quality(report, path)
    assert caught.value.report is report
    assert "FAILED" in report.summary() and "CIEDE2000" in report.summary()
