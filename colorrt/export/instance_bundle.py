"""``colorrt export --arch instcolorization``: G, GF and GComp exported together as one model bundle.

The bundle is a folder (written under a temporary name, then renamed into place) holding:

* ``G.onnx``: crops ``(N, 4, S, S)`` -> for each of the 13 fusion layers, G's feature map with GF's
  instance logit appended (``C + 1`` channels);
* ``GF.onnx``: the full image ``(B, 4, S, S)`` and the 13 placed maps (built by the runtime from G's
  output and the boxes) -> tanh ab / 110;
* ``GComp.onnx``: the full image -> tanh ab / 110 (used when the detector finds no box);
* ``bundle.json``: colour contract, fusion layer shapes, detector contract, SHA-256 of each file.

Every network has a dynamic batch axis and static spatial shapes, so each can be quantized and
built into a TensorRT engine like any single model.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from colorrt._version import __version__
from colorrt.atomic import replace_folder, temporary_name
from colorrt.contract import ColorContract, write_to_onnx
from colorrt.engines.bundle import (
    ROLES,
    DetectorContract,
    FusionLayer,
    InstanceBundle,
    file_sha256,
    is_bundle,
)
from colorrt.engines.bundle import write_manifest as _write_manifest
from colorrt.errors import InputError, ModelError, require
from colorrt.modelfile import save as save_model
from colorrt.modelfile import set_metadata

ARCH = "instcolorization"
MIN_OPSET = 17
ROLE_KEY = "colorrt.bundle_role"
DESCRIPTION = (
    "InstColorization (Su et al. 2020): detector + instance net G + fusion net GF (+ GComp), a bundle folder"
)


@dataclass(frozen=True)
class BundleResult:
    """What :func:`export_bundle` wrote."""

    path: Path
    files: dict[str, Path]
    parity: dict[str, float | None]  # per role: max |ORT - torch| / max(1, max |torch|), None if unchecked
    weights: str
    size: int
    width: float

    def summary(self) -> str:
        """A few human-readable lines for the CLI."""
        lines = [f"wrote bundle {self.path} ({ARCH}, {self.size}x{self.size}, width {self.width:g})"]
        for role, file in self.files.items():
            error = self.parity[role]
            shown = "skipped" if error is None else f"{error:.3g}"
            lines.append(f"  {role:6s} {file.name}  parity vs torch: {shown}")
        lines.append(f"  weights: {self.weights}")
        return "\n".join(lines)


def instcolorization_contract(size: int = 256) -> ColorContract:
    """Inputs of G, GF and GComp: (L-50)/100, zero ab hints, mask - 0.5; output tanh ab / 110."""
    return ColorContract(
        name=ARCH,
        input_space="L_hints",
        input_scale=1 / 100,
        input_offset=-0.5,
        size_rule="fixed",
        render_size=size,
        output_kind="ab",
        output_scale=110.0,
        hint_scale=1 / 110,
        mask_offset=-0.5,
        input_name="image",
        output_name="ab",
        description="InstColorization networks: (L-50)/100, ab hints/110, mask-0.5 -> ab/110 (tanh)",
    )


def export_bundle(
    weights: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    *,
    random_init: bool = False,
    seed: int = 0,
    size: int = 256,
    width: float = 1.0,
    opset: int = MIN_OPSET,
    check: bool = True,
    tolerance: float = 1e-4,
    detector: DetectorContract | None = None,
) -> BundleResult:
    """Export InstColorization's three networks as a bundle folder ``output`` (see the module docstring).

    ``weights``: the folder with the official ``latest_net_{G,GF,GComp}.pth`` (loaded strictly), or
    None with ``random_init=True``. ``size``: render size (multiple of 8; official 256). ``width``:
    channel multiplier (1.0 = official). ``check``: ONNX Runtime vs torch on a seeded sample, a
    ModelError above ``tolerance`` (relative to max(1, max |torch output|)). ``detector``: the
    detector contract stored in the manifest (default: official threshold 0.7, 8 boxes).
    """
    require("torch", "export", "colorrt export --arch instcolorization")
    from colorrt.models import instcolorization as ic

    _check_arguments(weights, random_init, size, opset, tolerance)
    out = _output_folder(output)
    model = ic.random_init(width, seed) if random_init else ic.load(weights, width)  # type: ignore[arg-type]
    contract = instcolorization_contract(size)
    layers = tuple(FusionLayer(n, ic.scaled(c, width), size >> level) for n, c, level in ic.LAYERS)
    weights_id = "random-init" if random_init else _weights_id(Path(weights))  # type: ignore[arg-type]
    facts = {"colorrt": __version__, "opset": opset, "weights": weights_id, "width": width, "seed": seed}
    temp = temporary_name(out)
    temp.mkdir()
    try:
        files, parity = {}, {}
        for role, (module, samples, inputs, outputs) in _views(model, layers, size, seed).items():
            proto = _to_onnx(module, samples, inputs, outputs, opset)
            if role != "G":  # G returns feature maps, not colour: its role entry describes it
                write_to_onnx(proto, contract.replace(input_name=inputs[0], output_name=outputs[0]))
            role_facts = {"arch": ARCH, "role": role, "inputs": inputs, "outputs": outputs, **facts}
            set_metadata(proto, {ROLE_KEY: json.dumps(role_facts)})
            parity[role] = _parity(proto, module, samples, inputs, tolerance, role) if check else None
            files[role] = save_model(proto, temp / f"{role}.onnx")
        facts |= {"torch": _torch_version(), "onnx": onnx.__version__}
        _write_manifest(InstanceBundle(temp, ARCH, contract, layers, detector or DetectorContract(),
                                       {role: f"{role}.onnx" for role in ROLES},
                                       {f.name: file_sha256(f) for f in files.values()}, facts))  # fmt: skip
        replace_folder(temp, out)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return BundleResult(out, {r: out / f.name for r, f in files.items()}, parity, weights_id, size, width)


def _views(model: Any, layers: tuple[FusionLayer, ...], size: int, seed: int) -> dict[str, tuple]:
    """Per role: the torch module exported, its sample inputs, input names and output names."""
    import torch

    from colorrt.models.instcolorization import FusionExport, InstanceExport

    g = torch.Generator().manual_seed(seed)
    image = _sample_image(2, size, g)
    placed = [_sample_placed(2, layer, g) for layer in layers]
    names = [layer.name for layer in layers]
    return {
        "G": (InstanceExport(model.g, model.gf).eval(), (_sample_image(3, size, g),), ["crops"], names),
        "GF": (FusionExport(model.gf).eval(), (image, *placed), ["image", *names], ["ab"]),
        "GComp": (model.gcomp, (image,), ["image"], ["ab"]),
    }


def _sample_image(batch: int, size: int, g: Any) -> Any:
    import torch

    l_norm = torch.rand((batch, 1, size, size), generator=g) - 0.5
    return torch.cat([l_norm, torch.zeros(batch, 2, size, size), torch.full((batch, 1, size, size), -0.5)], 1)


def _sample_placed(batch: int, layer: FusionLayer, g: Any) -> Any:
    """Placed maps like the runtime's: weighted features, and a logit that is -1e5 outside the boxes."""
    import torch

    maps = torch.randn((batch, layer.channels + 1, layer.size, layer.size), generator=g)
    outside = torch.rand((batch, 1, layer.size, layer.size), generator=g) < 0.5
    maps[:, -1:][outside] = -1e5
    return maps


def _to_onnx(
    module: Any, samples: tuple, inputs: list[str], outputs: list[str], opset: int
) -> onnx.ModelProto:
    import torch

    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    axes = {name: {0: "batch"} for name in (*inputs, *outputs)}
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(
                module,
                samples,
                buffer,
                **legacy,
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except Exception as e:  # the exporter raises many types; the cause is kept in the chain
        raise ModelError(f"torch.onnx.export failed for {inputs} -> {outputs[:3]}: {e}") from e
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    return proto


def _parity(
    proto: onnx.ModelProto, module: Any, samples: tuple, inputs: list[str], tolerance: float, role: str
) -> float:
    """max |ORT - torch| / max(1, max |torch|) over the outputs; ModelError above ``tolerance``."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = module(*samples)
    expected = expected if isinstance(expected, tuple) else (expected,)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: s.numpy() for name, s in zip(inputs, samples, strict=True)})
    error = 0.0
    for want, have in zip(expected, got, strict=True):
        want = want.numpy().astype(np.float64)
        error = max(error, float(np.max(np.abs(have - want))) / max(1.0, float(np.max(np.abs(want)))))
    if not error <= tolerance:
        raise ModelError(
            f"{ARCH} {role}: ONNX Runtime differs from torch by {error:.3g} (relative), above {tolerance:g}"
        )
    return error


def _check_arguments(weights: Any, random_init: bool, size: int, opset: int, tolerance: float) -> None:
    if (weights is None) == (not random_init):
        raise InputError(
            f"{ARCH} needs either --weights DIR (the three official checkpoints) or --random-init",
            "pass exactly one of them",
        )
    if size < 8 or size % 8:
        raise InputError(
            f"size {size} does not fit {ARCH}: three stride-2 levels need a multiple of 8", "e.g. 256"
        )
    if opset < MIN_OPSET:
        raise InputError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if not tolerance > 0:
        raise InputError(f"tolerance must be > 0, got {tolerance}")


def _output_folder(output: str | os.PathLike[str]) -> Path:
    out = Path(output)
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not is_bundle(out)):
        raise InputError(
            f"output {out} exists and is not a model bundle", "give a new folder name (a bundle is a folder)"
        )
    if not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist", "create it first or pick another -o")
    return out


def _weights_id(folder: Path) -> str:
    from colorrt.models.instcolorization import CHECKPOINTS

    digests: Mapping[str, str] = {n: file_sha256(folder / n)[:16] for n in CHECKPOINTS.values()}
    return ", ".join(f"{name} sha256:{digest}" for name, digest in digests.items())


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
