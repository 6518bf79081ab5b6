"""build / TensorRTEngine / inspect_plan entry points and the `colorrt build` flags, without TensorRT."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from colorrt.engines.tensorrt.facts import write_facts
from colorrt.errors import BackendError, ContractError, InputError, MissingDependencyError, ModelError
from tests import zoo
from tests.engines.trt_helpers import HAVE_TENSORRT, make_facts


def test_build_options_are_checked_before_tensorrt_is_needed(tmp_path):
    from colorrt.engines.tensorrt import build

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    with pytest.raises(InputError, match="--int8 needs --calib"):
        build(model, precision="int8")
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        build(model, precision="fp8")
    with pytest.raises(InputError, match="--opt-level"):
        build(model, opt_level=7)
    with pytest.raises(InputError, match="--workspace"):
        build(model, workspace_gb=-1)
    with pytest.raises(InputError, match="--batch"):
        build(model, batch="16:4:1")
    with pytest.raises(InputError, match="not a folder"):
        build(model, precision="int8", calib=tmp_path / "missing")
    with pytest.raises(ContractError, match="fixed 32x32"):
        build(zoo.hints_model(tmp_path / "hints.onnx"), size="64x64")


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here; this checks the error without it")
def test_build_without_tensorrt_says_how_to_install_it_and_what_works_meanwhile(tmp_path):
    from colorrt.engines.tensorrt import TensorRTUnavailableError, build

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    with pytest.raises(TensorRTUnavailableError) as err:
        build(model, precision="fp16", batch="1:2:4")
    assert isinstance(err.value, MissingDependencyError) and err.value.extra == "gpu"
    text = str(err.value)
    assert "colorrt build needs TensorRT" in text
    assert "pip install 'colorrt[gpu]'" in text
    assert "colorrt colorize --backend onnxruntime" in text
    assert not list(tmp_path.glob("*.plan"))


def test_build_refuses_a_channels_last_model_before_reading_profiles(tmp_path):
    from colorrt.engines.tensorrt import build

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    with pytest.raises(BackendError, match="runs models with one NCHW input.*an NHWC layout") as err:
        build(model, contract="chromagan", batch="1:2:4")  # NHWC: axis 1 is height, not channels
    assert "backend='onnxruntime'" in err.value.hint
    assert not list(tmp_path.glob("*.plan"))


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here; this checks the error without it")
def test_engine_without_tensorrt_is_a_clear_error(tmp_path):
    from colorrt.engines.tensorrt import TensorRTEngine, TensorRTUnavailableError

    with pytest.raises(ModelError, match="no such TensorRT engine file"):
        TensorRTEngine(tmp_path / "missing.plan")
    with pytest.raises(ModelError, match="no such TensorRT engine file"):  # --threads is not an error
        TensorRTEngine(tmp_path / "missing.plan", threads=1)
    (tmp_path / "m.plan").write_bytes(b"plan")
    with pytest.raises(TensorRTUnavailableError, match="running a TensorRT engine"):
        TensorRTEngine(tmp_path / "m.plan")
    with pytest.raises(InputError, match="apply when building"):
        TensorRTEngine(tmp_path / "m.plan", precision="fp16")
    with pytest.raises(BackendError, match="GPU only"):
        TensorRTEngine(tmp_path / "m.plan", device="cpu")


def build_parser() -> argparse.ArgumentParser:
    from colorrt.cli.build import add_arguments as add_build_arguments

    return add_build_arguments(argparse.ArgumentParser(prog="colorrt build"))


def test_cli_flags_map_to_build_keywords(tmp_path):
    args = build_parser().parse_args(
        [
            "--model",
            "m.onnx",
            "--fp16",
            "--batch",
            "1:2:8",
            "--size",
            "256x256",
            "--workspace",
            "2",
            "--opt-level",
            "5",
        ]
    )
    assert (args.precision, args.batch, args.size, args.workspace, args.opt_level) == (
        "fp16",
        "1:2:8",
        "256x256",
        2.0,
        5,
    )
    assert build_parser().parse_args(["--model", "m.onnx"]).precision == "fp32"
    assert build_parser().parse_args(["--model", "m.onnx", "--best", "--calib", "d"]).calib == Path("d")


@pytest.mark.parametrize(
    "argv", [["--model", "m.onnx", "--fp16", "--int8"], ["--model", "m.onnx", "--opt-level", "9"], ["--fp16"]]
)
def test_cli_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code != 0


def test_cli_keeps_an_existing_contract_flag():
    from colorrt.cli.build import add_arguments as add_build_arguments

    parser = argparse.ArgumentParser()
    parser.add_argument("--contract", default="from-cli")
    add_build_arguments(parser)
    assert parser.parse_args(["--model", "m.onnx"]).contract == "from-cli"


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here; this checks the error without it")
def test_run_build_without_tensorrt_fails_cleanly(tmp_path):
    from colorrt.cli.build import run as run_build
    from colorrt.engines.tensorrt import TensorRTUnavailableError

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    args = build_parser().parse_args(["--model", str(model), "--fp16", "-o", str(tmp_path / "out.plan")])
    with pytest.raises(TensorRTUnavailableError, match="onnxruntime"):
        run_build(args)
    args = build_parser().parse_args(["--model", str(model), "--int8"])
    with pytest.raises(InputError, match="--calib"):
        run_build(args)


def test_inspect_plan_reads_the_facts_without_tensorrt(tmp_path):
    from colorrt.engines.tensorrt import inspect_plan

    plan_path = tmp_path / "m.plan"
    plan_path.write_bytes(b"x" * 10)
    info = inspect_plan(plan_path)
    assert info["facts"] is None and "no facts file" in info["facts_problem"]
    write_facts(plan_path, make_facts())
    info = inspect_plan(plan_path)
    assert info["size_bytes"] == 10
    assert info["facts"]["precision"] == "fp16" and info["facts"]["contract"]["name"] == "cyclegan-rgb"
    with pytest.raises(ModelError, match="no such"):
        inspect_plan(tmp_path / "other.plan")


def test_default_plan_path_sits_beside_the_model():
    from colorrt.engines.tensorrt import default_plan_path

    assert default_plan_path("models/cyclegan.onnx", "fp16") == Path("models/cyclegan.fp16.plan")
