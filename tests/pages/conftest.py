"""Fixtures for the page tests: a small real ONNX colorizer, its engine and runtime, generated pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import synth_pages


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Context-dependent random-weight CNN, 96x96 renders (tests.synth_pages.colorizer_model)."""
    return synth_pages.colorizer_model(tmp_path_factory.mktemp("models") / "pages.onnx", render_size=96)


@pytest.fixture(scope="session")
def engine(model_path: Path):
    from colorrt.engines.onnxruntime import OnnxRuntimeEngine

    with OnnxRuntimeEngine(model_path, threads=2) as engine:
        yield engine


@pytest.fixture(scope="session")
def runtime(model_path: Path):
    from colorrt.runtime.runtime import Runtime

    with Runtime(model_path, batch_size=8, threads=2) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def chapter() -> list[synth_pages.SyntheticPage]:
    """Six generated pages (grid, slanted, borderless), 480x340, the character on every one."""
    return synth_pages.make_chapter(6, seed=3, size=(480, 340))
