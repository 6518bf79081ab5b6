"""Shared fixtures and the GPU / TensorRT markers (skipped with a reason where unavailable)."""

from __future__ import annotations

import importlib.util

import pytest


def _cuda_reason() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'colorrt[gpu]')"
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as e:  # any CUDA driver/runtime failure means: no usable GPU here
        return f"no usable CUDA device ({type(e).__name__}: {e})"
    return None


def _tensorrt_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except Exception as e:
        return f"TensorRT is not importable ({type(e).__name__}: {e}); install tensorrt-cu13 on a GPU machine"
    return _cuda_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons = {"requires_cuda": None, "requires_tensorrt": None}
    for item in items:
        for marker in reasons:
            if item.get_closest_marker(marker) is None:
                continue
            if reasons[marker] is None:
                reasons[marker] = (_cuda_reason if marker == "requires_cuda" else _tensorrt_reason)() or ""
            if reasons[marker]:
                item.add_marker(pytest.mark.skip(reason=reasons[marker]))
