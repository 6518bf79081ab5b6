"""ColorContract: validation, render sizes, JSON and ONNX metadata round trips, presets."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from colorrt.contract import (
    METADATA_KEY,
    PRESETS,
    ColorContract,
    ExtraInput,
    eccv16_contract,
    preset,
    read_from_onnx,
    write_to_onnx,
)
from colorrt.errors import ContractError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_json(name):
    contract = PRESETS[name]
    assert ColorContract.from_json(contract.to_json()) == contract


def test_bins_contract_round_trips_with_its_centres():
    contract = eccv16_contract([(0.0, 0.0), (10.0, -20.0), (-30.5, 40.25)])
    back = ColorContract.from_json(contract.to_json())
    assert back == contract and back.bin_centers[2] == (-30.5, 40.25)
    assert back.output_channels == 3 and back.input_channels == 1


def test_render_shape_fixed_and_multiple():
    assert PRESETS["siggraph17"].render_shape(1080, 1920) == (256, 256)
    default = PRESETS["colorrt-default"]  # longest side 256, multiples of 16
    assert default.render_shape(1080, 1920) == (144, 256)
    assert default.render_shape(1920, 1080) == (256, 144)
    assert default.render_shape(3, 5000) == (16, 256)  # never below one multiple
    with pytest.raises(ContractError):
        default.render_shape(0, 10)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"input_space": "rgb"}, "input_space"),
        ({"output_kind": "hsv"}, "output_kind"),
        ({"merge": "wholesale"}, "output_kind must be 'rgb' or 'lab'"),
        ({"line_art": "multiply"}, "line_art applies to merge='wholesale'"),
        ({"layout": "NCWH"}, "layout"),
        ({"channel_offset": (1.0,)}, "channel_offset needs one number per output channel"),
        ({"extra_inputs": (ExtraInput("input", "palette"),)}, "input names must be distinct"),
        ({"render_size": 0}, "render_size"),
        ({"output_kind": "ab_bins"}, "bin_centers"),
        ({"annealing_temperature": 0.0}, "annealing_temperature"),
    ],
)
def test_invalid_contracts_are_refused_with_the_field_named(changes, words):
    with pytest.raises(ContractError, match=words):
        PRESETS["colorrt-default"].replace(**changes)


def test_malformed_json_is_one_clear_error():
    with pytest.raises(ContractError, match="not valid JSON"):
        ColorContract.from_json("{nope")
    with pytest.raises(ContractError, match="unknown fields"):
        ColorContract.from_json('{"name": "x", "colour": 1}')
    with pytest.raises(ContractError, match="newer"):
        ColorContract.from_json('{"name": "x", "contract_version": 99}')


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ContractError, match="did you mean 'siggraph17'"):
        preset("sigraph17")
    assert preset("cyclegan-rgb") is PRESETS["cyclegan-rgb"]


def test_onnx_metadata_round_trip_replaces_an_older_contract():
    node = helper.make_node("Identity", ["input"], ["output"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 4, 4])],
    )
    model = helper.make_model(graph)
    assert read_from_onnx(model) is None
    write_to_onnx(model, PRESETS["pix2pix-colorization"])
    write_to_onnx(model, PRESETS["colorrt-default"])
    model = onnx.load_from_string(model.SerializeToString())
    assert [p.key for p in model.metadata_props].count(METADATA_KEY) == 1
    assert read_from_onnx(model) == PRESETS["colorrt-default"]
