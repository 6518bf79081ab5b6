"""Contract presets: one row per model family, and the contracts built from a checkpoint (ECCV16's
bin centres, Iizuka et al.'s mean)."""

from __future__ import annotations

import difflib
from typing import Any

from colorrt.contract.core import ColorContract, ExtraInput
from colorrt.errors import ContractError

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
        ColorContract(
            name="cyclegan-sketch",
            input_space="gray_rgb",
            input_scale=2.0,
            input_offset=-1.0,
            size_rule="multiple",
            render_size=256,
            multiple=4,
            output_kind="rgb",
            output_scale=0.5,
            output_offset=0.5,
            merge="wholesale",
            line_art="multiply",
            description="CycleGAN ResNet-9 sketch -> colour: RGB in [-1,1] -> RGB (tanh), used wholesale, "
            "the drawing multiplied back on top",
        ),
        ColorContract(
            name="chromagan",
            input_space="L_tiled",
            input_scale=1 / 100,
            input_offset=0.0,
            size_rule="fixed",
            render_size=224,
            layout="NHWC",
            output_kind="ab",
            output_scale=255.0,  # OpenCV 8-bit Lab: a = 255 y - 128
            output_offset=-128.0,
            output_name="ab",
            description="ChromaGAN (Vitoria et al.): L/100 tiled to 3 channels, NHWC 224x224 -> ab "
            "(sigmoid, 255y-128); the class head is ignored",
        ),
        ColorContract(
            name="comicolorization",
            input_space="L_ab",
            input_scale=1 / 100,
            input_offset=0.0,
            hint_scale=1.0,
            binarize_above=76.976,  # CIE L of sRGB grey 190, the official page sample's threshold
            size_rule="fixed",
            render_size=224,
            extra_inputs=(ExtraInput("palette", "palette", bins=6), ExtraInput("lines", "lines", scale=2)),
            output_kind="lab",
            output_scale=50.0,
            channel_offset=(50.0, 0.0, 0.0),  # L = 50 (y0 + 1), a = 50 y1, b = 50 y2
            merge="wholesale",
            line_art="threshold",
            line_threshold=50.0,
            description="Comicolorization (Furusawa et al.): binarised panel L/100 + reference palette "
            "(216) -> Lab 224, then the 448 super-resolution U-Net with the Otsu line drawing; wholesale",
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


def iizuka_contract(mean: float) -> ColorContract:
    """Iizuka et al. 2016 contract; the scalar ``mean`` subtracted from the luma comes from the
    ``.t7`` file. The model's licence is CC BY-NC-SA 4.0 (non-commercial)."""
    return ColorContract(
        name="iizuka2016",
        input_space="gray",
        input_scale=1.0,
        input_offset=-float(mean),
        size_rule="multiple",
        render_size=224,
        multiple=8,
        input_name="local",
        extra_inputs=(ExtraInput("global", "global", size=224),),
        output_kind="ab",
        output_scale=200.0,  # ab = (2 s - 1) * 100
        output_offset=-100.0,
        description="Iizuka et al. 2016 (CC BY-NC-SA 4.0): luma Y - mean, sides multiples of 8, plus a "
        "224x224 global copy -> ab (sigmoid) at half resolution",
    )


BUILT_FROM_WEIGHTS = {
    "eccv16": "the eccv16 contract holds the checkpoint's bin centres",
    "iizuka2016": "the iizuka2016 contract holds the mean stored in the .t7 file",
}


def preset(name: str) -> ColorContract:
    """The named contract preset, or a ContractError listing the presets and the closest name."""
    if name in PRESETS:
        return PRESETS[name]
    choices = sorted(PRESETS)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"choose one of {choices}"
    if name in BUILT_FROM_WEIGHTS:
        hint = f"{BUILT_FROM_WEIGHTS[name]}: export the model with colorrt export"
    raise ContractError(f"unknown contract preset '{name}'; presets: {choices}", hint)


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
