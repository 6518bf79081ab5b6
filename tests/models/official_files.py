"""Writers of files in the official formats of ChromaGAN (Keras .h5), Iizuka et al. (Torch7 .t7) and
Comicolorization (Chainer .npz), from a torch module's weights, for the loader tests.

Official weights cannot be downloaded here, so each writer lays out random weights as the official
code saves them (names, shapes, nesting), read from the official repositories:

* ChromaGAN: ``colorization_model()`` in pvitoria/ChromaGAN ``SOURCE/ChromaGAN.py`` saved with
  Keras 2 ``model.save``: root ``model_config`` (the functional graph), ``model_weights/<layer>/
  <layer>/kernel:0`` datasets with ``layer_names`` / ``weight_names`` attributes, the VGG16 part a
  nested model whose layers keep their application names, auto-numbered names elsewhere.
* Iizuka et al.: ``torch.save`` of ``{mean = <number>, model = <nn.gModule>}``, written by the minimal
  Torch7 serializer below (torchfile only reads); ``forwardnodes[9].data.module.modules[3..4]`` are
  the ``nn.Replicate`` modules colorize.lua resizes.
* Comicolorization: ``chainer.serializers.save_npz`` (compressed npz, link paths as keys) in the
  official folder layout ``comicolorization/550000.model`` and ``super_resolution/80000.model``.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from colorrt.models.chromagan import GLOBAL_GRID, VGG_BLOCKS

# ----------------------------------------------------------------------------------- Keras .h5


def write_chromagan_h5(path: Path, model: nn.Module) -> Path:
    """``model`` (a :class:`ChromaGAN`) as Keras 2 saves ``my_model_colorization.h5``."""
    import h5py

    layers, weights = _keras_layers(model)
    config = {"class_name": "Model", "config": {"name": "model_3", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer["name"].encode() for layer in layers]
        for layer in layers:
            entries = weights.get(layer["name"], [])
            g = group.create_group(layer["name"])
            g.attrs["weight_names"] = [name.encode() for name, _ in entries]
            for name, value in entries:
                g.create_dataset(name, data=value)
    return path


def _keras_layers(model: nn.Module) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, np.ndarray]]]]:
    counters: dict[str, int] = {
        "conv2d": 5,
        "batch_normalization": 0,
        "dense": 0,
    }  # the critic has conv2d_1..5
    layers: list[dict[str, Any]] = []
    weights: dict[str, list[tuple[str, np.ndarray]]] = {}

    def add(
        kind: str,
        class_name: str,
        inbound: list[str],
        config: dict,
        module: nn.Module | None = None,
        flat: bool = False,
    ) -> str:
        counters[kind] = counters.get(kind, 0) + 1
        name = f"{kind}_{counters[kind]}"
        layers.append(
            {
                "name": name,
                "class_name": class_name,
                "config": {"name": name, **config},
                "inbound_nodes": [[[n, 1 if n == "model_2" else 0, 0, {}] for n in inbound]]
                if inbound
                else [],
            }
        )
        if module is not None:
            weights[name] = [(f"{name}/{k}:0", v) for k, v in _keras_weights(module, flat)]
        return name

    layers.append(
        {
            "name": "input_3",
            "class_name": "InputLayer",
            "config": {"batch_input_shape": [None, 224, 224, 3]},
            "inbound_nodes": [],
        }
    )
    vgg_names = [f"block{b + 1}_conv{c + 1}" for b, block in enumerate(VGG_BLOCKS) for c in range(len(block))]
    vgg_convs = [m for m in model.vgg if isinstance(m, nn.Conv2d)]
    layers.append(
        {
            "name": "model_2",
            "class_name": "Model",
            "config": {"name": "model_2", "layers": [{"name": n, "class_name": "Conv2D"} for n in vgg_names]},
            "inbound_nodes": [[["input_3", 0, 0, {}]]],
        }
    )
    weights["model_2"] = [
        (f"{n}/{k}:0", v)
        for n, m in zip(vgg_names, vgg_convs, strict=True)
        for k, v in _keras_weights(m, False)
    ]

    def convs(parent: nn.Module, source: str) -> str:
        last = source
        for m in parent:
            if isinstance(m, nn.Conv2d):
                cfg = {
                    "filters": m.out_channels,
                    "kernel_size": list(m.kernel_size),
                    "strides": list(m.stride),
                    "padding": "same",
                }
                last = add("conv2d", "Conv2D", [last], cfg, m)
            elif isinstance(m, nn.BatchNorm2d):
                last = add("batch_normalization", "BatchNormalization", [last], {"epsilon": 1e-3}, m)
            elif isinstance(m, nn.Upsample):
                last = add("up_sampling2d", "UpSampling2D", [last], {"size": [2, 2]})
        return last

    top = convs(model.global_convs, "model_2")
    head = add("flatten", "Flatten", [top], {})
    for i, m in enumerate(model.global_dense):
        head = add("dense", "Dense", [head], {"units": m.out_features}, m, flat=i == 0)
    head = add("repeat_vector", "RepeatVector", [head], {"n": 28 * 28})
    head = add("reshape", "Reshape", [head], {"target_shape": [28, 28, model.global_dense[-1].out_features]})
    classes = add("flatten", "Flatten", [top], {})
    for i, m in enumerate(model.class_dense):
        classes = add("dense", "Dense", [classes], {"units": m.out_features}, m, flat=i == 0)
    mid = convs(model.mid, "model_2")
    joined = add("concatenate", "Concatenate", [mid, head], {"axis": -1})
    convs(model.decoder, joined)
    return layers, weights


def _keras_weights(module: nn.Module, flat: bool) -> list[tuple[str, np.ndarray]]:
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    if isinstance(module, nn.Conv2d):
        return [("kernel", state["weight"].transpose(2, 3, 1, 0)), ("bias", state["bias"])]
    if isinstance(module, nn.Linear):
        kernel = state["weight"]
        if flat:  # torch reads the flattened map as CHW, Keras as HWC
            out = kernel.shape[0]
            kernel = kernel.reshape(out, -1, GLOBAL_GRID, GLOBAL_GRID).transpose(0, 2, 3, 1).reshape(out, -1)
        return [("kernel", kernel.T.copy()), ("bias", state["bias"])]
    names = {
        "weight": "gamma",
        "bias": "beta",
        "running_mean": "moving_mean",
        "running_var": "moving_variance",
    }
    return [(names[k], state[k]) for k in names]


# ----------------------------------------------------------------------------------- Torch7 .t7

_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN = 0, 1, 2, 3, 4, 5


class T7Object:
    """A Torch7 class instance (``nn.SpatialConvolution``, ``nngraph.Node``, ...) and its fields."""

    def __init__(self, typename: str, **fields: Any) -> None:
        self.typename, self.fields = typename, {"train": False, **fields}


class _T7Writer:
    """The subset of Torch7's ``File:writeObject`` (binary, 8-byte longs) that model files use."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.index: dict[int, int] = {}  # id(object) -> reference number, for shared objects
        self.count = 0
        self.alive: list[Any] = []  # written objects stay alive, so their ids are never reused

    def write(self, obj: Any) -> None:
        if obj is None:
            self._int(_NIL)
        elif isinstance(obj, bool):
            self._int(_BOOLEAN)
            self._int(int(obj))
        elif isinstance(obj, (int, float)):
            self._int(_NUMBER)
            self.out.write(struct.pack("<d", float(obj)))
        elif isinstance(obj, str):
            self._int(_STRING)
            self._string(obj)
        elif isinstance(obj, (dict, list, T7Object, np.ndarray)):
            self._reference(obj)
        else:
            raise TypeError(f"cannot write {type(obj).__name__} to a Torch7 file")

    def _new_reference(self, kind: int, key: int | None) -> bool:
        """Write the kind and reference number; False when the object was written before."""
        self._int(kind)
        if key is not None and key in self.index:
            self._int(self.index[key])
            return False
        self.count += 1
        if key is not None:
            self.index[key] = self.count
        self._int(self.count)
        return True

    def _reference(self, obj: Any) -> None:
        if not self._new_reference(_TABLE if isinstance(obj, (dict, list)) else _TORCH, id(obj)):
            return
        self.alive.append(obj)
        if isinstance(obj, np.ndarray):
            self._tensor(obj)
            return
        if isinstance(obj, T7Object):
            self._string("V 1")
            self._string(obj.typename)
            self.write(dict(obj.fields))
            return
        table = {i + 1: v for i, v in enumerate(obj)} if isinstance(obj, list) else obj
        self._int(len(table))
        for key, value in table.items():
            self.write(key)
            self.write(value)

    def _tensor(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array, dtype=np.float32)
        self._string("V 1")
        self._string("torch.FloatTensor")
        self._int(array.ndim)
        strides = [s // 4 for s in array.strides]
        self.out.write(struct.pack(f"<{2 * array.ndim + 1}q", *array.shape, *strides, 1))  # offset 1-based
        self._new_reference(_TORCH, None)  # the storage, an object of its own
        self._string("V 1")
        self._string("torch.FloatStorage")
        self.out.write(struct.pack("<q", array.size))
        self.out.write(array.tobytes())

    def _int(self, value: int) -> None:
        self.out.write(struct.pack("<i", value))

    def _string(self, text: str) -> None:
        data = text.encode()
        self._int(len(data))
        self.out.write(data)


def write_t7(path: Path, obj: Any) -> Path:
    """``obj`` (numbers, strings, dicts, lists, arrays as FloatTensors, :class:`T7Object`) as a .t7 file."""
    writer = _T7Writer()
    writer.write(obj)
    path.write_bytes(writer.out.getvalue())
    return path


def _t7_layer(module: nn.Module) -> T7Object:
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    if isinstance(module, nn.Conv2d):
        (kh, kw), (dh, dw), (ph, pw) = module.kernel_size, module.stride, module.padding
        return T7Object(
            "nn.SpatialConvolution",
            nInputPlane=module.in_channels,
            nOutputPlane=module.out_channels,
            kW=kw,
            kH=kh,
            dW=dw,
            dH=dh,
            padW=pw,
            padH=ph,
            weight=state["weight"],
            bias=state["bias"],
        )
    if isinstance(module, nn.Linear):
        return T7Object("nn.Linear", weight=state["weight"], bias=state["bias"])
    kind = "nn.SpatialBatchNormalization" if isinstance(module, nn.BatchNorm2d) else "nn.BatchNormalization"
    return T7Object(
        kind,
        eps=module.eps,
        momentum=0.1,
        affine=True,
        train=False,
        **{k: state[k] for k in ("weight", "bias", "running_mean", "running_var")},
    )


def _sequential(*modules: T7Object) -> T7Object:
    return T7Object("nn.Sequential", modules=list(modules), train=False)


def _t7_stack(parent: nn.Module) -> list[T7Object]:
    """A colorrt ``_Stack``'s layers as Torch7 modules with ReLUs, in order."""
    out: list[T7Object] = []
    for m in parent.children():
        out.append(_t7_layer(m))
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            out.append(T7Object("nn.ReLU", inplace=False))
    return out


def write_iizuka_t7(path: Path, model: nn.Module, mean: float) -> Path:
    """``model`` (an :class:`Iizuka2016`) as ``torch.save({mean=..., model=<gModule>})``."""
    net = model.net
    global_stack = _t7_stack(net.global_network)
    convs, fcs = global_stack[:12], global_stack[12:]
    last_fc = fcs[-3:]
    nodes = [
        {"module": T7Object("nn.Identity")},
        {"module": T7Object("nn.Identity")},
        {"module": _sequential(*_t7_stack(net.global_low_level))},
        {"module": _sequential(*_t7_stack(net.low_level))},
        {"module": _sequential(*convs, T7Object("nn.View", size=[-1]))},
        {"module": _sequential(*fcs[:-3])},
        {"module": _sequential(*_t7_stack(net.mid_level))},
        {"module": _sequential(*last_fc)},
        {
            "module": _sequential(
                T7Object("nn.View", size=[-1, 1, 1]),
                T7Object("nn.Identity"),
                T7Object("nn.Replicate", nfeatures=28, dim=3),
                T7Object("nn.Replicate", nfeatures=28, dim=4),
            )
        },
        {"module": T7Object("nn.JoinTable", dimension=2)},
        {"module": _sequential(_t7_layer(net.fusion_layer.conv), T7Object("nn.ReLU"))},
        {"module": _sequential(*_colorization_t7(net.colorization))},
    ]
    forwardnodes = [T7Object("nngraph.Node", data=data, id=i + 1) for i, data in enumerate(nodes)]
    gmodule = T7Object(
        "nn.gModule", forwardnodes=forwardnodes, modules=[n["module"] for n in nodes], nInputs=2
    )
    return write_t7(path, {"mean": float(mean), "model": gmodule})


def _colorization_t7(colorization: nn.Module) -> list[T7Object]:
    out: list[T7Object] = []
    for name, m in colorization.named_children():
        if name in ("conv2_1", "conv3_1"):
            out.append(T7Object("nn.SpatialUpSamplingNearest", scale_factor=2))
        out.append(_t7_layer(m))
        if isinstance(m, nn.BatchNorm2d):
            out.append(T7Object("nn.ReLU"))
    return [*out, T7Object("nn.Sigmoid")]


# ----------------------------------------------------------------------------------- Chainer npz


def write_comicolorization_folder(folder: Path, model: nn.Module) -> Path:
    """``model`` (a :class:`Comicolorization`) as the official ``model/`` folder of two snapshots."""
    for sub, name, part in (
        ("comicolorization", "550000.model", model.ltbc),
        ("super_resolution", "80000.model", model.super_resolution),
    ):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        with open(folder / sub / name, "wb") as f:  # an open file: numpy adds no .npz suffix, as Chainer
            np.savez_compressed(f, **chainer_arrays(part))
    return folder


def chainer_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    """A torch module's weights under Chainer link paths (BatchNorm with its ``N`` counter)."""
    leaves = {"weight": "W", "bias": "b", "running_mean": "avg_mean", "running_var": "avg_var"}
    norms = {n for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    out: dict[str, np.ndarray] = {}
    for key, value in module.state_dict().items():
        owner, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            out[owner.replace(".", "/") + "/N"] = np.array(1000, np.int64)
            continue
        if owner in norms:
            leaf = {"weight": "gamma", "bias": "beta"}.get(leaf, leaves[leaf])
        else:
            leaf = leaves[leaf]
        out[owner.replace(".", "/") + "/" + leaf] = value.detach().numpy()
    return out


def torch_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a module's state dict (to compare a reloaded model against)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
