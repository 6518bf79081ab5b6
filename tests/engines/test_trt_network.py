"""Network creation flags per TensorRT version (no TensorRT needed)."""

from __future__ import annotations

import pytest

from colorrt.engines.tensorrt.network import strongly_typed_flag_needed


@pytest.mark.parametrize(
    ("version", "needed"),
    [
        ("10.0.1.6", True),
        ("10.13.3.9", True),
        ("11.0.0.12", False),
        ("11.4.1", False),
        ("12.1.0", False),
        ("9.3.0.1", True),
        ("garbled", True),  # unknown: keep the flag, ignored where it is deprecated
    ],
)
def test_strongly_typed_flag_only_before_tensorrt_11(version, needed):
    # 10.x needs the flag for ONNX dtypes to bind; 11.x is always strongly typed and deprecates it
    assert strongly_typed_flag_needed(version) is needed
