"""Iizuka et al.'s official Torch7 file (``colornet.t7``) read into :class:`Iizuka2016`'s state dict.

Licence: the weights are CC BY-NC-SA 4.0 (non-commercial use only); loading them warns so.

``colorize.lua`` shows the file's shape: a table ``{mean = <number>, model = <nn.gModule>}``, the
model taking ``{global 224x224 copy, local input}`` (the ``nn.Replicate`` modules of
``forwardnodes[9]`` spread the global vector over the local grid). The layers themselves (Torch7
``nn.SpatialConvolution`` / ``SpatialConvolutionMM``, ``SpatialBatchNormalization``,
``BatchNormalization``, ``Linear``) are read in the graph's forward order (``forwardnodes``, else
``modules``, nested containers depth first) and matched onto the network's parts by their shapes and
strides: each part keeps its own order, the parts may interleave (a graph's topological order is not
fixed), and the stride-2 and channel changes leave one consistent assignment. A file holding one
low-level network per input assigns the first to the global path (colorize.lua feeds ``{X1, X2}``,
the global copy first); a file holding one copy serves both. The official files could not be
downloaded here: the loader is tested on files written in this layout from random weights.

A file whose layers do not fit is handed over under its own names (``t7.<n>.<field>``), so the strict
loader lists every missing and unexpected key.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from colorrt.errors import InputError, MissingDependencyError
from colorrt.models.iizuka import LICENCE

_BRANCHES = ("global_low_level", "low_level", "global_network", "mid_level", "fusion_layer", "colorization")
_CONV = ("nn.SpatialConvolution", "nn.SpatialConvolutionMM", "cudnn.SpatialConvolution")
_NORM = ("nn.SpatialBatchNormalization", "nn.BatchNormalization", "cudnn.SpatialBatchNormalization")
Signature = tuple[Any, ...]


def official_state(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The torch state dict for ``model`` (an :class:`Iizuka2016`) from the ``.t7`` at ``path``."""
    data = _load(path)
    mean, network = _field(data, "mean"), _field(data, "model")
    layers = [] if network is None else _layers(network)
    slots = {name: _slots(getattr(model.net, name), f"net.{name}") for name in _BRANCHES}
    state = _assign(layers, slots)
    if state is None or not isinstance(mean, (int, float)):
        return {f"t7.{i}.{k}": v for i, layer in enumerate(layers) for k, v in _tensors(layer).items()}
    warnings.warn(
        f"{path.name}: Iizuka et al.'s colorization weights are licensed {LICENCE}; "
        "models exported from them carry the same licence",
        stacklevel=3,
    )
    state["mean"] = torch.tensor(float(mean), dtype=torch.float32)
    return state


def _load(path: Path) -> Any:
    try:
        import torchfile
    except ImportError as e:
        raise MissingDependencyError("torchfile", "zoo", "reading Torch7 .t7 files") from e
    try:
        return torchfile.load(str(path))
    except Exception as e:  # torchfile raises plain exceptions (struct errors, EOF, unknown types)
        raise InputError(f"{path} is not a readable Torch7 file: {type(e).__name__}: {e}") from e


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, obj.get(name.encode()))
    try:
        return obj[name]
    except (TypeError, KeyError, IndexError, AttributeError):  # a field-less module reads back as a list
        return None


def _typename(obj: Any) -> str:
    name = obj.torch_typename() if hasattr(obj, "torch_typename") else ""
    return name.decode() if isinstance(name, bytes) else str(name)


def _layers(root: Any) -> list[Any]:
    """Parametric modules in forward order, each once (shared objects are read back as one)."""
    found: list[Any] = []
    seen: set[int] = set()

    def visit(obj: Any) -> None:
        if obj is None or id(obj) in seen or not hasattr(obj, "torch_typename"):
            return
        seen.add(id(obj))
        if _typename(obj) in (*_CONV, *_NORM, "nn.Linear"):
            found.append(obj)
            return
        nodes = _field(obj, "forwardnodes")
        children = [_field(_field(n, "data"), "module") for n in nodes] if nodes else _field(obj, "modules")
        for child in children or []:
            visit(child)

    visit(root)
    return found


def _signature(layer: Any) -> Signature:
    name = _typename(layer)
    if name in _CONV:
        fields = ("nInputPlane", "nOutputPlane", "kH", "kW", "dH", "dW")
        return ("conv", *(int(_field(layer, k)) for k in fields))
    if name in _NORM:
        return ("norm", int(np.asarray(_field(layer, "running_mean")).size))
    weight = np.asarray(_field(layer, "weight"))
    return ("linear", weight.shape[1], weight.shape[0])


def _slots(parent: nn.Module, prefix: str) -> list[tuple[str, Signature]]:
    slots = []
    for name, m in parent.named_modules():
        key = f"{prefix}.{name}" if name else prefix
        if isinstance(m, nn.Conv2d):
            slots.append((key, ("conv", m.in_channels, m.out_channels, *m.kernel_size, *m.stride)))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            slots.append((key, ("norm", m.num_features)))
        elif isinstance(m, nn.Linear):
            slots.append((key, ("linear", m.in_features, m.out_features)))
    return slots


def _assign(
    layers: list[Any], slots: dict[str, list[tuple[str, Signature]]]
) -> dict[str, torch.Tensor] | None:
    """Layers matched onto the parts (see the module docstring), as a state dict; None if none fits."""
    signatures = [_signature(layer) for layer in layers]
    for branches in (_BRANCHES, _BRANCHES[1:]):  # one low-level copy per input, or one for both
        order = _interleave(signatures, [[s for _, s in slots[b]] for b in branches])
        if order is None:
            continue
        keys = {b: iter(k for k, _ in slots[b]) for b in branches}
        state: dict[str, torch.Tensor] = {}
        for layer, branch in zip(layers, order, strict=True):
            state.update(_converted(layer, next(keys[branches[branch]])))
        if "global_low_level" not in branches:
            for key, value in list(state.items()):
                if key.startswith("net.low_level."):
                    state[key.replace("net.low_level.", "net.global_low_level.", 1)] = value.clone()
        return state
    return None


def _interleave(signatures: list[Signature], parts: list[list[Signature]]) -> list[int] | None:
    """For each layer, the part it fills next, so every part is filled in its order; None if impossible."""
    failed: set[tuple[int, ...]] = set()
    total = sum(len(p) for p in parts)
    if total != len(signatures):
        return None

    def search(position: tuple[int, ...], done: int) -> list[int] | None:
        if done == total:
            return []
        if position in failed:
            return None
        for part, index in enumerate(position):
            if index < len(parts[part]) and parts[part][index] == signatures[done]:
                rest = search(position[:part] + (index + 1,) + position[part + 1 :], done + 1)
                if rest is not None:
                    return [part, *rest]
        failed.add(position)
        return None

    return search(tuple(0 for _ in parts), 0)


def _converted(layer: Any, key: str) -> dict[str, torch.Tensor]:
    """A Torch7 layer's tensors under the torch module ``key``."""
    name = _typename(layer)
    weight = np.asarray(_field(layer, "weight"), dtype=np.float32)
    bias = np.asarray(_field(layer, "bias"), dtype=np.float32)
    if name in _CONV:
        shape = tuple(int(_field(layer, k)) for k in ("nOutputPlane", "nInputPlane", "kH", "kW"))
        return {f"{key}.weight": _tensor(weight.reshape(shape)), f"{key}.bias": _tensor(bias)}
    out = {f"{key}.weight": _tensor(weight), f"{key}.bias": _tensor(bias)}
    if name in _NORM:
        out[f"{key}.running_mean"] = _tensor(np.asarray(_field(layer, "running_mean"), np.float32))
        out[f"{key}.running_var"] = _tensor(_running_var(layer))
    return out


def _running_var(layer: Any) -> np.ndarray:
    """Torch7 nn stored ``running_std`` (1 / sqrt(var + eps)) before it stored ``running_var``."""
    var = _field(layer, "running_var")
    if var is not None:
        return np.asarray(var, np.float32)
    std = np.asarray(_field(layer, "running_std"), np.float64)
    eps = float(_field(layer, "eps") or 1e-5)
    return (1.0 / std**2 - eps).astype(np.float32)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _tensors(layer: Any) -> dict[str, torch.Tensor]:
    fields = ("weight", "bias", "running_mean", "running_var")
    return {k: _tensor(np.asarray(_field(layer, k))) for k in fields if _field(layer, k) is not None}
