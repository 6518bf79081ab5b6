"""The table of every architecture in docs/models.md, generated from the registry and the contracts.

``python -m colorrt.models.table docs/models.md`` rewrites the table between the markers; a test
checks that the file holds exactly what this module generates, so the documentation cannot drift from
what the code does. Contracts built from weights (ECCV16's bin centres, Iizuka et al.'s mean) are
described from their builder with placeholder values: the table shows their structure, not numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from colorrt.contract import ColorContract, ExtraInput, eccv16_contract, iizuka_contract, preset
from colorrt.models.registry import ARCHITECTURES, ArchSpec

START, END = "<!-- families:start -->", "<!-- families:end -->"
_SPACES = {
    "L": "L",
    "gray": "luma Y",
    "gray_rgb": "grey RGB",
    "L_tiled": "L in 3 channels",
    "L_ab": "L + ab colour dots",
    "L_hints": "L + ab hints + mask",
}
_BUILT = {
    "colorrt.models.zhang:eccv16_contract_for": lambda: eccv16_contract([(0.0, 0.0)] * 313),
    "colorrt.models.iizuka:iizuka_contract_for": lambda: iizuka_contract(0.0),
}


def contract_of(spec: ArchSpec) -> ColorContract:
    """The architecture's contract as exported (placeholders for values read from the weights)."""
    contract = _BUILT[spec.contract]() if ":" in spec.contract else preset(spec.contract)
    return contract if spec.render_size is None else contract.replace(render_size=spec.render_size)


def _number(value: float) -> str:
    return f"{value:.4g}"


def _affine(scale: str, offset: float | str) -> str:
    """``x scale + offset`` with the sign written once (``- 1``, not ``+ -1``)."""
    if isinstance(offset, str):
        return f"x {scale} {offset}"
    if not offset:
        return f"x {scale}"
    return f"x {scale} {'+' if offset > 0 else '-'} {_number(abs(offset))}"


def inputs_text(contract: ColorContract, mean_from_file: bool = False) -> str:
    """The inputs in words: the main input's space and normalization, layout, extra inputs."""
    offset = "- mean (from the file)" if mean_from_file else contract.input_offset
    text = f"{_SPACES[contract.input_space]} {_affine(_number(contract.input_scale), offset)}"
    if contract.binarize_above is not None:
        text = f"binarised ({_number(contract.binarize_above)}) {text}"
    if contract.layout != "NCHW":
        text += f", {contract.layout}"
    return "; ".join([text, *(_extra_text(e) for e in contract.extra_inputs)])


def _extra_text(extra: ExtraInput) -> str:
    if extra.kind == "global":
        return f"`{extra.name}`: the input at {extra.size}x{extra.size}"
    if extra.kind == "palette":
        return f"`{extra.name}`: reference palette ({extra.bins**3} values)"
    return f"`{extra.name}`: Otsu line drawing at {extra.scale}x"


def outputs_text(contract: ColorContract, spec: ArchSpec) -> str:
    """The output kind and its scaling, and which output is used when there are several."""
    if contract.output_kind == "ab_bins":
        bins, temperature = len(contract.bin_centers or ()), contract.annealing_temperature
        text = f"{bins} ab-bin logits (annealed mean, T = {temperature:g})"
    else:
        scales = contract.channel_scale or (contract.output_scale,)
        offsets = contract.channel_offset or (contract.output_offset,)
        scale = "/".join(_number(s) for s in scales)
        if len(offsets) == 1:
            text = f"{contract.output_kind} = y {_affine(scale, offsets[0])}"
        else:
            text = f"{contract.output_kind} = y x {scale} + {'/'.join(_number(o) for o in offsets)}"
    if len(spec.outputs) > 1:
        others = ", ".join(f"`{n}`" for n in spec.outputs[1:])
        text += f" (`{contract.output_name}`; {others} ignored)"
    return text


def merge_text(contract: ColorContract) -> str:
    """The merge in a few words."""
    if contract.merge == "chroma":
        return "chroma (own L kept)"
    return "wholesale" + ("" if contract.line_art == "none" else f", {contract.line_art} line art")


def size_text(contract: ColorContract) -> str:
    """The render size in a few words."""
    if contract.size_rule == "fixed":
        return f"{contract.render_size}x{contract.render_size}"
    return f"longest side {contract.render_size}, multiples of {contract.multiple}"


def markdown_table() -> str:
    """The Markdown table of every architecture (one row each, in registry order)."""
    rows = [
        "| Architecture | Inputs | Output | Merge | Render size | Official files | Licence |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec in ARCHITECTURES.items():
        contract = contract_of(spec)
        mean = spec.contract == "colorrt.models.iizuka:iizuka_contract_for"
        cells = [
            f"`{name}`",
            inputs_text(contract, mean),
            outputs_text(contract, spec),
            merge_text(contract),
            size_text(contract),
            spec.official or "-",
            spec.licence or "-",
        ]
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(rows)


def rewrite(path: Path) -> bool:
    """Put the generated table between the markers of ``path``; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{markdown_table()}\n{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    print("updated" if rewrite(Path(sys.argv[1])) else "up to date")
