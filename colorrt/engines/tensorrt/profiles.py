"""Shape ranges (``--batch 1:4:16 --size 256x256:512x512:1088x1920``) → TensorRT optimization
profiles that respect the model's colour contract (fixed render size, or sizes that are multiples
of N), and the check of a batch shape against them. Pure logic: no tensorrt, no cupy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from colorrt.contract import ColorContract
from colorrt.errors import BackendError, ContractError, InputError

Shape = tuple[int, ...]
Size = tuple[int, int]  # (height, width) in pixels

DEFAULT_BATCH = (1, 4, 16)  # min, opt, max images per batch


@dataclass(frozen=True)
class ShapeRanges:
    """Requested batch and size ranges, each (min, opt, max); ``None`` means "decide from the model"."""

    batch: tuple[int, int, int] | None
    size: tuple[Size, Size, Size] | None


def parse_shape_ranges(batch: str | int | None = "1:4:16", size: str | None = None) -> ShapeRanges:
    """Parse ``--batch`` and ``--size`` text.

    ``batch``: ``"MIN:OPT:MAX"`` (e.g. ``"1:4:16"``) or one number ``N`` meaning ``1:N:N`` (any batch
    up to N, tuned for N); ``None``: the model's fixed batch, else 1:4:16.
    ``size``: ``"HxW"`` (exactly that size) or ``"HxW:HxW:HxW"`` (min:opt:max, height x width);
    ``None``: derived from the contract.
    """
    return ShapeRanges(_parse_batch(batch), _parse_size(size))


def _parse_batch(batch: str | int | None) -> tuple[int, int, int] | None:
    if batch is None:
        return None
    text = str(batch).strip()
    parts = text.split(":")
    usage = "give --batch as MIN:OPT:MAX such as 1:4:16, or one number N for 1:N:N"
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"--batch {text!r} is not a batch range", usage) from None
    if len(values) == 1:
        values = [1, values[0], values[0]]
    if len(values) != 3 or min(values) < 1:
        raise InputError(f"--batch {text!r} is not a batch range of positive numbers", usage)
    lo, opt, hi = values
    if not lo <= opt <= hi:
        raise InputError(f"--batch {text!r}: expected MIN <= OPT <= MAX, got {lo}, {opt}, {hi}", usage)
    return lo, opt, hi


def _parse_size(size: str | None) -> tuple[Size, Size, Size] | None:
    if size is None:
        return None
    text = str(size).strip()
    usage = "give --size as HEIGHTxWIDTH (256x256) or MIN:OPT:MAX sizes (256x256:512x512:1088x1920)"
    sizes = [_parse_hw(part, text, usage) for part in text.split(":")]
    if len(sizes) == 1:
        sizes = sizes * 3
    if len(sizes) != 3:
        raise InputError(f"--size {text!r} has {len(sizes)} sizes; expected 1 or 3", usage)
    lo, opt, hi = sizes
    for axis, name in ((0, "height"), (1, "width")):
        if not lo[axis] <= opt[axis] <= hi[axis]:
            raise InputError(
                f"--size {text!r}: {name}s must grow MIN <= OPT <= MAX, "
                f"got {lo[axis]}, {opt[axis]}, {hi[axis]}",
                usage,
            )
    return lo, opt, hi


def _parse_hw(part: str, text: str, usage: str) -> Size:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise InputError(f"--size {text!r}: {part!r} is not HEIGHTxWIDTH with positive numbers", usage)
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class TensorRange:
    """Min / opt / max shape of one input tensor in an optimization profile."""

    name: str
    min: Shape
    opt: Shape
    max: Shape

    def contains(self, shape: Sequence[int]) -> bool:
        """Whether ``shape`` lies inside the range on every axis."""
        shape = tuple(int(s) for s in shape)
        if len(shape) != len(self.min):
            return False
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def describe(self) -> str:
        """Human text such as ``batch 1..16 (opt 4), 3 ch, 64x64..256x256 (opt 256x256)``."""
        if len(self.min) != 4:
            return f"{list(self.min)}..{list(self.max)} (opt {list(self.opt)})"
        (b0, c, h0, w0), (b1, _, h1, w1), (b2, _, h2, w2) = self.min, self.opt, self.max
        return f"batch {b0}..{b2} (opt {b1}), {c} ch, {h0}x{w0}..{h2}x{w2} (opt {h1}x{w1})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorRange:
        return cls(
            str(data["name"]),
            tuple(int(v) for v in data["min"]),
            tuple(int(v) for v in data["opt"]),
            tuple(int(v) for v in data["max"]),
        )


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile: a shape range for every dynamic input."""

    tensors: tuple[TensorRange, ...]

    def tensor(self, name: str | None = None) -> TensorRange:
        """The range of input ``name`` (default: the only input)."""
        if name is None and len(self.tensors) == 1:
            return self.tensors[0]
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise BackendError(
            f"optimization profile has no input {name!r}; it covers {[t.name for t in self.tensors]}"
        )

    def describe(self) -> str:
        return "; ".join(f"{t.name}: {t.describe()}" for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {"tensors": [t.to_dict() for t in self.tensors]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        return cls(tuple(TensorRange.from_dict(t) for t in data["tensors"]))


def derive_profiles(
    contract: ColorContract,
    ranges: ShapeRanges,
    input_shape: Sequence[int | str | None] | None = None,
) -> list[Profile]:
    """Optimization profile(s) for ``contract``'s input from the requested ranges.

    Sizes are rounded up to the contract's ``multiple``; a ``fixed`` contract always renders at
    ``render_size`` x ``render_size`` and rejects other sizes. ``input_shape`` is the model's
    declared input shape (ints for fixed axes, anything else for dynamic ones): fixed axes must
    agree with the ranges. Channels come from ``contract.input_channels``.
    """
    fixed = _static_axes(input_shape)
    if 1 in fixed and fixed[1] != contract.input_channels:
        raise ContractError(
            f"the model's input has {fixed[1]} channels but contract '{contract.name}' "
            f"({contract.input_space}) feeds {contract.input_channels}",
            "pass the --contract that matches this model",
        )
    batch = _batch_range(ranges.batch, fixed.get(0))
    sizes = _size_range(contract, ranges.size, (fixed.get(2), fixed.get(3)))
    channels = contract.input_channels
    shapes = [(b, channels, h, w) for b, (h, w) in zip(batch, sizes, strict=True)]
    return [Profile((TensorRange(contract.input_name, *shapes),))]


def _static_axes(input_shape: Sequence[int | str | None] | None) -> dict[int, int]:
    if input_shape is None:
        return {}
    if len(input_shape) != 4:
        raise ContractError(f"the model's input has shape {list(input_shape)}; colorrt expects NCHW (4 dims)")
    return {axis: int(d) for axis, d in enumerate(input_shape) if isinstance(d, int) and d > 0}


def _batch_range(requested: tuple[int, int, int] | None, fixed: int | None) -> tuple[int, int, int]:
    if requested is None:
        return (fixed, fixed, fixed) if fixed else DEFAULT_BATCH
    if fixed is not None and requested != (fixed, fixed, fixed):
        raise ContractError(
            f"the model's input has a fixed batch of {fixed}, but the batch range asks for "
            f"{requested[0]}:{requested[1]}:{requested[2]}",
            f"build with --batch {fixed}:{fixed}:{fixed} (or leave --batch out), "
            "or re-export the model with a dynamic batch",
        )
    return requested


def _size_range(
    contract: ColorContract, requested: tuple[Size, Size, Size] | None, fixed: tuple[int | None, int | None]
) -> tuple[Size, Size, Size]:
    if contract.size_rule == "fixed":
        side = contract.render_size
        wanted = ((side, side),) * 3
        if requested is not None and requested != wanted:
            raise ContractError(
                f"contract '{contract.name}' renders at a fixed {side}x{side}, but the size range asks for "
                f"{_sizes_text(requested)}",
                f"leave --size out (the engine is built for {side}x{side}) or pass --size {side}x{side}",
            )
        sizes = wanted
    elif requested is None:
        # a model that fixes one axis keeps it; the other axis gets the contract's default range
        sizes = tuple((fixed[0] or h, fixed[1] or w) for h, w in default_size_range(contract))  # type: ignore[assignment]
    else:
        m = contract.multiple
        sizes = tuple((_round_up(h, m), _round_up(w, m)) for h, w in requested)  # type: ignore[assignment]
    _check_fixed_size(sizes, fixed)
    return sizes


def _check_fixed_size(sizes: tuple[Size, Size, Size], fixed: tuple[int | None, int | None]) -> None:
    for axis, name in ((0, "height"), (1, "width")):
        want = fixed[axis]
        if want is not None and any(s[axis] != want for s in sizes):
            raise ContractError(
                f"the model's input has a fixed {name} of {want}, but the engine would be built for sizes "
                f"{_sizes_text(sizes)}",
                "leave --size out, re-export the model with dynamic height and width, "
                "or use the --contract that matches the model",
            )


def default_size_range(contract: ColorContract) -> tuple[Size, Size, Size]:
    """Size range of a "multiple" contract when ``--size`` is not given.

    The runtime renders with the longest side at ``render_size`` (rounded to the multiple), so the
    maximum is that square; the minimum side is a quarter of it (images wider than 4:1 need
    ``--size``); the engine is tuned for the full square.
    """
    m = contract.multiple
    top = _round_up(contract.render_size, m)
    low = _round_up(max(m, contract.render_size // 4), m)
    return (low, low), (top, top), (top, top)


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-int(value) // multiple) * multiple)


def _sizes_text(sizes: tuple[Size, Size, Size]) -> str:
    return ":".join(f"{h}x{w}" for h, w in sizes)


def check_shape_in_profile(shape: Sequence[int], profile: Profile, name: str | None = None) -> None:
    """Raise InputError saying which axis of ``shape`` falls outside ``profile`` (and how to fix it)."""
    rng = profile.tensor(name)
    shape = tuple(int(s) for s in shape)
    if rng.contains(shape):
        return
    if len(shape) != len(rng.min):
        raise InputError(
            f"TensorRT engine input {rng.name!r} expects {len(rng.min)} dims (NCHW), got shape {shape}"
        )
    if len(shape) == 4 and shape[1] != rng.min[1]:
        raise InputError(f"TensorRT engine input {rng.name!r} has {rng.min[1]} channels, got shape {shape}")
    problems = []
    if len(shape) == 4 and not rng.min[0] <= shape[0] <= rng.max[0]:
        problems.append(f"batch {shape[0]} is outside {rng.min[0]}..{rng.max[0]}")
    if len(shape) == 4 and not all(rng.min[a] <= shape[a] <= rng.max[a] for a in (2, 3)):
        problems.append(
            f"size {shape[2]}x{shape[3]} is outside {rng.min[2]}x{rng.min[3]}..{rng.max[2]}x{rng.max[3]}"
        )
    raise InputError(
        f"shape {shape} is outside the engine's optimization profile "
        f"({'; '.join(problems) or rng.describe()})",
        "split the batch or resize to the render size, or rebuild with a wider "
        "colorrt build --batch MIN:OPT:MAX / --size MIN:OPT:MAX",
    )


def select_profile(shape: Sequence[int], profiles: Sequence[Profile], name: str | None = None) -> int:
    """Index of the first profile that covers ``shape``; InputError explaining the mismatch otherwise."""
    for index, profile in enumerate(profiles):
        if profile.tensor(name).contains(shape):
            return index
    if not profiles:
        raise BackendError("the engine has no optimization profile")
    check_shape_in_profile(shape, profiles[0], name)
    raise AssertionError("unreachable: check_shape_in_profile raises for a shape outside the profile")
