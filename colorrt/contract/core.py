"""The colour contract: what a model eats and what it returns, stored inside every ONNX file.

A model sees a normalized lightness image at its render size and returns colour. The contract says
exactly how: the input colour space, normalization and layout, extra inputs computed on the host, the
size rule, the output kind and scaling, and how the output is merged with the picture. It is written
into the ONNX ``metadata_props`` at export, so a model file describes itself.

Format versions: 1 is the original field set; 2 adds ``merge``, ``line_art``, ``line_threshold``,
``binarize_above``, ``layout``, ``channel_scale``, ``channel_offset`` and ``extra_inputs`` (and the
input spaces ``gray``, ``L_tiled``, ``L_ab`` and output kind ``lab``). A contract that uses none of
them is still written as version 1, so older colorrt releases keep reading it; version 1 files load
unchanged (every v2 field takes its default).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from colorrt.errors import ContractError
from colorrt.modelfile import json_object, metadata, set_metadata

InputSpace = Literal["L", "gray_rgb", "L_hints", "gray", "L_tiled", "L_ab"]
OutputKind = Literal["ab", "rgb", "ab_bins", "lab"]
SizeRule = Literal["fixed", "multiple"]
Merge = Literal["chroma", "wholesale"]
LineArt = Literal["none", "threshold", "multiply"]
Layout = Literal["NCHW", "NHWC"]
ExtraKind = Literal["global", "palette", "lines"]

METADATA_KEY = "colorrt.contract"
CONTRACT_VERSION = 2
INPUT_CHANNELS = {"L": 1, "gray": 1, "gray_rgb": 3, "L_tiled": 3, "L_ab": 3, "L_hints": 4}
OUTPUT_CHANNELS = {"ab": 2, "rgb": 3, "lab": 3}  # ab_bins: one per bin centre


@dataclass(frozen=True)
class ExtraInput:
    """A second model input that the runtime computes on the host, fed by ``name``.

    Kinds:
      * ``"global"``: the model input itself (normalized, NCHW) resized bilinearly to ``size`` x
        ``size``: the fixed-size copy of a global path (Iizuka et al.: 224).
      * ``"palette"``: a reference image's binary colour palette, ``(N, bins**3)``: its joint RGB
        histogram with ``bins`` bins a channel (index ``r * bins**2 + g * bins + b``), 1 where any
        pixel falls, else 0 (Comicolorization: 6 bins, 216 values).
      * ``"lines"``: the picture's line drawing at ``scale`` x the render size, ``(N, 1, sh, sw)``:
        CIE L (truncated to integers) above its Otsu threshold is 1, the rest 0 (Comicolorization's
        super-resolution stage: 448 px for a 224 render).
    """

    name: str
    kind: ExtraKind
    size: int = 0  # "global": pixels
    scale: int = 1  # "lines": multiple of the render size
    bins: int = 6  # "palette": bins per RGB channel

    def __post_init__(self) -> None:
        _check_choice("extra_inputs kind", self.kind, ("global", "palette", "lines"))
        if self.kind == "global" and self.size < 1:
            raise ContractError(f"extra input {self.name!r}: a global copy needs size >= 1")
        if self.scale < 1 or self.bins < 2:
            raise ContractError(f"extra input {self.name!r}: scale must be >= 1 and bins >= 2")


@dataclass(frozen=True)
class ColorContract:
    """Describes a colorization model's input and output.

    Input (channel 0 is always derived from CIE L in 0..100, at the render size; ``binarize_above``
    first turns L into 100 above that value and 0 elsewhere):
      * ``"L"``: one channel, ``L * input_scale + input_offset``.
      * ``"gray"``: one channel, the sRGB grey (0..1) of L (luma Y of a grey picture), then
        ``grey * input_scale + input_offset`` (Iizuka et al.: ``Y - mean``).
      * ``"gray_rgb"``: three equal channels holding that sRGB grey, normalized likewise
        (CycleGAN-style RGB models).
      * ``"L_tiled"``: three equal channels of normalized L (ChromaGAN: L/100 tiled).
      * ``"L_ab"``: normalized L, then ``a * hint_scale`` and ``b * hint_scale`` (0 where there is no
        hint; Comicolorization's colour dots).
      * ``"L_hints"``: four channels: normalized L, ``a * hint_scale``, ``b * hint_scale`` (0 where
        there is no hint) and ``mask + mask_offset`` (SIGGRAPH17).
    ``layout`` ``"NHWC"`` puts channels last in the input and in the output (Keras models);
    ``extra_inputs`` are further inputs computed on the host (:class:`ExtraInput`).

    Size: ``"fixed"`` renders at ``render_size`` x ``render_size``; ``"multiple"`` keeps the aspect
    ratio with the longest side near ``render_size`` and both sides a multiple of ``multiple``. The
    output may come at another resolution (half, double): it is resampled to the picture's.

    Output (``value = y * output_scale + output_offset``; ``channel_scale`` / ``channel_offset``,
    one number per output channel, replace them where given):
      * ``"ab"``: two channels of CIE a, b.
      * ``"rgb"``: three channels of sRGB in 0..1.
      * ``"lab"``: three channels of CIE L, a, b.
      * ``"ab_bins"``: logits over ``bin_centers`` (ab points), decoded by annealed mean with
        ``annealing_temperature`` (ECCV16: 313 bins, T = 0.38); scale and offset are unused.
    ``output_name`` picks the output of a model that has several (ChromaGAN's class head is ignored).

    Merge: ``"chroma"`` keeps the picture's own full-resolution L and takes only the model's ab (an
    rgb / lab output is converted to Lab first); ``"wholesale"`` (rgb / lab outputs) takes the
    model's whole colour, upsampled to full resolution (line-drawing colorizers, which paint white
    paper). ``line_art`` then lays the picture's dark lines back on top: ``"threshold"`` keeps the
    picture's own grey pixel wherever its L is below ``line_threshold``; ``"multiply"`` multiplies
    the colour by the picture's grey in sRGB (0..1), as a multiply layer of the drawing over the
    colour: white paper leaves the colour as is, black lines stay black, grey tones darken it.
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
    # ---- format version 2
    merge: Merge = "chroma"
    line_art: LineArt = "none"
    line_threshold: float = 50.0  # CIE L: "threshold" line art keeps pixels darker than this
    binarize_above: float | None = None  # CIE L; None: the input is not binarized
    layout: Layout = "NCHW"
    channel_scale: tuple[float, ...] | None = None
    channel_offset: tuple[float, ...] | None = None
    extra_inputs: tuple[ExtraInput, ...] = ()

    def __post_init__(self) -> None:
        _check_choice("input_space", self.input_space, tuple(INPUT_CHANNELS))
        _check_choice("output_kind", self.output_kind, ("ab", "rgb", "ab_bins", "lab"))
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
        _check_version_2(self)

    @property
    def input_channels(self) -> int:
        """Number of channels the model input has."""
        return INPUT_CHANNELS[self.input_space]

    @property
    def output_channels(self) -> int:
        """Number of channels the model output has."""
        if self.output_kind == "ab_bins":
            return len(self.bin_centers or ())
        return OUTPUT_CHANNELS[self.output_kind]

    @property
    def channel_axis(self) -> int:
        """Axis of the channels in the model's input and output tensors (1 for NCHW, 3 for NHWC)."""
        return 3 if self.layout == "NHWC" else 1

    @property
    def takes_reference(self) -> bool:
        """True when the model takes a reference palette as an input (Comicolorization)."""
        return any(e.kind == "palette" for e in self.extra_inputs)

    @property
    def detail_scale(self) -> int:
        """How many times the render size a ``"lines"`` extra input needs the picture (1 without)."""
        return max((e.scale for e in self.extra_inputs if e.kind == "lines"), default=1)

    def v2_features(self) -> list[str]:
        """Names of the version-2 fields this contract sets away from their defaults."""
        defaults = _V2_DEFAULTS
        used = [name for name, value in defaults.items() if getattr(self, name) != value]
        if self.input_space in ("gray", "L_tiled", "L_ab"):
            used.append(f"input_space={self.input_space}")
        if self.output_kind == "lab":
            used.append("output_kind=lab")
        return used

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
        """Plain-JSON dictionary with its format version: 1 when no version-2 feature is used (the
        v2 fields are then left out, so older releases read it), else 2."""
        data = dataclasses.asdict(self)
        if self.bin_centers is not None:
            data["bin_centers"] = [list(p) for p in self.bin_centers]
        for name, default in _V2_DEFAULTS.items():
            if getattr(self, name) == default:
                del data[name]
            elif isinstance(data[name], tuple):
                data[name] = list(data[name])
        data["contract_version"] = 2 if self.v2_features() else 1
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
        for name in ("channel_scale", "channel_offset"):
            if data.get(name) is not None:
                data[name] = tuple(float(v) for v in data[name])
        if "extra_inputs" in data:
            data["extra_inputs"] = tuple(_extra_input(e) for e in data["extra_inputs"])
        try:
            return cls(**data)
        except TypeError as e:
            raise ContractError(f"contract is incomplete or malformed: {e}") from e

    @classmethod
    def from_json(cls, text: str) -> ColorContract:
        """Contract from JSON text made by :meth:`to_json`."""
        return cls.from_dict(json_object(text, "contract metadata", ContractError))


def _extra_input(data: Any) -> ExtraInput:
    if isinstance(data, ExtraInput):
        return data
    if not isinstance(data, dict):
        raise ContractError(f"contract extra_inputs entries must be JSON objects, got {data!r}")
    try:
        return ExtraInput(**data)
    except TypeError as e:
        raise ContractError(f"contract extra input {data} is malformed: {e}") from e


def _check_version_2(c: ColorContract) -> None:
    """The version-2 fields: choices, and the combinations that make sense."""
    _check_choice("merge", c.merge, ("chroma", "wholesale"))
    _check_choice("line_art", c.line_art, ("none", "threshold", "multiply"))
    _check_choice("layout", c.layout, ("NCHW", "NHWC"))
    if c.merge == "wholesale" and c.output_kind not in ("rgb", "lab"):
        raise ContractError(
            f"contract '{c.name}': merge 'wholesale' takes the model's whole colour, so output_kind must "
            f"be 'rgb' or 'lab', not {c.output_kind!r}",
            "use merge='chroma' for models that return chroma only",
        )
    if c.line_art != "none" and c.merge != "wholesale":
        raise ContractError(f"contract '{c.name}': line_art applies to merge='wholesale' only")
    for name in ("channel_scale", "channel_offset"):
        values = getattr(c, name)
        if values is not None and (c.output_kind == "ab_bins" or len(values) != c.output_channels):
            raise ContractError(
                f"contract '{c.name}': {name} needs one number per output channel "
                f"({c.output_channels} for output_kind {c.output_kind!r}), got {list(values)}"
            )
    names = [c.input_name, *(e.name for e in c.extra_inputs)]
    if len(set(names)) != len(names) or not all(isinstance(e, ExtraInput) for e in c.extra_inputs):
        raise ContractError(f"contract '{c.name}': input names must be distinct, got {names}")


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def _check_choice(field_name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ContractError(f"contract field {field_name} must be one of {list(choices)}, got {value!r}")


def write_to_onnx(model: Any, contract: ColorContract) -> None:
    """Store the contract in an ``onnx.ModelProto``'s metadata_props (replacing an older one)."""
    set_metadata(model, {METADATA_KEY: contract.to_json()})


_V2_FIELDS = (
    "merge",
    "line_art",
    "line_threshold",
    "binarize_above",
    "layout",
    "channel_scale",
    "channel_offset",
    "extra_inputs",
)
_V2_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(ColorContract) if f.name in _V2_FIELDS
}


def read_from_onnx(model: Any) -> ColorContract | None:
    """The contract stored in an ``onnx.ModelProto``, or None when it carries none."""
    stored = metadata(model).get(METADATA_KEY)
    return None if stored is None else ColorContract.from_json(stored)
