"""The colour contract: what a model eats and what it returns, stored inside every ONNX file.

A model sees a normalized lightness image at its render size and returns chroma. The contract says
exactly how: the input colour space and normalization, the size rule, the output kind and scaling.
It is written into the ONNX ``metadata_props`` at export, so a model file describes itself.
"""

from __future__ import annotations

import dataclasses
import difflib
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


PRESETS: dict[str, ColorContract] = {
    c.name: c
    for c in (
        ColorContract(
            name="cyclegan-rgb",
            input_space="gray_rgb",
            input_scale=2.0,
            input_offset=-1.0,
            size_rule="multiple",
            render_size=256,
            multiple=4,
            output_kind="rgb",
            output_scale=0.5,
            output_offset=0.5,
            description="CycleGAN ResNet generator, grey RGB in [-1,1] -> RGB in [-1,1] (tanh)",
        ),
        ColorContract(
            name="pix2pix-rgb",
            input_space="gray_rgb",
            input_scale=2.0,
            input_offset=-1.0,
            size_rule="fixed",
            render_size=256,
            output_kind="rgb",
            output_scale=0.5,
            output_offset=0.5,
            description="pix2pix / CycleGAN U-Net generator, grey RGB in [-1,1] -> RGB in [-1,1] (tanh)",
        ),
        ColorContract(
            name="pix2pix-colorization",
            input_space="L",
            input_scale=1 / 50,
            input_offset=-1.0,
            size_rule="fixed",
            render_size=256,
            output_kind="ab",
            output_scale=110.0,
            description="pix2pix colorization mode: L/50-1 -> ab/110 (tanh)",
        ),
        ColorContract(
            name="siggraph17",
            input_space="L_hints",
            input_scale=1 / 100,
            input_offset=-0.5,
            size_rule="fixed",
            render_size=256,
            output_kind="ab",
            output_scale=110.0,
            # The released (Caffe-trained) weights take the raw 0/1 mask: the colorizers forward
            # feeds mask_B as is; only colorization-pytorch's retrained models use mask_cent 0.5.
            mask_offset=0.0,
            description="Zhang et al. SIGGRAPH17: (L-50)/100, ab hints/110, mask 0/1 -> ab/110 (tanh)",
        ),
        ColorContract(
            name="colorrt-default",
            input_space="L",
            input_scale=1 / 50,
            input_offset=-1.0,
            size_rule="multiple",
            render_size=256,
            multiple=16,
            output_kind="ab",
            output_scale=110.0,
            description="colorrt's small bundled U-Net: L/50-1 -> ab/110 (tanh)",
        ),
    )
}


def eccv16_contract(bin_centers: Any) -> ColorContract:
    """ECCV16 contract; the 313 bin centres come from the checkpoint (``model_out`` weights x 110)."""
    centers = tuple((float(a), float(b)) for a, b in bin_centers)
    return ColorContract(
        name="eccv16",
        input_space="L",
        input_scale=1 / 100,
        input_offset=-0.5,
        size_rule="fixed",
        render_size=256,
        output_kind="ab_bins",
        output_scale=1.0,
        bin_centers=centers,
        description="Zhang et al. ECCV16: (L-50)/100 -> 313 ab-bin logits, annealed mean T=0.38",
    )


def preset(name: str) -> ColorContract:
    """The named contract preset, or a ContractError listing the presets and the closest name."""
    if name in PRESETS:
        return PRESETS[name]
    choices = sorted(PRESETS)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"choose one of {choices}"
    if name == "eccv16":
        hint = "the eccv16 contract holds the checkpoint's bin centres: export the model with colorrt export"
    raise ContractError(f"unknown contract preset '{name}'; presets: {choices}", hint)


def write_to_onnx(model: Any, contract: ColorContract) -> None:
    """Store the contract in an ``onnx.ModelProto``'s metadata_props (replacing an older one)."""
    set_metadata(model, {METADATA_KEY: contract.to_json()})


def chosen_contract(
    override: ColorContract | str | None, stored: ColorContract | None, missing: str, hint: str
) -> ColorContract:
    """``override`` when given (a contract or a preset name), else ``stored``; when there is
    neither, a ContractError saying ``missing`` with ``hint`` (each caller names its source)."""
    if isinstance(override, str):
        return preset(override)
    if override is not None:
        return override
    if stored is None:
        raise ContractError(missing, hint)
    return stored


def read_from_onnx(model: Any) -> ColorContract | None:
    """The contract stored in an ``onnx.ModelProto``, or None when it carries none."""
    stored = metadata(model).get(METADATA_KEY)
    return None if stored is None else ColorContract.from_json(stored)
