"""Shared, session-scoped material for the calibration tests: tiny models, pictures, a video."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.calibration import helpers


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("calibration")
    return {
        "resnet": helpers.tiny_resnet(root / "resnet.onnx"),
        "bins": helpers.tiny_bins(root / "bins.onnx"),
        "no_contract": helpers.tiny_resnet(root / "no_contract.onnx", contract=None),
        "pictures": helpers.picture_folder(root / "pictures", 14),
        "video": helpers.write_video(root / "clip.mp4", 60),
    }


@pytest.fixture(scope="session")
def int8_models(assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny ResNet quantized once per target (the tests only read these files)."""
    from colorrt.calibration import quantize_int8

    root = tmp_path_factory.mktemp("int8")
    return {
        target: quantize_int8(
            assets["resnet"],
            root / f"resnet.{target}.onnx",
            calib=assets["pictures"],
            target=target,
            max_samples=8,
        )
        for target in ("tensorrt", "cpu")
    }
