"""`colorrt info M.plan` prints the facts stored beside an engine, without TensorRT."""

from __future__ import annotations

import json

from colorrt.cli import main
from colorrt.contract import PRESETS
from colorrt.engines.tensorrt import facts as trt_facts
from colorrt.engines.tensorrt import profiles as trt_profiles


def _plan_with_facts(tmp_path):
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"not a real engine, only its facts are read")
    ranges = trt_profiles.parse_shape_ranges("1:4:8", "64x64:128x128:256x256")
    facts = trt_facts.EngineFacts(
        contract=PRESETS["cyclegan-rgb"],
        precision="fp16",
        profiles=tuple(trt_profiles.derive_profiles(PRESETS["cyclegan-rgb"], ranges)),
        trt_version="11.0.0",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        onnx_sha256="ab" * 32,
    )
    trt_facts.write_facts(plan, facts)
    return plan


def test_info_plan_prints_facts_and_contract(tmp_path, capsys):
    plan = _plan_with_facts(tmp_path)
    assert main(["info", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H100 80GB HBM3" in out and "fp16" in out and "11.0.0" in out
    assert "contract:   cyclegan-rgb" in out and "input_space" in out


def test_info_plan_json(tmp_path, capsys):
    plan = _plan_with_facts(tmp_path)
    assert main(["info", str(plan), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["facts"]["compute_capability"] == "9.0"
    assert data["facts"]["contract"]["name"] == "cyclegan-rgb"


def test_info_plan_without_facts_says_so(tmp_path, capsys):
    plan = tmp_path / "bare.plan"
    plan.write_bytes(b"x")
    assert main(["info", str(plan)]) == 0
    assert "facts:" in capsys.readouterr().out


def test_info_rejects_other_suffix(tmp_path, capsys):
    path = tmp_path / "model.txt"
    path.write_text("hello")
    assert main(["info", str(path)]) == 2
    assert ".plan" in capsys.readouterr().err
