"""The engine cache key (every input that changes a built engine) and the file digests it uses."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from colorrt.digest import file_sha256
from colorrt.engines.tensorrt.profiles import Profile
from colorrt.errors import InputError

CACHE_KEY_VERSION = 1
_GIB = 1 << 30


def workspace_bytes(workspace_gb: float) -> int:
    """Workspace limit in bytes from GiB (rounded to whole bytes)."""
    if not math.isfinite(workspace_gb) or workspace_gb <= 0:
        raise InputError(f"--workspace must be a positive number of GiB, got {workspace_gb}")
    return int(round(workspace_gb * _GIB))


def cache_key(
    onnx_sha256: str,
    precision: str,
    profiles: Sequence[Profile],
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    opt_level: int,
    workspace_gb: float,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Stable hex digest of everything that changes the built engine.

    Building the same ONNX with the same settings on the same GPU and TensorRT version gives the
    same key; changing any of them gives another key, so the cache rebuilds instead of handing back
    a mismatched engine. ``extra`` carries further inputs (colorrt version, calibration-set hash).
    """
    payload = {
        "v": CACHE_KEY_VERSION,
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "profiles": [p.to_dict() for p in profiles],
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "compute_capability": str(compute_capability),
        "opt_level": int(opt_level),
        "workspace_bytes": workspace_bytes(workspace_gb),
        "extra": dict(sorted((extra or {}).items())),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_folder(folder: str | os.PathLike[str]) -> str:
    """Hex SHA-256 over the relative names and bytes of every file under ``folder`` (sorted)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()
