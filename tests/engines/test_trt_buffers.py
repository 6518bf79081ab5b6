"""Buffer byte sizes of an engine's tensors."""

from __future__ import annotations

import pytest

from colorrt.engines.tensorrt.buffers import BufferPlan
from colorrt.errors import BackendError


def test_buffer_plan_sizes():
    shapes = {"input": (4, 3, 256, 256), "output": (4, 3, 256, 256)}
    half = BufferPlan.build(shapes, {"input": "float32", "output": "float16"}, inputs=["input"])
    assert half.get("input").nbytes == 4 * 3 * 256 * 256 * 4
    assert half.get("output").nbytes == 4 * 3 * 256 * 256 * 2
    assert half.total_bytes == 4 * 3 * 256 * 256 * 6
    assert half.get("input").is_input and not half.get("output").is_input
    small = BufferPlan.build(
        {"input": (1, 3, 64, 64), "output": (1, 3, 64, 64)}, {"input": "f4", "output": "f2"}, ["input"]
    )
    assert small.fits_within(half) and not half.fits_within(small)
    with pytest.raises(BackendError, match="dynamic"):
        BufferPlan.build({"input": (-1, 3, 64, 64)}, {"input": "f4"}, ["input"])
