"""Tiny ONNX models, pictures and videos for the calibration tests (built with onnx.helper and PyAV).

* :func:`tiny_resnet`: a CycleGAN-shaped ResNet generator (conv, InstanceNorm, ReLU, a reflect-padded
  residual block, a strided conv down and a ConvTranspose up, a 3-channel conv head and tanh), grey
  RGB in [-1, 1] -> RGB in [-1, 1], seeded weights: a smooth model whose INT8 version stays close.
* :func:`tiny_bins`: L -> ab through a softmax over ab bins decoded by a 1x1 conv (ECCV16 / the
  default model's head), for the FP16 keep-in-FP32 rules.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from colorrt.contract import ColorContract, write_to_onnx

OPSET = 17
RGB_CONTRACT = ColorContract(
    name="tiny-resnet",
    input_space="gray_rgb",
    input_scale=2.0,
    input_offset=-1.0,
    size_rule="multiple",
    render_size=64,
    multiple=4,
    output_kind="rgb",
    output_scale=0.5,
    output_offset=0.5,
)
AB_CONTRACT = ColorContract(
    name="tiny-bins",
    input_space="L",
    input_scale=1 / 50,
    input_offset=-1.0,
    size_rule="multiple",
    render_size=64,
    multiple=4,
    output_kind="ab",
    output_scale=110.0,
)
BIN_CENTERS = np.array([(a, b) for a in (-40, -10, 20, 50) for b in (-40, 0, 40)], np.float32)  # CIE ab


class _Graph:
    """Collects nodes and seeded initializers."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        self.count += 1
        out = f"{op.lower()}{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", **attrs))
        return out

    def conv(
        self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1, gain: float = 1.0
    ) -> str:
        w = self.rng.standard_normal((cout, cin, k, k)) * gain * np.sqrt(2.0 / (cin * k * k))
        b = self.rng.standard_normal(cout) * 0.1
        n = self.count + 1
        return self.node(
            "Conv",
            [x, self.const(f"w{n}", w), self.const(f"b{n}", b)],
            kernel_shape=[k, k],
            strides=[stride] * 2,
            pads=[pad] * 4,
        )

    def norm(self, x: str, channels: int) -> str:
        n = self.count + 1
        scale = self.const(f"s{n}", np.ones(channels))
        bias = self.const(f"o{n}", np.zeros(channels))
        return self.node("InstanceNormalization", [x, scale, bias], epsilon=1e-5)

    def reflect(self, x: str, pad: int) -> str:
        n = self.count + 1
        pads = numpy_helper.from_array(np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64), f"p{n}")
        self.inits.append(pads)
        return self.node("Pad", [x, f"p{n}"], mode="reflect")


def tiny_resnet(
    path: Path, contract: ColorContract | None = RGB_CONTRACT, seed: int = 0, ngf: int = 8
) -> Path:
    g = _Graph(seed)
    x = g.node("Relu", [g.norm(g.conv(g.reflect("input", 1), 3, ngf, pad=0), ngf)])
    x = g.node("Relu", [g.norm(g.conv(x, ngf, 2 * ngf, stride=2), 2 * ngf)])
    y = g.node("Relu", [g.norm(g.conv(g.reflect(x, 1), 2 * ngf, 2 * ngf, pad=0), 2 * ngf)])
    y = g.norm(g.conv(g.reflect(y, 1), 2 * ngf, 2 * ngf, pad=0), 2 * ngf)
    x = g.node("Add", [x, y])
    n = g.count + 1
    w = g.rng.standard_normal((2 * ngf, ngf, 3, 3)) * np.sqrt(2.0 / (2 * ngf * 9))
    x = g.node(
        "ConvTranspose",
        [x, g.const(f"w{n}", w), g.const(f"b{n}", np.zeros(ngf))],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        output_padding=[1, 1],
    )
    x = g.node("Relu", [g.norm(x, ngf)])
    x = g.conv(g.reflect(x, 1), ngf, 3, pad=0, gain=0.3)
    g.nodes.append(helper.make_node("Tanh", [x], ["output"], name="Tanh_head"))
    return _save(path, g, 3, 3, contract)


def tiny_bins(path: Path, contract: ColorContract | None = AB_CONTRACT, seed: int = 1) -> Path:
    g = _Graph(seed)
    x = g.node("Relu", [g.norm(g.conv("input", 1, 8), 8)])
    logits = g.conv(x, 8, len(BIN_CENTERS), k=1, pad=0, gain=2.0)
    probs = g.node("Softmax", [logits], axis=1)
    weight = (BIN_CENTERS.T / 110.0).reshape(2, len(BIN_CENTERS), 1, 1)
    g.nodes.append(
        helper.make_node("Conv", [probs, g.const("centres", weight)], ["output"], name="Conv_decode")
    )
    return _save(path, g, 1, 2, contract)


def _save(path: Path, g: _Graph, cin: int, cout: int, contract: ColorContract | None) -> Path:
    graph = helper.make_graph(
        g.nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", cin, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", cout, "H", "W"])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
    if contract is not None:
        write_to_onnx(model, contract)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return Path(path)


# ------------------------------------------------------------------------------------------------ pictures


def smooth_picture(rng: np.random.Generator, height: int, width: int, colour: bool = True) -> np.ndarray:
    """A smooth random uint8 picture (blurred noise, its own brightness and contrast)."""
    channels = 3 if colour else 1
    coarse = rng.standard_normal((height // 8 + 2, width // 8 + 2, channels))
    texture = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    for axis in (0, 1):
        texture = (np.roll(texture, 2, axis) + 2 * texture + np.roll(texture, -2, axis)) / 4
    texture = (texture - texture.mean()) / (texture.std() + 1e-6)
    picture = np.clip(rng.uniform(70, 180) + rng.uniform(25, 50) * texture, 0, 255).astype(np.uint8)
    return picture if colour else picture[..., 0]


def picture_folder(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    """``count`` PNG/JPEG pictures (some grey, one in a sub-folder) in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        picture = smooth_picture(rng, *size, colour=index % 3 != 0)
        name = f"sub/pic{index:02d}.jpg" if index == 1 else f"pic{index:02d}.png"
        (folder / name).parent.mkdir(exist_ok=True)
        Image.fromarray(picture).save(folder / name)
    return folder


def write_video(path: Path, frames: int, fps: int = 10, size: tuple[int, int] = (48, 64)) -> Path:
    """An H.264 video whose frame ``i`` has mean grey level ``40 + i * 160 / frames`` (so the level
    tells which frame it is), with a little texture."""
    rng = np.random.default_rng(7)
    height, width = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": "5"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        texture = smooth_picture(rng, height, width).astype(np.float64) - 128
        for index in range(frames):
            level = frame_level(index, frames)
            picture = np.clip(level + 0.2 * texture, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def frame_level(index: int, frames: int) -> float:
    return 40 + index * 160 / frames
