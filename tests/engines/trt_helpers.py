"""Shared by the TensorRT pure-logic tests: contracts, profiles, facts and the inspector samples."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from colorrt.contract import PRESETS
from colorrt.engines.tensorrt.facts import EngineFacts
from colorrt.engines.tensorrt.profiles import derive_profiles, parse_shape_ranges

DATA = Path(__file__).parent / "data"
CYCLEGAN = PRESETS["cyclegan-rgb"]  # gray_rgb (3 ch), sizes a multiple of 4, render 256
DEFAULT = PRESETS["colorrt-default"]  # L (1 ch), sizes a multiple of 16
FIXED = PRESETS["pix2pix-colorization"]  # L (1 ch), fixed 256x256
HAVE_TENSORRT = importlib.util.find_spec("tensorrt") is not None
PROFILES = derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16"))


def sample(name: str) -> dict:
    """An engine inspector JSON sample from data/ (see data/README.md)."""
    return json.loads((DATA / name).read_text())


def make_facts(**changes) -> EngineFacts:
    facts = EngineFacts(
        contract=CYCLEGAN,
        precision="fp16",
        profiles=tuple(PROFILES),
        trt_version="11.0.0.1",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        onnx_sha256="ab" * 32,
        build_options={"batch": "1:4:16", "size": None, "workspace_gb": 4.0, "opt_level": 3},
        requested_precision="best",
        precision_counts={"fp16": 10},
        precision_verified=True,
        colorrt_version="0.1.0",
        created="2026-01-01T00:00:00+00:00",
    )
    return facts.replace(**changes)
