"""ChromaGAN's official Keras file (``my_model_colorization.h5``) read into :class:`ChromaGAN`'s state dict.

Keras names its layers by a global counter (``conv2d_6``, ``dense_3``, ...), so names say nothing
about a layer's role. The file's ``model_config`` (the functional graph) does: from the nested VGG16
model, the stride-2 convolution starts the global branch and the stride-1 one the mid-level branch;
the global branch's last BatchNorm feeds two Flatten layers, of which the one that reaches a
``RepeatVector`` is the global Dense chain and the other the class head; the concatenation starts the
decoder. The VGG layers keep their Keras application names (``block1_conv1`` ...).

Weights are converted as Keras stores them: Conv2D kernels ``(kh, kw, in, out)``, Dense kernels
``(in, out)`` whose inputs are a Flatten of an NHWC map (HWC order, permuted here to torch's CHW),
BatchNorm ``gamma, beta, moving_mean, moving_variance``. A file whose graph is not ChromaGAN's is
handed over with its weights under their own HDF5 paths, so the strict loader lists every missing and
unexpected key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from colorrt.errors import InputError, MissingDependencyError
from colorrt.models.chromagan import GLOBAL_GRID

_WEIGHTED = ("Conv2D", "Dense", "BatchNormalization")
_BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


class _NotChromaGAN(Exception):
    """The file's graph is not ChromaGAN's colorization model."""


def official_state(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The torch state dict for ``model`` (a :class:`ChromaGAN`) from the Keras ``.h5`` at ``path``."""
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as file:
            weights = file["model_weights"] if "model_weights" in file else file
            try:
                roles = _roles(_model_config(file))
            except _NotChromaGAN:
                return _raw(weights)
            return _convert(weights, roles, model)
    except OSError as e:
        raise InputError(f"{path} is not a readable HDF5 (Keras .h5) file: {e}") from e


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:
        raise MissingDependencyError("h5py", "zoo", "reading ChromaGAN's Keras .h5 file") from e
    return h5py


def _model_config(file: Any) -> dict[str, Any]:
    raw = file.attrs.get("model_config")
    if raw is None:
        raise _NotChromaGAN
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return config.get("config", {})


def _roles(config: dict[str, Any]) -> dict[str, Any]:
    """Layer names of each part of ChromaGAN, in forward order (see the module docstring)."""
    layers = {layer["name"]: layer for layer in config.get("layers", [])}
    consumers: dict[str, list[str]] = {name: [] for name in layers}
    for name, layer in layers.items():
        for source in _inbound(layer):
            consumers.setdefault(source, []).append(name)
    nested = [n for n, layer in layers.items() if layer["class_name"] in ("Model", "Functional")]
    if len(nested) != 1:
        raise _NotChromaGAN
    branches = {_strides(layers[n]): n for n in consumers[nested[0]] if layers[n]["class_name"] == "Conv2D"}
    if set(branches) != {1, 2}:
        raise _NotChromaGAN
    global_convs, heads = _chain(branches[2], layers, consumers)
    mid, joins = _chain(branches[1], layers, consumers)
    dense: dict[bool, list[str]] = {}
    for flatten in heads:
        chain, _ = _chain(flatten, layers, consumers)
        dense[any(layers[n]["class_name"] == "RepeatVector" for n in chain)] = chain
    if set(dense) != {True, False} or len(joins) != 1:
        raise _NotChromaGAN
    decoder, _ = _chain(consumers[joins[0]][0], layers, consumers)
    weighted = lambda names: [n for n in names if layers[n]["class_name"] in _WEIGHTED]  # noqa: E731
    return {
        "vgg": nested[0],
        "global_convs": weighted(global_convs),
        "global_dense": weighted(dense[True]),
        "class_dense": weighted(dense[False]),
        "mid": weighted(mid),
        "decoder": weighted(decoder),
    }


def _inbound(layer: dict[str, Any]) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    return [entry[0] for node in nodes for entry in node if isinstance(entry, list) and entry]


def _strides(layer: dict[str, Any]) -> int:
    return int(layer["config"].get("strides", [1])[0])


def _chain(
    start: str, layers: dict[str, Any], consumers: dict[str, list[str]]
) -> tuple[list[str], list[str]]:
    """Layers from ``start`` while each has one consumer with one input; and where the chain ends."""
    chain = [start]
    while True:
        following = consumers.get(chain[-1], [])
        if len(following) != 1 or len(_inbound(layers[following[0]])) != 1:
            return chain, following
        chain.append(following[0])


def _convert(weights: Any, roles: dict[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    vgg = weights[roles["vgg"]]
    keras_vgg = sorted({_layer_of(w) for w in _weight_names(vgg)}, key=_vgg_order)
    pairs = list(zip(keras_vgg, _modules(model.vgg, "vgg"), strict=False))
    state.update(_leftovers(vgg, keras_vgg[len(pairs) :], f"{roles['vgg']}/"))
    for keras_name, (prefix, module) in pairs:
        state.update(_layer(vgg, keras_name, prefix, module, flatten=False))
    for role in ("global_convs", "global_dense", "class_dense", "mid", "decoder"):
        targets = _modules(getattr(model, role), role)
        for index, keras_name in enumerate(roles[role]):
            if index >= len(targets):
                state.update(_leftovers(weights, [keras_name], ""))
                continue
            prefix, module = targets[index]
            flatten = role in ("global_dense", "class_dense") and index == 0
            state.update(_layer(weights[keras_name], keras_name, prefix, module, flatten))
    return state


def _modules(parent: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)
    return [(f"{prefix}.{name}", m) for name, m in parent.named_children() if isinstance(m, kinds)]


def _weight_names(group: Any) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]


def _layer_of(weight_name: str) -> str:
    return weight_name.split("/")[-2] if "/" in weight_name else weight_name


def _vgg_order(name: str) -> tuple[int, int]:
    try:
        block, conv = name.removeprefix("block").split("_conv")
        return int(block), int(conv)
    except ValueError:
        return (99, 0)  # not a VGG layer: sorts last, reported as unexpected


def _layer(
    group: Any, keras_name: str, prefix: str, module: nn.Module, flatten: bool
) -> dict[str, torch.Tensor]:
    """One Keras layer's weights under ``prefix`` (a weight of an unknown kind keeps its Keras name)."""
    out: dict[str, torch.Tensor] = {}
    for weight_name in _weight_names(group):
        if _layer_of(weight_name) != keras_name:
            continue
        kind = weight_name.rsplit("/", 1)[-1].split(":")[0]
        value = np.asarray(group[weight_name])
        if kind == "kernel" and value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)
        elif kind == "kernel" and value.ndim == 2:
            value = _dense_kernel(value, flatten)
        key = {"kernel": "weight", "bias": "bias", **_BN_NAMES}.get(kind)
        out[f"{prefix}.{key}" if key else weight_name] = torch.from_numpy(np.ascontiguousarray(value))
    return out


def _dense_kernel(kernel: np.ndarray, flatten: bool) -> np.ndarray:
    """Keras ``(in, out)`` -> torch ``(out, in)``; after a Flatten the inputs go from HWC to CHW order."""
    if not flatten:
        return kernel.T
    grid = GLOBAL_GRID
    channels = kernel.shape[0] // (grid * grid)
    return kernel.reshape(grid, grid, channels, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)


def _leftovers(group: Any, layer_names: list[str], prefix: str) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}{w}": torch.from_numpy(np.asarray(group[w]))
        for w in _weight_names(group)
        if _layer_of(w) in layer_names
    }


def _raw(weights: Any) -> dict[str, torch.Tensor]:
    """Every dataset under its HDF5 path: what a file that is not ChromaGAN's holds."""
    out: dict[str, torch.Tensor] = {}

    def visit(name: str, item: Any) -> None:
        if hasattr(item, "shape") and item.shape:
            out[name] = torch.from_numpy(np.asarray(item))

    weights.visititems(visit)
    return out
