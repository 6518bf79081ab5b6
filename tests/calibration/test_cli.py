"""``colorrt quantize``: success paths and clear errors (exit code 2, nothing written)."""

from __future__ import annotations

import json

import onnx
import pytest

from colorrt.calibration import PRECISION_KEY, TARGET_KEY
from colorrt.cli import main


def _props(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_int8_command(assets, tmp_path, capsys):
    out = tmp_path / "m.int8.onnx"
    code = main(
        [
            "quantize",
            "--model",
            str(assets["resnet"]),
            "--int8",
            "--calib",
            str(assets["pictures"]),
            "--method",
            "minmax",
            "--target",
            "cpu",
            "--max-samples",
            "6",
            "--max-delta-e",
            "20",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert _props(out)[PRECISION_KEY] == "int8" and _props(out)[TARGET_KEY] == "cpu"
    printed = capsys.readouterr().out
    assert "CIEDE2000" in printed and "passed" in printed
    report = json.loads((tmp_path / "m.int8.report.json").read_text())
    assert report["precision"] == "int8" and report["passed"] and report["converted"] == str(out)
    assert report["samples"] >= 1 and " images from " in report["sample_source"]


def test_fp16_command_without_pictures(assets, tmp_path, capsys):
    out = tmp_path / "m.fp16.onnx"
    assert main(["quantize", "--model", str(assets["bins"]), "--fp16", "-o", str(out), "-q"]) == 0
    assert _props(out)[PRECISION_KEY] == "fp16"
    assert capsys.readouterr().out == ""
    assert (
        json.loads((tmp_path / "m.fp16.report.json").read_text())["sample_source"] == "8 synthetic pictures"
    )


def test_contract_flag_for_a_model_without_one(assets, tmp_path):
    out = tmp_path / "nc.fp16.onnx"
    assert (
        main(
            [
                "quantize",
                "--model",
                str(assets["no_contract"]),
                "--fp16",
                "--contract",
                "cyclegan-rgb",
                "-o",
                str(out),
                "-q",
                "--no-report",
            ]
        )
        == 0
    )
    assert "colorrt.contract" in _props(out)


def _fails(args, tmp_path, capsys, message):
    out = tmp_path / "out" / "x.onnx"
    out.parent.mkdir(exist_ok=True)
    assert main(["quantize", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "colorrt: error:" in err and message in err, err
    assert "Traceback" not in err
    assert not out.exists() and not [
        p for p in out.parent.iterdir() if p.suffix == ".onnx" or ".tmp" in p.name
    ]
    return err


def test_errors(assets, tmp_path, capsys):
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    _fails(["--model", str(text), "--fp16"], tmp_path, capsys, "not a readable ONNX model")
    _fails(["--model", str(assets["no_contract"]), "--fp16"], tmp_path, capsys, "carries no colour contract")
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(
        ["--model", str(assets["resnet"]), "--int8", "--calib", str(empty)],
        tmp_path,
        capsys,
        "holds no images",
    )
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 300)
    _fails(
        ["--model", str(assets["resnet"]), "--int8", "--calib", str(broken)], tmp_path, capsys, "broken.mp4"
    )
    _fails(["--model", str(assets["resnet"]), "--int8"], tmp_path, capsys, "INT8 needs calibration pictures")


def test_quality_bound_fails_the_command_and_keeps_only_the_report(assets, tmp_path, capsys):
    err = _fails(
        [
            "--model",
            str(assets["resnet"]),
            "--int8",
            "--calib",
            str(assets["pictures"]),
            "--max-samples",
            "6",
            "--max-delta-e",
            "0.001",
        ],
        tmp_path,
        capsys,
        "too far from FP32",
    )
    report = tmp_path / "out" / "x.report.json"
    assert str(report) in err and json.loads(report.read_text())["passed"] is False


def test_precision_flag_is_required(assets, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", "--model", str(assets["resnet"])])
    assert exit_info.value.code == 2
    assert "one of the arguments --int8 --fp16 --precision is required" in capsys.readouterr().err
