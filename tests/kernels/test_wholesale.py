"""Wholesale merge: a sketch colorizer's fills come out as the model paints them, the lines stay; the
chroma merge on the same model shows why the mode exists. Plus decode of lab / NHWC / per-channel
outputs and the line-art modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import ndimage
from skimage.color import deltaE_ciede2000, rgb2lab

from colorrt.contract import PRESETS, write_to_onnx
from colorrt.kernels import decode_ab, luminance, merge, resize_bilinear
from colorrt.kernels.color import lab_to_rgb, rgb_to_lab
from colorrt.runtime import Runtime

RED = np.array([204, 51, 51]) / 255  # the fill the sketch model paints on white paper


def sketch_model(path: Path, contract=PRESETS["cyclegan-sketch"]) -> Path:
    """Grey RGB in [-1, 1] -> RGB in [-1, 1]: ``y = (x + 1) * red - 1``: paper -> red, lines -> black."""
    nodes = [
        helper.make_node("Add", ["input", "one"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "red"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "one"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(RED.astype(np.float32).reshape(1, 3, 1, 1), "red"),
    ]
    shape = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes,
        "sketch",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    write_to_onnx(model, contract)
    onnx.save(model, str(path))
    return path


def drawing(height: int = 300, width: int = 420) -> tuple[np.ndarray, np.ndarray]:
    """A line drawing on white paper (uint8 RGB) and its line mask: rectangles and a circle, 3 px lines."""
    image = np.full((height, width, 3), 255, np.uint8)
    lines = np.zeros((height, width), bool)
    lines[40:43, 30:390] = lines[257:260, 30:390] = lines[40:260, 30:33] = lines[40:260, 387:390] = True
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot(yy - 150, xx - 210)
    lines |= (radius > 70) & (radius < 73)
    image[lines] = 20
    return image, lines


def _away_from(lines: np.ndarray, margin: int) -> np.ndarray:
    """Pixels farther than ``margin`` (in x and y) from every line pixel."""
    return ~ndimage.binary_dilation(lines, np.ones((2 * margin + 1, 2 * margin + 1), bool))


def _model_own_output(image: np.ndarray, runtime: Runtime) -> np.ndarray:
    """The model's RGB at render size, upsampled to full size: what it painted, with nothing merged."""
    contract = runtime.contract
    from colorrt.kernels import preprocess

    L = luminance(image)
    out = runtime.engine.infer(preprocess([L], contract))[0]
    rgb = np.clip(out * contract.output_scale + contract.output_offset, 0, 1)
    return np.moveaxis(resize_bilinear(rgb.astype(np.float32), L.shape), 0, -1)


def test_sketch_fills_come_out_as_painted_and_lines_stay(tmp_path: Path) -> None:
    image, lines = drawing()
    with Runtime(sketch_model(tmp_path / "sketch.onnx"), backend="onnxruntime", threads=1) as runtime:
        assert runtime.contract.merge == "wholesale" and runtime.contract.line_art == "multiply"
        out = runtime.colorize(image)
        painted = _model_own_output(image, runtime)
    away = _away_from(lines, 6)
    delta = deltaE_ciede2000(rgb2lab(out[away] / 255.0), rgb2lab(painted[away]))
    assert delta.max() <= 2.0, f"fills differ from the model's own colours by up to {delta.max():.2f} dE00"
    far = _away_from(lines, 12)  # beyond the blur of lines drawn at render size: the red fill itself
    assert np.abs(out[far].astype(int) - (RED * 255).round()).max() <= 1
    assert (out[lines] <= 25).all(), "the drawing's lines must stay dark at full resolution"
    assert out.shape == image.shape


def test_the_same_model_under_the_chroma_merge_leaves_pale_paper(tmp_path: Path) -> None:
    image, lines = drawing()
    chroma = PRESETS["cyclegan-sketch"].replace(merge="chroma", line_art="none")
    with Runtime(sketch_model(tmp_path / "sketch.onnx", chroma), backend="onnxruntime", threads=1) as runtime:
        out = runtime.colorize(image)
    fill = out[_away_from(lines, 12)].reshape(-1, 3)
    # The paper keeps its L of 100, so the red becomes the pale salmon the issue reports.
    assert np.abs(fill.astype(int) - [255, 205, 186]).max() <= 3
    delta = deltaE_ciede2000(rgb2lab(fill / 255.0), rgb2lab(RED[None]))
    assert delta.min() > 20, "under the chroma merge the model's red never reaches the page"


def test_threshold_line_art_keeps_the_dark_input_pixels() -> None:
    contract = PRESETS["cyclegan-sketch"].replace(line_art="threshold", line_threshold=40.0)
    image, lines = drawing(60, 80)
    L = luminance(image)
    lab = np.broadcast_to(rgb_to_lab(RED.astype(np.float32)).reshape(3, 1, 1), (3, 30, 40)).copy()
    out = merge(L, lab, contract)
    assert (out[lines] == 20).all()  # the input's own grey pixels
    away = _away_from(lines, 2)
    assert np.abs(out[away].astype(int) - (RED * 255).round()).max() <= 1
    plain = merge(L, lab, PRESETS["cyclegan-sketch"].replace(line_art="none"))
    assert np.abs(plain[lines].astype(int) - (RED * 255).round()).max() <= 1  # no line art: all red


def test_multiply_line_art_is_colour_times_grey() -> None:
    contract = PRESETS["cyclegan-sketch"]
    grey = np.full((8, 8), 128, np.uint8)
    lab = np.broadcast_to(rgb_to_lab(RED.astype(np.float32)).reshape(3, 1, 1), (3, 4, 4)).copy()
    out = merge(luminance(grey), lab, contract)
    expected = np.rint(lab_to_rgb(rgb_to_lab(RED.astype(np.float32))) * 128 / 255 * 255)
    assert np.abs(out.reshape(-1, 3) - expected).max() <= 1


def test_decode_lab_with_per_channel_offsets_nhwc_and_strength() -> None:
    contract = PRESETS["comicolorization"]  # L = 50 (y0 + 1), a = 50 y1, b = 50 y2; wholesale
    y = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4, 5)).astype(np.float32)
    lab = decode_ab(y, contract)
    assert lab.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(lab[:, 0], 50 * (y[:, 0] + 1), atol=1e-4)
    np.testing.assert_allclose(lab[:, 1:], 50 * y[:, 1:], atol=1e-4)
    chroma = decode_ab(y, contract.replace(merge="chroma", line_art="none"), strength=0.5)
    np.testing.assert_allclose(chroma, 25 * y[:, 1:], atol=1e-4)
    nhwc = PRESETS["chromagan"]  # ab = 255 y - 128, channels last
    ab = decode_ab(y[:, :2].transpose(0, 2, 3, 1), nhwc)
    np.testing.assert_allclose(ab, 255 * y[:, :2] - 128, rtol=1e-5, atol=1e-4)
    whole = decode_ab(np.full((1, 3, 2, 2), 1.0, np.float32), PRESETS["cyclegan-sketch"])
    assert whole.shape == (1, 3, 2, 2) and whole[0, 0, 0, 0] == pytest.approx(100.0, abs=0.01)
