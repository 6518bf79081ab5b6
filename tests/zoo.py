"""A tiny zoo of synthetic colorization ONNX models, built with onnx.helper (no torch).

Every model is a closed-form function of its input, so tests can predict what it returns:

* ``ab``: L → ab with ``ab = 110 * AMP * tanh(w * x + b) * (1 - x^2)`` where ``x = L/50 - 1``
  (the ``(1 - x^2)`` envelope keeps chroma at zero for black and white, so outputs stay in gamut).
* ``rgb``: grey RGB in [-1, 1] → RGB in [-1, 1], ``y_c = x + TINT_c * (1 - x^2)``.
* ``hints``: L + ab hints + mask (4 ch) → ab, ``ab = 110 * tanh(hint_ab * HINT_GAIN)`` (1×1 conv).
* ``bins``: L → logits over ``BIN_CENTERS``; the bin weights depend on L.
* ``dividing``: L → ab divided by a constant, by default zero: NaN and infinite output.

Variants: no contract, fixed render size, fixed batch, float16 input/output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from colorrt.contract import ColorContract, write_to_onnx

OPSET = 17
AMP = 0.2
AB_WEIGHT = (0.8, -0.9)  # per output channel a, b
AB_BIAS = (0.3, 0.2)
TINT = (0.3, 0.0, -0.3)  # r, g, b
HINT_GAIN = 1.5
BIN_CENTERS = ((0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (-15.0, -15.0))

AB_CONTRACT = ColorContract(
    name="zoo-ab",
    input_space="L",
    input_scale=1 / 50,
    input_offset=-1.0,
    size_rule="multiple",
    render_size=64,
    multiple=4,
    output_kind="ab",
    output_scale=110.0,
    description="zoo: L -> ab, closed form",
)
RGB_CONTRACT = ColorContract(
    name="zoo-rgb",
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
HINTS_CONTRACT = ColorContract(
    name="zoo-hints",
    input_space="L_hints",
    input_scale=1 / 100,
    input_offset=-0.5,
    size_rule="fixed",
    render_size=32,
    output_kind="ab",
    output_scale=110.0,
)
BINS_CONTRACT = ColorContract(
    name="zoo-bins",
    input_space="L",
    input_scale=1 / 100,
    input_offset=-0.5,
    size_rule="fixed",
    render_size=32,
    output_kind="ab_bins",
    bin_centers=BIN_CENTERS,
    annealing_temperature=0.38,
)


def expected_ab(lightness: np.ndarray) -> np.ndarray:
    """What the ``ab`` model returns (CIE a, b; shape (..., 2)) for lightness L in 0..100."""
    x = np.asarray(lightness, dtype=np.float64)[..., None] / 50 - 1
    return 110 * AMP * np.tanh(np.asarray(AB_WEIGHT) * x + np.asarray(AB_BIAS)) * (1 - x**2)


def ab_model(
    path: Path,
    contract: ColorContract | None = AB_CONTRACT,
    *,
    batch: int | str = "N",
    size: tuple[int | str, int | str] = ("H", "W"),
    float16: bool = False,
    names: tuple[str, str] = ("input", "output"),
) -> Path:
    """L → ab model (see module docstring); ``contract=None`` stores no contract."""
    x, y = names
    nodes = [
        helper.make_node("Conv", [x, "w", "b"], ["conv"]),
        helper.make_node("Tanh", ["conv"], ["tanh"]),
        helper.make_node("Mul", [x, x], ["x2"]),
        helper.make_node("Sub", ["one", "x2"], ["envelope"]),
        helper.make_node("Mul", ["tanh", "envelope"], ["shaped"]),
        helper.make_node("Mul", ["shaped", "amp"], [y]),
    ]
    inits = {
        "w": np.array(AB_WEIGHT, np.float32).reshape(2, 1, 1, 1),
        "b": np.array(AB_BIAS, np.float32),
        "one": np.array(1.0, np.float32),
        "amp": np.array(AMP, np.float32),
    }
    return _save(path, nodes, inits, (x, [batch, 1, *size]), (y, [batch, 2, *size]), contract, float16)


def rgb_model(path: Path, contract: ColorContract | None = RGB_CONTRACT) -> Path:
    """Grey RGB → tinted RGB model (see module docstring)."""
    nodes = [
        helper.make_node("Mul", ["input", "input"], ["x2"]),
        helper.make_node("Sub", ["one", "x2"], ["envelope"]),
        helper.make_node("Mul", ["envelope", "tint"], ["shift"]),
        helper.make_node("Add", ["input", "shift"], ["output"]),
    ]
    inits = {"one": np.array(1.0, np.float32), "tint": np.array(TINT, np.float32).reshape(1, 3, 1, 1)}
    return _save(path, nodes, inits, ("input", ["N", 3, "H", "W"]), ("output", ["N", 3, "H", "W"]), contract)


def hints_model(path: Path, contract: ColorContract | None = HINTS_CONTRACT) -> Path:
    """L + hints + mask → ab: the output is the hint colour (tanh-squashed), zero where no hint."""
    weight = np.zeros((2, 4, 1, 1), np.float32)
    weight[0, 1] = weight[1, 2] = HINT_GAIN
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["conv"]),
        helper.make_node("Tanh", ["conv"], ["output"]),
    ]
    size = [contract.render_size] * 2 if contract else ["H", "W"]
    return _save(
        path, nodes, {"w": weight}, ("input", ["N", 4, *size]), ("output", ["N", 2, *size]), contract
    )


def bins_model(path: Path, contract: ColorContract | None = BINS_CONTRACT) -> Path:
    """L → logits over BIN_CENTERS: dark pixels favour bin 3, bright ones bin 1."""
    weight = np.array([0.0, 6.0, 1.0, -6.0], np.float32).reshape(4, 1, 1, 1)
    nodes = [helper.make_node("Conv", ["input", "w"], ["output"])]
    size = [contract.render_size] * 2 if contract else ["H", "W"]
    return _save(
        path, nodes, {"w": weight}, ("input", ["N", 1, *size]), ("output", ["N", 4, *size]), contract
    )


def dividing_model(path: Path, contract: ColorContract | None = AB_CONTRACT, *, divisor: float = 0.0) -> Path:
    """L → ab = conv(x) / divisor: a model that divides by zero (divisor 0: every value NaN or ±inf)."""
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["conv"]),
        helper.make_node("Div", ["conv", "divisor"], ["output"]),
    ]
    inits = {
        "w": np.array(AB_WEIGHT, np.float32).reshape(2, 1, 1, 1),
        "b": np.array(AB_BIAS, np.float32),
        "divisor": np.array(divisor, np.float32),
    }
    return _save(path, nodes, inits, ("input", ["N", 1, "H", "W"]), ("output", ["N", 2, "H", "W"]), contract)


def flat_model(path: Path) -> Path:
    """A valid ONNX model with a 2-D input: not an image model at all."""
    nodes = [helper.make_node("Tanh", ["input"], ["output"])]
    return _save(path, nodes, {}, ("input", ["N", 8]), ("output", ["N", 8]), AB_CONTRACT)


def _save(
    path: Path,
    nodes: list,
    initializers: dict[str, np.ndarray],
    graph_in: tuple[str, list],
    graph_out: tuple[str, list],
    contract: ColorContract | None,
    float16: bool = False,
) -> Path:
    (in_name, in_shape), (out_name, out_shape) = graph_in, graph_out
    io_type = TensorProto.FLOAT16 if float16 else TensorProto.FLOAT
    if float16:  # the body stays float32; casts at the edges make the model's interface float16
        nodes = [
            helper.make_node("Cast", [in_name], [f"{in_name}_f32"], to=TensorProto.FLOAT),
            *[_rename(n, {in_name: f"{in_name}_f32", out_name: f"{out_name}_f32"}) for n in nodes],
            helper.make_node("Cast", [f"{out_name}_f32"], [out_name], to=TensorProto.FLOAT16),
        ]
    graph = helper.make_graph(
        nodes,
        "zoo",
        [helper.make_tensor_value_info(in_name, io_type, in_shape)],
        [helper.make_tensor_value_info(out_name, io_type, out_shape)],
        initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
    model.producer_name = "colorrt-tests-zoo"
    if contract is not None:
        write_to_onnx(model, contract)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return Path(path)


def _rename(node: onnx.NodeProto, mapping: dict[str, str]) -> onnx.NodeProto:
    renamed = onnx.NodeProto()
    renamed.CopyFrom(node)
    renamed.input[:] = [mapping.get(n, n) for n in node.input]
    renamed.output[:] = [mapping.get(n, n) for n in node.output]
    return renamed
