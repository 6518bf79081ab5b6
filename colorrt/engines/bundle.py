"""Model bundles: several ONNX networks that run as one model, described by a ``bundle.json`` manifest.

An instance-aware colorization bundle (``colorrt export --arch instcolorization``) is a folder with
``G.onnx`` (instance network on the box crops), ``GF.onnx`` (fusion network on the full image),
``GComp.onnx`` (the full-image network used when no box is found) and ``bundle.json``: the colour
contract of the networks' inputs, the fusion layers' shapes, the detector contract and each file's
SHA-256. The detector itself is the user's (any ONNX detector); its :class:`DetectorContract` says how
to feed it and read its output, and may also be stored in the detector file (metadata ``colorrt.detector``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from colorrt.atomic import write_text
from colorrt.contract import ColorContract
from colorrt.digest import file_sha256
from colorrt.errors import ContractError, ModelError

MANIFEST = "bundle.json"
BUNDLE_FORMAT = "colorrt.bundle"
BUNDLE_VERSION = 1
DETECTOR_KEY = "colorrt.detector"  # metadata key of a detector contract inside a detector ONNX file
ROLES = ("G", "GF", "GComp")

OutputLayout = Literal["boxes_scores", "detections"]
LAYOUTS: dict[str, str] = {
    "boxes_scores": "two outputs: boxes (N, 4) or (1, N, 4) as x0, y0, x1, y1 and scores (N,) or (1, N)",
    "detections": "one output (N, K) or (1, N, K), K >= 5: x0, y0, x1, y1, score[, ...] per row",
}


@dataclass(frozen=True)
class DetectorContract:
    """How colorrt feeds an ONNX object detector and reads its boxes.

    The detector sees the grey image: CIE L x ``input_scale`` (2.55: 0..255, the 8-bit L the official
    code gives detectron2) in ``channels`` equal planes, laid out ``NCHW`` (batch of one) or ``CHW``;
    at ``input_size`` (H, W) when the detector is fixed-size (its boxes are scaled back), else at the
    image's own size (unless the graph's input has fixed dimensions, which are used). Boxes are pixel
    coordinates of the detector's input. Detections scoring above ``score_threshold`` are kept, at
    most ``max_boxes`` of the highest scores (official: 0.7 and 8). ``outputs`` names the graph
    outputs to read (default: the first one or two, in graph order).
    """

    output_layout: OutputLayout = "boxes_scores"
    score_threshold: float = 0.7
    max_boxes: int = 8
    input_scale: float = 2.55
    channels: int = 3
    input_layout: Literal["NCHW", "CHW"] = "NCHW"
    input_size: tuple[int, int] | None = None
    outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.output_layout not in LAYOUTS:
            raise ContractError(
                f"detector output_layout must be one of {list(LAYOUTS)}, got {self.output_layout!r}"
            )
        if self.input_layout not in ("NCHW", "CHW") or self.channels not in (1, 3):
            raise ContractError(
                f"detector input must be NCHW or CHW with 1 or 3 channels, got {self.input_layout} "
                f"with {self.channels}"
            )
        if self.max_boxes < 1 or not 0.0 <= self.score_threshold < 1.0:
            raise ContractError(
                f"detector max_boxes must be >= 1 and score_threshold in [0, 1), got {self.max_boxes} "
                f"and {self.score_threshold}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary."""
        data = dataclasses.asdict(self)
        data["outputs"] = list(self.outputs)
        data["input_size"] = list(self.input_size) if self.input_size else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorContract:
        """Contract from :meth:`to_dict` output (or a hand-written subset of its fields)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContractError(f"detector contract has unknown fields {unknown}; known: {sorted(known)}")
        data = dict(data)
        if data.get("input_size") is not None:
            data["input_size"] = tuple(int(v) for v in data["input_size"])
        data["outputs"] = tuple(data.get("outputs") or ())
        return cls(**data)


@dataclass(frozen=True)
class FusionLayer:
    """One fused layer: its name, feature channels and square size (the maps carry channels + 1)."""

    name: str
    channels: int
    size: int


@dataclass(frozen=True)
class InstanceBundle:
    """A bundle's manifest, with the folder it was read from."""

    root: Path
    arch: str
    contract: ColorContract  # the networks' input normalization and output scaling
    layers: tuple[FusionLayer, ...]
    detector: DetectorContract = field(default_factory=DetectorContract)
    files: dict[str, str] = field(default_factory=dict)  # role -> file name
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> hex digest
    facts: dict[str, Any] = field(default_factory=dict)  # export provenance

    def path(self, role: str) -> Path:
        """The ONNX file of a role (``G``, ``GF``, ``GComp``)."""
        return self.root / self.files[role]

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written to ``bundle.json``."""
        return {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "arch": self.arch,
            "contract": self.contract.to_dict(),
            "layers": [dataclasses.asdict(layer) for layer in self.layers],
            "detector": self.detector.to_dict(),
            "files": dict(self.files),
            "sha256": dict(self.sha256),
            "facts": dict(self.facts),
        }


def is_bundle(path: Any) -> bool:
    """True for a folder holding a ``bundle.json`` manifest."""
    return isinstance(path, (str, os.PathLike)) and (Path(path) / MANIFEST).is_file()


def write_manifest(bundle: InstanceBundle) -> Path:
    """Write ``bundle.json`` into ``bundle.root`` (atomically)."""
    path = bundle.root / MANIFEST
    write_text(path, json.dumps(bundle.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_bundle(path: str | os.PathLike[str], verify: bool = True) -> InstanceBundle:
    """The manifest of a bundle folder; ``verify`` checks each network file's SHA-256."""
    root = Path(path)
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{root} is not a readable model bundle ({MANIFEST}: {e})", _REEXPORT) from e
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"{root / MANIFEST} is not a colorrt bundle manifest", _REEXPORT)
    if int(data.get("version", 0)) > BUNDLE_VERSION:
        raise ModelError(f"{root} is a bundle of format version {data['version']}", "upgrade colorrt")
    try:
        bundle = InstanceBundle(
            root=root,
            arch=str(data["arch"]),
            contract=ColorContract.from_dict(data["contract"]),
            layers=tuple(FusionLayer(**layer) for layer in data["layers"]),
            detector=DetectorContract.from_dict(data.get("detector") or {}),
            files={role: str(data["files"][role]) for role in ROLES},
            sha256=dict(data.get("sha256") or {}),
            facts=dict(data.get("facts") or {}),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{root / MANIFEST} is incomplete or malformed: {e!r}", _REEXPORT) from e
    for role in ROLES:
        _check_file(bundle, role, verify)
    return bundle


_REEXPORT = "write the bundle again with: colorrt export --arch instcolorization --weights DIR -o FOLDER"


def _check_file(bundle: InstanceBundle, role: str, verify: bool) -> None:
    path = bundle.path(role)
    if not path.is_file():
        raise ModelError(f"bundle {bundle.root} lacks its {role} network {path.name}", _REEXPORT)
    expected = bundle.sha256.get(path.name)
    if verify and expected and file_sha256(path) != expected:
        raise ModelError(
            f"bundle {bundle.root}: {path.name} does not match its SHA-256 in {MANIFEST} (changed?)",
            _REEXPORT,
        )
