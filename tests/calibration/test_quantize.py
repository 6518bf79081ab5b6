"""``quantize``: held-out pictures, report files, output names, option checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colorrt.calibration import QualityError, load_calibration_set, quantize
from colorrt.calibration.quantize import default_output, default_report_path
from colorrt.errors import InputError
from tests.calibration import helpers


def test_report_pictures_are_held_out_of_calibration(assets, tmp_path):
    pictures = load_calibration_set(assets["pictures"], helpers.RGB_CONTRACT, max_samples=12)
    result = quantize(assets["resnet"], tmp_path / "m.int8.onnx", calib=pictures, max_delta_e=3.0)
    assert result.facts["samples"] == 8 and result.report.samples == 4  # a third of a small source
    held = {s.source for s in result.report.per_sample}
    calibrated = {s.source for s in pictures.split(4)[0].samples}
    assert held and not held & calibrated
    assert result.report_path == tmp_path / "m.int8.report.json" and result.report.passed
    assert json.loads(result.report_path.read_text())["converted"] == str(tmp_path / "m.int8.onnx")
    assert "wrote" in result.summary() and "CIEDE2000" in result.summary()


def test_separate_eval_source_and_no_report(assets, tmp_path):
    result = quantize(
        assets["resnet"],
        tmp_path / "a.onnx",
        calib=assets["pictures"],
        eval_source=assets["video"],
        report_samples=3,
        max_samples=6,
    )
    assert result.facts["samples"] == 6 and result.report.samples == 3
    assert all("clip.mp4@" in s.source for s in result.report.per_sample)
    quiet = quantize(
        assets["resnet"], tmp_path / "b.onnx", calib=assets["pictures"], max_samples=6, report=False
    )
    assert quiet.report is None and quiet.report_path is None and not (tmp_path / "b.report.json").exists()


def test_fp16_report_uses_the_given_pictures(assets, tmp_path):
    result = quantize(assets["bins"], tmp_path / "b.fp16.onnx", precision="fp16", calib=assets["pictures"])
    assert result.report.samples == 8 and "images from" in result.report.sample_source
    assert result.report.delta_e_mean < 0.1


def test_failed_bound_leaves_only_the_report(assets, tmp_path):
    with pytest.raises(QualityError) as caught:
        quantize(
            assets["resnet"], tmp_path / "m.onnx", calib=assets["pictures"], max_samples=6, max_delta_e=1e-4
        )
    assert caught.value.report.delta_e_mean > 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.report.json"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "int4"}, "precision must be"),
        ({"method": "kl"}, "method must be one of"),
        ({"max_delta_e": 1.0, "report": False}, "--max-delta-e needs the quality report"),
        ({"max_delta_e": -1.0}, "positive bound"),
        ({"report_samples": 0}, "report_samples must be >= 1"),
    ],
)
def test_options_are_checked_before_any_work(assets, tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        quantize(assets["resnet"], tmp_path / "x.onnx", calib=assets["pictures"], **kwargs)
    assert not list(tmp_path.iterdir())


def test_too_small_a_source_for_calibration_and_report(assets, tmp_path):
    small = helpers.picture_folder(tmp_path / "small", 4)
    with pytest.raises(InputError, match=r"found 4 readable images; calibration needs at least 5"):
        quantize(assets["resnet"], tmp_path / "x.onnx", calib=small)
    assert quantize(assets["resnet"], tmp_path / "x.onnx", calib=small, report=False).path.exists()


def test_default_names():
    assert default_output(Path("d/m.onnx"), "int8", "tensorrt") == Path("d/m.int8.onnx")
    assert default_output(Path("d/m.onnx"), "int8", "cpu") == Path("d/m.int8-cpu.onnx")
    assert default_output(Path("d/m.onnx"), "fp16", "cpu") == Path("d/m.fp16.onnx")
    assert default_report_path(Path("d/m.int8.onnx")) == Path("d/m.int8.report.json")
