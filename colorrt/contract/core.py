"""The colour contract: what a model eats and what it returns, stored inside every ONNX file.

A model sees a normalized lightness image at its render size and returns chroma. The contract says
exactly how: the input colour space and normalization, the size rule, the output kind and scaling.
It is written into the ONNX ``metadata_props`` at export, so a model file describes itself.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from colorrt.errors import ContractError
from colorrt.modelfile import metadata, set_metadata

InputSpace = Literal["L", "gray_rgb", "L_hints"]
OutputKind = Literal["ab", "rgb", "ab_bins"]
SizeRule = Literal["fixed", "multiple"]

METADATA_KEY = "colorrt.contract"
CONTRACT_VERSION = 1


@dataclass(frozen=True)
class ColorContract:
    """Describes a colorization model's input and output.

    Input (channel 0 is always derived from CIE L in 0..100):
      * ``"L"``: one channel, ``L * input_scale + input_offset``.
      * ``"gray_rgb"``: three equal channels holding the sRGB grey (0..1) of a neutral colour of
        lightness L, then ``grey * input_scale + input_offset`` (CycleGAN-style RGB models).
      * ``"L_hints"``: four channels: normalized L, ``a * hint_scale``, ``b * hint_scale`` (0 where
        there is no hint) and ``mask + mask_offset`` (SIGGRAPH17).

    Size: ``"fixed"`` renders at ``render_size`` x ``render_size``; ``"multiple"`` keeps the aspect
    ratio with the longest side near ``render_size`` and both sides a multiple of ``multiple``.

    Output (``value = y * output_scale + output_offset``):
      * ``"ab"``: two channels of CIE a, b.
      * ``"rgb"``: three channels of sRGB in 0..1; its ab is taken after conversion to Lab.
      * ``"ab_bins"``: logits over ``bin_centers`` (ab points), decoded by annealed mean with
        ``annealing_temperature`` (ECCV16: 313 bins, T = 0.38); scale and offset are unused.
    """

    name: str
    input_space: InputSpace = "L"
    input_scale: float = 1 / 50
    input_offset: float = -1.0
    size_rule: SizeRule = "fixed"
    render_size: int = 256  # pixels: side of a fixed render, longest side of a "multiple" render
    multiple: int = 1  # pixels
    output_kind: OutputKind = "ab"
    output_scale: float = 110.0
    output_offset: float = 0.0
    bin_centers: tuple[tuple[float, float], ...] | None = None  # CIE ab of each output bin
    annealing_temperature: float = 0.38
    hint_scale: float = 1 / 110
    mask_offset: float = -0.5
    input_name: str = "input"
    output_name: str = "output"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_choice("input_space", self.input_space, ("L", "gray_rgb", "L_hints"))
        _check_choice("output_kind", self.output_kind, ("ab", "rgb", "ab_bins"))
        _check_choice("size_rule", self.size_rule, ("fixed", "multiple"))
        if self.render_size < 1 or self.multiple < 1:
            raise ContractError(
                f"contract '{self.name}': render_size and multiple must be >= 1, "
                f"got {self.render_size} and {self.multiple}"
            )
        if self.output_kind == "ab_bins" and not self.bin_centers:
            raise ContractError(
                f"contract '{self.name}': output_kind 'ab_bins' needs bin_centers (the ab of each bin)",
                "export the model with colorrt export, which stores the bin centres from its weights",
            )
        if self.annealing_temperature <= 0:
            raise ContractError(f"contract '{self.name}': annealing_temperature must be > 0")

    @property
    def input_channels(self) -> int:
        """Number of channels the model input has."""
        return {"L": 1, "gray_rgb": 3, "L_hints": 4}[self.input_space]

    @property
    def output_channels(self) -> int:
        """Number of channels the model output has."""
        if self.output_kind == "ab_bins":
            return len(self.bin_centers or ())
        return {"ab": 2, "rgb": 3}[self.output_kind]

    def render_shape(self, height: int, width: int) -> tuple[int, int]:
        """Render (height, width) the model runs at for an input image of the given size."""
        if height < 1 or width < 1:
            raise ContractError(f"image size must be positive, got {height}x{width}")
        if self.size_rule == "fixed":
            return self.render_size, self.render_size
        scale = self.render_size / max(height, width)
        return _round_to(height * scale, self.multiple), _round_to(width * scale, self.multiple)

    def replace(self, **changes: Any) -> ColorContract:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary, with a format version."""
        data = dataclasses.asdict(self)
        if self.bin_centers is not None:
            data["bin_centers"] = [list(p) for p in self.bin_centers]
        data["contract_version"] = CONTRACT_VERSION
        return data

    def to_json(self) -> str:
        """Compact JSON text of the contract."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColorContract:
        """Contract from a dictionary made by :meth:`to_dict`."""
        data = dict(data)
        version = data.pop("contract_version", CONTRACT_VERSION)
        if version > CONTRACT_VERSION:
            raise ContractError(
                f"contract format version {version} is newer than this colorrt understands "
                f"({CONTRACT_VERSION})",
                "upgrade colorrt",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContractError(f"contract has unknown fields {unknown}; known fields: {sorted(known)}")
        if data.get("bin_centers") is not None:
            data["bin_centers"] = tuple(tuple(float(v) for v in p) for p in data["bin_centers"])
        try:
            return cls(**data)
        except TypeError as e:
            raise ContractError(f"contract is incomplete or malformed: {e}") from e

    @classmethod
    def from_json(cls, text: str) -> ColorContract:
        """Contract from JSON text made by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContractError(f"contract metadata is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ContractError("contract metadata must be a JSON object")
        return cls.from_dict(data)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def _check_choice(field_name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ContractError(f"contract field {field_name} must be one of {list(choices)}, got {value!r}")


def write_to_onnx(model: Any, contract: ColorContract) -> None:
    """Store the contract in an ``onnx.ModelProto``'s metadata_props (replacing an older one)."""
    set_metadata(model, {METADATA_KEY: contract.to_json()})


def read_from_onnx(model: Any) -> ColorContract | None:
    """The contract stored in an ``onnx.ModelProto``, or None when it carries none."""
    stored = metadata(model).get(METADATA_KEY)
    return None if stored is None else ColorContract.from_json(stored)
