"""Zoo models shared by the runtime tests (built once per session into a temp folder)."""

from __future__ import annotations

import pytest

from tests import zoo


@pytest.fixture(scope="session")
def zoo_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("runtime-zoo")
    return {
        "ab": zoo.ab_model(d / "ab.onnx"),
        "rgb": zoo.rgb_model(d / "rgb.onnx"),
        "hints": zoo.hints_model(d / "hints.onnx"),
        "bins": zoo.bins_model(d / "bins.onnx"),
        "bare": zoo.ab_model(d / "bare.onnx", None),
    }
