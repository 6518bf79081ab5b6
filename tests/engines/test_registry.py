"""load_engine dispatch from the one backend table."""

from __future__ import annotations

import pytest

from colorrt.engines import registry
from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.engines.registry import BACKENDS, Backend, backend_for, default_model_path, load_engine
from colorrt.errors import BackendError, ModelError
from tests import zoo


def test_auto_backend_from_suffix(tmp_path):
    path = zoo.ab_model(tmp_path / "m.onnx")
    with load_engine(path, threads=1) as engine:
        assert isinstance(engine, OnnxRuntimeEngine) and engine.threads == 1
    with load_engine(path, backend="onnxruntime", contract="pix2pix-colorization") as engine:
        assert engine.contract.name == "pix2pix-colorization"


def test_suffix_table_covers_engine_files(tmp_path):
    assert backend_for(tmp_path / "x.ONNX").name == "onnxruntime"
    assert backend_for(tmp_path / "x.engine").name == "tensorrt"
    assert backend_for(tmp_path / "x.pth").name == "torch"
    with pytest.raises(ModelError, match=r"(?s)\.bin.*--backend"):
        backend_for(tmp_path / "weights.bin")


def test_unknown_backend_lists_choices_and_closest(tmp_path):
    with pytest.raises(BackendError) as info:
        load_engine(tmp_path / "m.onnx", backend="onnxruntim")
    message = str(info.value)
    assert "did you mean 'onnxruntime'" in message
    assert all(name in message for name in BACKENDS)


def test_backend_module_not_written_yet(tmp_path, monkeypatch):
    ghost = Backend("ghost", "colorrt.engines._ghost_backend", "GhostEngine", (".ghost",), "gpu", "ghost")
    monkeypatch.setitem(BACKENDS, "ghost", ghost)
    with pytest.raises(BackendError, match="ghost backend is not available yet"):
        load_engine(tmp_path / "m.ghost")


def test_default_model_missing_is_clear(monkeypatch):
    monkeypatch.setattr(registry, "DEFAULT_MODEL_NAME", "no-such-model.onnx")
    with pytest.raises(ModelError, match="--model"):
        default_model_path()
