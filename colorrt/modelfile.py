"""ONNX model files: ``metadata_props`` read and write (the one place that touches them), atomic save.

A colorrt model file describes itself through these entries (the colour contract, provenance,
precision facts). Functions take an ``onnx.ModelProto``; ``onnx`` itself is imported by the caller,
except by :func:`save`, which writes a model file atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from colorrt.atomic import replaced_when_done
from colorrt.errors import ColorRTError, InputError

# Written by colorrt.calibration into FP16 / INT8 files and read by the engines.
PRECISION_KEY = "colorrt.precision"  # "fp32" / "fp16" / "int8"
TARGET_KEY = "colorrt.quant_target"  # INT8 only: "tensorrt" / "cpu"
FACTS_KEY = "colorrt.quantization"  # JSON record of how the file was converted


def metadata(proto: Any) -> dict[str, str]:
    """The model's metadata_props as a dictionary."""
    return {p.key: p.value for p in proto.metadata_props}


def set_metadata(proto: Any, entries: Mapping[str, str | None]) -> None:
    """Set (or, for None values, remove) metadata_props entries, keeping the others in order."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    for key, value in kept + [(k, v) for k, v in entries.items() if v is not None]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save(proto: Any, path: str | os.PathLike[str]) -> Path:
    """Save an ``onnx.ModelProto`` to ``path`` atomically (temporary name, then rename).

    Raises:
        InputError: the file cannot be written.
    """
    import onnx

    path = Path(path)
    try:
        with replaced_when_done(path) as temp:
            onnx.save_model(proto, str(temp))
    except OSError as e:
        raise InputError(f"cannot write {path}: {e}", "check the folder exists and is writable") from e
    return path


def json_object(text: str, what: str, error: type[ColorRTError]) -> dict[str, Any]:
    """``text`` parsed as a JSON object; ``error("<what> is not valid JSON ...")`` when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object")
    return data
