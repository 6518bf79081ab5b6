"""The one table of architectures colorrt can build, load and export.

Everything about an architecture lives in its :class:`ArchSpec` row: how to build it (a lazy
``"module:attr"`` factory, so importing this table never imports torch), its colour contract, its
channels and size rule, the module that is exported, and whether it runs in eval mode. The CLI's
``--arch`` choices and checks come from :data:`ARCHITECTURES`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from colorrt.contract import ColorContract, preset
from colorrt.errors import InputError, MissingDependencyError, ModelError

if TYPE_CHECKING:
    from torch import nn

_PIX2PIX_MODE = (
    "eval mode on purpose: BatchNorm uses its running statistics and dropout is off; the official "
    "pix2pix test.py runs the generator in train mode unless --eval is given"
)


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: how to build, load and export it, and the contract of the exported model."""

    name: str
    factory: str  # "module:attr" of the torch module class or function
    contract: str  # contract preset name, or "module:attr" of a builder taking the built module
    input_channels: int
    output_channels: int
    size_multiple: int  # pixels: height and width must be multiples of this
    dynamic_size: bool  # export with dynamic height/width (else fixed at the render size)
    kwargs: Mapping[str, Any] = field(default_factory=_frozen)
    render_size: int | None = None  # pixels: overrides the preset's render size
    wrapper: str | None = None  # "module:attr" turning the net into contract input -> output
    eval_mode: bool = True
    mode_note: str = "eval mode (BatchNorm running statistics, dropout off)"
    size_note: str = ""
    load_hint: str = ""  # extra advice when a checkpoint does not fit
    description: str = ""
    # "module:attr" reading the official release's own format (path, built module) -> state dict,
    # for weights paths ending in one of ``loader_suffixes`` ("/" : a folder)
    loader: str | None = None
    loader_suffixes: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # names of every output of the exported module; () = the contract's
    official: str = ""  # the official weight files, their sizes and where they come from
    licence: str = ""  # of the official weights

    def official_format(self, path: str | os.PathLike[str]) -> bool:
        """True when ``path`` is read by this architecture's official-format loader."""
        path = os.fspath(path)
        return self.loader is not None and any(
            (s == "/" and os.path.isdir(path)) or path.lower().endswith(s) for s in self.loader_suffixes
        )

    def build(self, options: Mapping[str, Any] | None = None) -> nn.Module:
        """A fresh torch module (default torch init) with ``kwargs`` updated by ``options``."""
        kwargs = dict(self.kwargs)
        unknown = sorted(set(options or {}) - set(kwargs))
        if unknown:
            raise InputError(
                f"architecture '{self.name}' has no option(s) {unknown}",
                f"options it accepts: {sorted(kwargs) or 'none'}",
            )
        kwargs.update(options or {})
        try:
            return _resolve(self.factory)(**kwargs)
        except (TypeError, ValueError) as e:
            raise InputError(f"cannot build '{self.name}' with options {dict(options or {})}: {e}") from e

    def contract_for(self, model: nn.Module) -> ColorContract:
        """The colour contract of the exported model (built from the weights where needed)."""
        if ":" in self.contract:
            contract = _resolve(self.contract)(model)
        else:
            contract = preset(self.contract)
        if self.render_size is not None:
            contract = contract.replace(render_size=self.render_size)
        return contract

    def export_module(self, model: nn.Module) -> nn.Module:
        """The module that maps the contract's input to the contract's output."""
        return _resolve(self.wrapper)(model) if self.wrapper else model


def _resolve(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if (e.name or "").split(".")[0] == "torch":
            raise MissingDependencyError("torch", "export", "building torch models") from e
        raise ModelError(
            f"cannot import {module_name} for {target}: {e}", "is colorrt installed completely?"
        ) from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ModelError(f"{module_name} has no attribute {attr!r} (needed by {target})") from e


_CYCLEGAN_HINT = (
    "checkpoints trained with other pytorch-CycleGAN-and-pix2pix flags need matching options: "
    "--arch-option norm=batch (trained with --norm batch), --arch-option use_dropout=true (resnet trained "
    "without --no_dropout)"
)


def _cyclegan(name: str, n_blocks: int) -> ArchSpec:
    return ArchSpec(
        name=name,
        factory="colorrt.models.cyclegan:ResnetGenerator",
        kwargs=_frozen(
            dict(
                input_nc=3,
                output_nc=3,
                ngf=64,
                norm="instance",
                use_dropout=False,
                n_blocks=n_blocks,
                padding_type="reflect",
            )
        ),
        contract="cyclegan-rgb",
        input_channels=3,
        output_channels=3,
        size_multiple=4,
        dynamic_size=True,
        size_note="any height/width that is a multiple of 4 (two stride-2 downsamples)",
        load_hint=_CYCLEGAN_HINT,
        description=f"CycleGAN ResnetGenerator, {n_blocks} blocks, instance norm: grey RGB -> RGB in [-1, 1]",
        official="latest_net_G.pth / latest_net_G_A.pth (pytorch-CycleGAN-and-pix2pix; "
        + ("45.5 MB" if n_blocks == 9 else "31.4 MB")
        + " FP32)",
        licence="BSD (code and released models)",
    )


def _pix2pix(name: str, in_nc: int, out_nc: int, num_downs: int, contract: str, desc: str) -> ArchSpec:
    side = 2**num_downs
    return ArchSpec(
        name=name,
        factory="colorrt.models.cyclegan:UnetGenerator",
        kwargs=_frozen(
            dict(
                input_nc=in_nc, output_nc=out_nc, num_downs=num_downs, ngf=64, norm="batch", use_dropout=True
            )
        ),
        contract=contract,
        input_channels=in_nc,
        output_channels=out_nc,
        size_multiple=side,
        dynamic_size=False,
        render_size=side,
        mode_note=_PIX2PIX_MODE,
        size_note=f"fixed {side}x{side} render ({num_downs} stride-2 levels need multiples of {side})",
        load_hint=_CYCLEGAN_HINT,
        description=desc,
        official="latest_net_G.pth (pytorch-CycleGAN-and-pix2pix; "
        f"{167.3 if num_downs == 7 else 217.7} MB FP32)",
        licence="BSD (code and released models)",
    )


_FAMILY_ARCHITECTURES = (
    dataclasses.replace(
        _cyclegan("cyclegan-sketch", 9),
        contract="cyclegan-sketch",
        description="CycleGAN ResnetGenerator, 9 blocks, trained sketch -> colour: RGB used wholesale, "
        "the drawing multiplied back on top",
    ),
    ArchSpec(
        name="chromagan",
        factory="colorrt.models.chromagan:ChromaGAN",
        kwargs=_frozen({"width": 1.0, "classes": 1000}),
        contract="chromagan",
        input_channels=3,
        output_channels=2,
        size_multiple=224,
        dynamic_size=False,
        render_size=224,
        outputs=("ab", "classes"),
        loader="colorrt.models.chromagan_keras:official_state",
        loader_suffixes=(".h5", ".hdf5"),
        size_note="fixed 224x224 render (the global branch ends in Flatten + Dense)",
        load_hint="the official file is my_model_colorization.h5 (Keras, saved with its model_config); "
        "--arch-option width=... must match a file written at another width",
        description="ChromaGAN (Vitoria et al. 2020): NHWC L/100 x3 -> ab (sigmoid) + class head (ignored)",
        official="my_model_colorization.h5 (pvitoria/ChromaGAN; Keras HDF5; 171.2M parameters = 685 MB "
        "as FP32, 124M of them in the class head)",
        licence="code AGPL-3.0; weights published without a licence",
    ),
    ArchSpec(
        name="iizuka2016",
        factory="colorrt.models.iizuka:Iizuka2016",
        kwargs=_frozen({"width": 1.0}),
        contract="colorrt.models.iizuka:iizuka_contract_for",
        input_channels=1,
        output_channels=2,
        size_multiple=8,
        dynamic_size=True,
        loader="colorrt.models.iizuka_torch7:official_state",
        loader_suffixes=(".t7",),
        size_note="local input: any height/width that is a multiple of 8; global copy fixed 224x224; "
        "output at half resolution",
        description="Iizuka et al. 2016 'Let there be Color!' (CC BY-NC-SA 4.0): luma - mean + 224 global "
        "copy -> ab (sigmoid) at half size",
        official="colornet.t7 / colornet_imagenet.t7 (satoshiiizuka/siggraph2016_colorization; Torch7, "
        "~663 MB each, ~42M parameters, the mean stored inside)",
        licence="CC BY-NC-SA 4.0 (non-commercial use only)",
    ),
    ArchSpec(
        name="comicolorization",
        factory="colorrt.models.comicolorization:Comicolorization",
        kwargs=_frozen({"width": 1.0, "sr_width": 1.0, "classes": 428}),
        contract="comicolorization",
        input_channels=3,
        output_channels=3,
        size_multiple=224,
        dynamic_size=False,
        render_size=224,
        loader="colorrt.models.comicolorization_chainer:official_state",
        loader_suffixes=("/",),
        size_note="fixed 224x224 panel (stage 1), 448x448 line drawing and output (stage 2)",
        load_hint="--weights is the official model/ folder holding comicolorization/550000.model and "
        "super_resolution/80000.model",
        description="Comicolorization (Furusawa et al. 2017): binarised panel + reference palette -> Lab, "
        "then 448 super-resolution; wholesale with line art",
        official="550000.model (158,414,544 B) + 80000.model (69,164,716 B) "
        "(DwangoMediaVillage/Comicolorization; Chainer npz)",
        licence="MIT",
    ),
)


ARCHITECTURES: Mapping[str, ArchSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _cyclegan("cyclegan-resnet9", 9),
            _cyclegan("cyclegan-resnet6", 6),
            _pix2pix("pix2pix-unet256", 3, 3, 8, "pix2pix-rgb", "pix2pix UnetGenerator unet_256: RGB -> RGB"),
            _pix2pix("pix2pix-unet128", 3, 3, 7, "pix2pix-rgb", "pix2pix UnetGenerator unet_128: RGB -> RGB"),
            _pix2pix(
                "pix2pix-colorization",
                1,
                2,
                8,
                "pix2pix-colorization",
                "pix2pix colorization mode, UnetGenerator unet_256: L/50-1 -> ab/110",
            ),
            ArchSpec(
                name="eccv16",
                factory="colorrt.models.zhang:ECCVGenerator",
                contract="colorrt.models.zhang:eccv16_contract_for",
                wrapper="colorrt.models.zhang:ECCV16Logits",
                input_channels=1,
                output_channels=313,
                size_multiple=8,
                dynamic_size=False,
                size_note="fixed 256x256 render; output logits at 64x64, upsampled x4 by the runtime",
                description="Zhang et al. ECCV16 (colorizers release): (L-50)/100 -> 313 ab-bin logits",
                official="colorization_release_v2-9b330a0b.pth (richzhang/colorization; 129.0 MB)",
                licence="BSD-2-Clause",
            ),
            ArchSpec(
                name="siggraph17",
                factory="colorrt.models.zhang:SIGGRAPHGenerator",
                contract="siggraph17",
                wrapper="colorrt.models.zhang:SIGGRAPH17Regression",
                input_channels=4,
                output_channels=2,
                size_multiple=8,
                dynamic_size=False,
                size_note="fixed 256x256 render (three stride-2 slices need multiples of 8)",
                description="Zhang et al. SIGGRAPH17 (colorizers release): L + ab hints + mask -> ab/110",
                official="siggraph17-df00044c.pth (richzhang/colorization; 136.8 MB)",
                licence="BSD-2-Clause",
            ),
            ArchSpec(
                name="colorrt-default",
                factory="colorrt.models.default:DefaultColorizer",
                contract="colorrt-default",
                input_channels=1,
                output_channels=2,
                size_multiple=16,
                dynamic_size=True,
                size_note="any height/width that is a multiple of 16",
                description="colorrt's v1 bundled U-Net: L/50-1 -> ab/110 (the shipped v2 file: "
                "training/export_default.py)",
                official="colorrt/assets/colorrt-default.onnx (bundled v2; 14.6 MiB FP32: "
                "EfficientNet-Lite0 + decoder)",
                licence="Apache-2.0 (decoder trained by colorrt; EfficientNet-Lite0 ImageNet weights: "
                "Apache-2.0)",
            ),
            *_FAMILY_ARCHITECTURES,
        )
    }
)


# Architectures that export as a bundle folder of several networks (colorrt.engines.bundle), not as one
# ONNX file: name -> (bundle writer "module:attr", description). ``colorrt export`` dispatches on it.
BUNDLE_ARCHITECTURES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "instcolorization": (
            "colorrt.export.instance_bundle:export_bundle",
            "InstColorization (Su et al. 2020): detector + instance G + fusion GF (+ GComp) -> bundle folder",
        )
    }
)


def arch_names() -> list[str]:
    """Names of every architecture, in table order (for CLI choices)."""
    return list(ARCHITECTURES)


def get_arch(name: str) -> ArchSpec:
    """The architecture's table row, or a ModelError listing the choices and the closest name."""
    spec = ARCHITECTURES.get(name)
    if spec is not None:
        return spec
    if name in BUNDLE_ARCHITECTURES:
        raise ModelError(
            f"'{name}' is several networks exported together as a bundle folder, not one model",
            f"use colorrt export --arch {name} -o FOLDER ({BUNDLE_ARCHITECTURES[name][0]})",
        )
    choices = arch_names()
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.4)
    hint = f"did you mean '{close[0]}'?" if close else "pick one of the architectures listed"
    raise ModelError(f"unknown architecture '{name}'; choose one of: {', '.join(choices)}", hint)


def build_model(
    name: str,
    weights: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    random_init: bool = False,
    seed: int = 0,
    *,
    options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build architecture ``name`` with a checkpoint (path or state dict) or seeded random weights.

    The module is returned in the spec's mode (eval for every zoo model). ``options`` override the
    factory's keyword arguments (e.g. ``{"norm": "batch"}``) for checkpoints trained with other flags.
    """
    spec = get_arch(name)
    if weights is None and not random_init:
        raise InputError(
            f"architecture '{name}' needs weights",
            "pass weights=PATH (--weights X.pth), or random_init=True (--random-init) for testing",
        )
    if weights is not None and random_init:
        raise InputError("weights and random_init were both given; choose one")
    from colorrt.models.checkpoint import init_random_, load_checkpoint, missing_weights, read_checkpoint_file

    source, official = None, None
    if isinstance(weights, (str, os.PathLike)) and spec.official_format(weights):
        if not Path(weights).exists():  # before a big model is built, as for a checkpoint
            raise missing_weights(Path(weights))
        official, source = weights, f"official file {os.fspath(weights)}"
    elif isinstance(weights, (str, os.PathLike)):  # read first: a bad path fails before a big model is built
        weights, source = read_checkpoint_file(weights), f"checkpoint {os.fspath(weights)}"
    model = spec.build(options)
    if official is not None:  # the release's own format, converted with the built model's help
        weights = _resolve(spec.loader)(Path(official), model)  # type: ignore[arg-type]
    if random_init:
        init_random_(model, seed)
    else:
        load_checkpoint(model, weights, arch=name, hint=spec.load_hint, source=source)
    return model.train(not spec.eval_mode)
