"""Synthetic detectors and tiny InstColorization bundles shared by the instance-pipeline tests.

A detector here is an ONNX graph that returns fixed boxes and scores whatever the image (its input
is read, so ONNX Runtime keeps it), in one of the output layouts of the detector contract.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from colorrt.engines.bundle import DETECTOR_KEY

TEST_SIZE = 32  # render size of the test bundles (multiple of 8)
TEST_WIDTH = 0.125  # channel multiplier of the test bundles (official: 1.0)


def detector_model(
    path: Path,
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float],
    *,
    layout: str = "boxes_scores",
    batch_dim: bool = False,
    contract: dict | None = None,
) -> Path:
    """A detector returning ``boxes`` (x0 y0 x1 y1) and ``scores`` for any (1, 3, H, W) image.

    ``layout``: ``"boxes_scores"`` (two outputs), ``"detections"`` (one (N, 6) output: box, score,
    class) or ``"boxes_only"`` (one (N, 4) output: a layout no contract describes).
    """
    box_array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    score_array = np.asarray(scores, dtype=np.float32).reshape(-1)
    zero = helper.make_node("ReduceMax", ["image"], ["peak"], keepdims=0)  # reads the input
    scale = helper.make_node("Mul", ["peak", "zero"], ["nothing"])
    nodes, inits = [zero, scale], [numpy_helper.from_array(np.float32(0.0), "zero")]

    shapes: dict[str, tuple[int, ...]] = {}

    def constant(name: str, value: np.ndarray) -> str:
        value = value[None] if batch_dim else value
        inits.append(numpy_helper.from_array(value, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        shapes[name] = value.shape
        return name

    if layout == "boxes_scores":
        outs = [constant("boxes", box_array), constant("scores", score_array)]
    elif layout == "detections":
        rows = np.concatenate([box_array, score_array[:, None], np.zeros_like(score_array)[:, None]], 1)
        outs = [constant("detections", rows)]
    else:
        outs = [constant("boxes", box_array)]
    graph = helper.make_graph(
        nodes,
        "synthetic_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shapes[name]) for name in outs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if contract is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = DETECTOR_KEY, json.dumps(contract)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


_BUNDLES: dict[int, Path] = {}


def tiny_bundle(root: Path, seed: int = 7) -> Path:
    """A random-init bundle at TEST_SIZE / TEST_WIDTH, exported once per test session (per seed)
    through the CLI (``colorrt export --arch instcolorization``). Tests must not change it."""
    if seed not in _BUNDLES:
        from colorrt.cli import main

        path = root / f"bundle-{seed}"
        args = ["export", "--arch", "instcolorization", "--random-init", "--seed", str(seed)]
        args += ["--size", str(TEST_SIZE), "--arch-option", f"width={TEST_WIDTH}", "-o", str(path)]
        if main(args) != 0:
            raise RuntimeError(f"colorrt {' '.join(args)} failed")
        _BUNDLES[seed] = path
    return _BUNDLES[seed]


def sample_luminance(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A float32 CIE L plane with structure at every scale (gradients, a disc, noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((y - height / 2) ** 2 + (x - width / 3) ** 2 < (min(height, width) / 4) ** 2) * 30.0
    plane = 20 + 50 * x / width + 10 * np.sin(y / 3) + disc + rng.normal(0, 4, (height, width))
    return np.clip(plane, 0, 100).astype(np.float32)
