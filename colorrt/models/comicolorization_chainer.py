"""Comicolorization's official Chainer files read into :class:`Comicolorization`'s state dict.

The official ``model/`` folder holds ``comicolorization/550000.model`` (stage 1, 158,414,544 bytes)
and ``super_resolution/80000.model`` (stage 2, 69,164,716 bytes): ``chainer.serializers.save_npz``
archives (NumPy ``.npz``, compressed) whose keys are the Chainer link paths, e.g.
``low_level/conv1_1/W``, ``global_network/bn3_1/avg_mean``, ``fusion_layer/conv/b``,
``classification_network/l1/W`` and ``c0/W``, ``dc8/W``, ``bnd1/gamma``. Chainer stores convolution
kernels ``(out, in, kh, kw)``, deconvolution kernels ``(in, out, kh, kw)`` and linear weights ``(out,
in)``, as torch does; BatchNorm ``gamma, beta, avg_mean, avg_var`` become ``weight, bias,
running_mean, running_var`` (its sample counter ``N`` has no torch counterpart and is dropped).

``--weights`` names the folder (the one holding both subfolders); when a subfolder holds several
snapshots the highest iteration is taken. Keys that do not fit stay under their own names, so the
strict loader lists every missing and unexpected key.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from colorrt.errors import InputError

STAGES = {"comicolorization": "ltbc", "super_resolution": "super_resolution"}
_LEAVES = {
    "W": "weight",
    "b": "bias",
    "gamma": "weight",
    "beta": "bias",
    "avg_mean": "running_mean",
    "avg_var": "running_var",
}


def official_state(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The torch state dict for ``model`` (a :class:`Comicolorization`) from the official folder."""
    del model  # the keys are the Chainer paths renamed: no shape matching needed
    path = Path(path)
    if not path.is_dir():
        raise InputError(
            f"{path} is a file; Comicolorization's weights are two files",
            "pass the folder that holds comicolorization/550000.model and super_resolution/80000.model",
        )
    state: dict[str, torch.Tensor] = {}
    for folder, prefix in STAGES.items():
        state.update(chainer_state(_snapshot(path / folder), prefix))
    return state


def chainer_state(file: Path, prefix: str) -> dict[str, torch.Tensor]:
    """One ``save_npz`` archive as torch keys under ``prefix`` (``N`` counters dropped)."""
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"{file} is not a Chainer .npz archive: {e}") from e
    state: dict[str, torch.Tensor] = {}
    with archive:
        for key in archive.files:
            *links, leaf = key.strip("/").split("/")
            if leaf == "N":
                continue
            name = ".".join([prefix, *links, _LEAVES.get(leaf, leaf)])
            state[name] = torch.from_numpy(np.ascontiguousarray(archive[key]))
    return state


def _snapshot(folder: Path) -> Path:
    """The snapshot with the highest iteration (``<iteration>.model``) in ``folder``."""
    iteration = lambda p: (p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0)  # noqa: E731
    snapshots = sorted(folder.glob("*.model"), key=iteration)
    if not snapshots:
        raise InputError(
            f"no Chainer snapshot (*.model) in {folder}",
            "the official layout: model/comicolorization/550000.model, model/super_resolution/80000.model",
        )
    return snapshots[-1]
