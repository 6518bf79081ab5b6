"""The facts sidecar beside every plan (M.plan.json), its atomic write, and the compatibility check."""

from __future__ import annotations

import json

import pytest

from colorrt.atomic import write_bytes
from colorrt.engines.tensorrt.facts import (
    FACTS_VERSION,
    check_compatible,
    compatibility_problems,
    read_facts,
    sidecar_path,
    write_facts,
)
from colorrt.errors import BackendError, ModelError
from tests.engines.trt_helpers import make_facts


def test_facts_round_trip_through_the_sidecar(tmp_path):
    plan_path = tmp_path / "model.plan"
    facts = make_facts()
    written = write_facts(plan_path, facts)
    assert written == tmp_path / "model.plan.json"
    assert json.loads(written.read_text())["facts_version"] == FACTS_VERSION
    assert read_facts(plan_path) == facts
    assert [p.name for p in tmp_path.iterdir()] == ["model.plan.json"]  # no temporary files left


def test_missing_or_broken_sidecar_is_a_clear_error(tmp_path):
    plan_path = tmp_path / "model.plan"
    with pytest.raises(ModelError, match="no facts file model.plan.json") as err:
        read_facts(plan_path)
    assert "colorrt build" in err.value.hint
    sidecar_path(plan_path).write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_facts(plan_path)
    data = make_facts().to_dict()
    sidecar_path(plan_path).write_text(json.dumps({**data, "colour": 1}))
    with pytest.raises(ModelError, match="unknown fields"):
        read_facts(plan_path)
    sidecar_path(plan_path).write_text(json.dumps({**data, "facts_version": 99}))
    with pytest.raises(ModelError, match="newer"):
        read_facts(plan_path)
    del data["profiles"]
    sidecar_path(plan_path).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="incomplete"):
        read_facts(plan_path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "engine.plan"
    write_bytes(target, b"old")
    with pytest.raises(TypeError):
        write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["engine.plan"]


def test_compatibility_problems_name_what_differs():
    facts = make_facts()
    here = {"trt_version": "11.0.0.1", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert compatibility_problems(facts, **here) == []
    [problem] = compatibility_problems(facts, **{**here, "trt_version": "11.1.0.3"})
    assert "TensorRT 11.0.0.1" in problem and "11.1.0.3" in problem
    [problem] = compatibility_problems(
        facts, **{**here, "gpu_name": "NVIDIA L4", "compute_capability": "8.9"}
    )
    assert "compute capability 9.0" in problem and "8.9 (NVIDIA L4)" in problem
    [problem] = compatibility_problems(facts, **{**here, "gpu_name": "NVIDIA H100 PCIe"})
    assert "NVIDIA H100 PCIe" in problem
    with pytest.raises(BackendError, match="cannot run here") as err:
        check_compatible(facts, **{**here, "trt_version": "10.13.0"}, path="m.plan")
    assert "rebuild" in err.value.hint
