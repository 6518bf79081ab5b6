"""The engine cache key: stable, and changed by every input that changes the built engine."""

from __future__ import annotations

import copy

import pytest

from colorrt.engines.tensorrt.keys import cache_key, workspace_bytes
from colorrt.engines.tensorrt.profiles import derive_profiles, parse_shape_ranges
from colorrt.errors import InputError
from tests.engines.trt_helpers import CYCLEGAN, PROFILES

KEY_ARGS = {
    "onnx_sha256": "ab" * 32,
    "precision": "fp16",
    "profiles": PROFILES,
    "trt_version": "11.0.0.1",
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "compute_capability": "9.0",
    "opt_level": 3,
    "workspace_gb": 4.0,
    "extra": {"colorrt": "0.1.0"},
}


def test_cache_key_is_a_stable_hex_digest():
    key = cache_key(**KEY_ARGS)
    assert key == cache_key(**copy.deepcopy(KEY_ARGS))
    assert len(key) == 64 and int(key, 16) >= 0
    # golden value: a change here silently invalidates every cached engine, so make it on purpose
    assert key == "92c3761efcc74d717acd3513ff6a0ac3b232d9685d471726d2bb72317a005ab0"
    assert cache_key(**{**KEY_ARGS, "workspace_gb": 4}) == key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("onnx_sha256", "cd" * 32),
        ("precision", "int8"),
        ("profiles", derive_profiles(CYCLEGAN, parse_shape_ranges("1:8:16"))),
        ("profiles", derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16", "64x64:256x256:512x512"))),
        ("trt_version", "11.1.0.3"),
        ("gpu_name", "NVIDIA H200"),
        ("compute_capability", "8.9"),
        ("opt_level", 5),
        ("workspace_gb", 8.0),
        ("extra", {"colorrt": "0.1.0", "calib_sha256": "ef" * 32}),
    ],
)
def test_every_build_input_changes_the_cache_key(field, value):
    assert cache_key(**{**KEY_ARGS, field: value}) != cache_key(**KEY_ARGS)


def test_workspace_must_be_positive():
    with pytest.raises(InputError, match="--workspace"):
        workspace_bytes(0)
    assert workspace_bytes(0.5) == 1 << 29
