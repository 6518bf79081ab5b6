""":class:`EngineFacts`, the build facts stored next to every plan (``M.plan.json``) and shown by
``colorrt info``, and the check that a plan can run on this TensorRT and GPU."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorrt.atomic import write_bytes
from colorrt.contract import ColorContract
from colorrt.engines.tensorrt.profiles import Profile
from colorrt.errors import BackendError, ModelError
from colorrt.modelfile import json_object

FACTS_VERSION = 1


@dataclass(frozen=True)
class EngineFacts:
    """The contract and build facts of a TensorRT plan, stored as ``<plan>.json`` beside it."""

    contract: ColorContract
    precision: str  # what the heavy layers run in: fp32 / fp16 / int8
    profiles: tuple[Profile, ...]
    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"
    onnx_sha256: str
    build_options: dict[str, Any] = field(default_factory=dict)
    requested_precision: str = ""  # as asked: fp32 / fp16 / int8 / best
    precision_counts: dict[str, int] = field(default_factory=dict)  # heavy layers per precision
    precision_verified: bool = False
    plan_sha256: str = ""
    plan_size: int = 0  # bytes
    cache_key: str = ""
    colorrt_version: str = ""
    created: str = ""  # ISO 8601 UTC

    def replace(self, **changes: Any) -> EngineFacts:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["contract"] = self.contract.to_dict()
        data["profiles"] = [p.to_dict() for p in self.profiles]
        data["build_options"] = dict(self.build_options)
        data["precision_counts"] = dict(self.precision_counts)
        data["facts_version"] = FACTS_VERSION
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineFacts:
        data = dict(data)
        version = data.pop("facts_version", FACTS_VERSION)
        if not isinstance(version, int) or version > FACTS_VERSION:
            raise ModelError(
                f"engine facts format version {version} is newer than this colorrt "
                f"understands ({FACTS_VERSION})",
                "upgrade colorrt, or rebuild the engine with colorrt build",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            close = {u: difflib.get_close_matches(u, known, n=1) for u in unknown}
            raise ModelError(f"engine facts have unknown fields {unknown} (close: {close})")
        try:
            data["contract"] = ColorContract.from_dict(data["contract"])
            data["profiles"] = tuple(Profile.from_dict(p) for p in data["profiles"])
            return cls(**data)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"engine facts are incomplete or malformed: {e!r}") from e

    @classmethod
    def from_json(cls, text: str) -> EngineFacts:
        return cls.from_dict(json_object(text, "engine facts", ModelError))


def sidecar_path(plan_path: str | os.PathLike[str]) -> Path:
    """Where the facts of ``M.plan`` live: ``M.plan.json``."""
    plan_path = Path(plan_path)
    return plan_path.with_name(plan_path.name + ".json")


def write_facts(plan_path: str | os.PathLike[str], facts: EngineFacts) -> Path:
    """Write the sidecar of ``plan_path`` atomically; returns its path."""
    path = sidecar_path(plan_path)
    write_bytes(path, facts.to_json().encode("utf-8"))
    return path


def read_facts(plan_path: str | os.PathLike[str]) -> EngineFacts:
    """The facts stored beside ``plan_path``, or ModelError saying what is missing or wrong."""
    path = sidecar_path(plan_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(
            f"{plan_path} has no facts file {path.name} (its colour contract and build settings)",
            "rebuild the engine with colorrt build, or pass contract= / --contract to run it anyway",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read the engine facts {path}: {e}") from e
    try:
        return EngineFacts.from_json(text)
    except ModelError as e:
        raise ModelError(f"{path}: {e.what}", e.hint or "rebuild the engine with colorrt build") from e


def compatibility_problems(
    facts: EngineFacts, *, trt_version: str, gpu_name: str, compute_capability: str
) -> list[str]:
    """Why a plan built as ``facts`` says cannot run here (empty when it can)."""
    problems = []
    if facts.trt_version != trt_version:
        problems.append(f"built with TensorRT {facts.trt_version}, this is TensorRT {trt_version}")
    if str(facts.compute_capability) != str(compute_capability):
        problems.append(
            f"built for compute capability {facts.compute_capability} ({facts.gpu_name}), "
            f"this GPU is {compute_capability} ({gpu_name})"
        )
    elif facts.gpu_name != gpu_name:
        problems.append(f"built on a {facts.gpu_name}, this GPU is a {gpu_name}")
    return problems


def check_compatible(
    facts: EngineFacts,
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    path: str | os.PathLike[str] = "the engine",
) -> None:
    """Raise BackendError when the plan was built for another TensorRT version or GPU."""
    problems = compatibility_problems(
        facts, trt_version=trt_version, gpu_name=gpu_name, compute_capability=compute_capability
    )
    if problems:
        raise BackendError(
            f"{path} cannot run here: {'; '.join(problems)}",
            "TensorRT engines are tied to one TensorRT version and GPU model: rebuild it here with "
            "colorrt build (the ONNX model is portable)",
        )
