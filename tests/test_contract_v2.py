"""Contract format version 2: new fields stored only when used, version 1 files load unchanged."""

from __future__ import annotations

import json

import pytest

from colorrt.contract import CONTRACT_VERSION, PRESETS, ColorContract, ExtraInput, iizuka_contract, preset
from colorrt.errors import ContractError

# A contract as colorrt wrote it before version 2 existed (the cyclegan-rgb preset of that release).
V1_JSON = (
    '{"annealing_temperature":0.38,"bin_centers":null,"contract_version":1,"description":"",'
    '"extra":{},"hint_scale":0.00909090909090909,"input_name":"input","input_offset":-1.0,'
    '"input_scale":2.0,"input_space":"gray_rgb","mask_offset":-0.5,"multiple":4,"name":"cyclegan-rgb",'
    '"output_kind":"rgb","output_name":"output","output_offset":0.5,"output_scale":0.5,'
    '"render_size":256,"size_rule":"multiple"}'
)


def test_a_version_1_file_loads_unchanged_with_every_v2_default():
    contract = ColorContract.from_json(V1_JSON)
    assert contract.merge == "chroma" and contract.line_art == "none" and contract.layout == "NCHW"
    assert contract.extra_inputs == () and contract.binarize_above is None and not contract.v2_features()
    assert contract == PRESETS["cyclegan-rgb"].replace(description="")


def test_contracts_without_v2_features_are_still_written_as_version_1():
    data = PRESETS["colorrt-default"].to_dict()
    assert data["contract_version"] == 1
    assert not {"merge", "line_art", "layout", "extra_inputs", "channel_offset"} & set(data)


@pytest.mark.parametrize("name", ["cyclegan-sketch", "chromagan", "comicolorization"])
def test_family_presets_are_version_2_and_round_trip(name):
    contract = PRESETS[name]
    data = json.loads(contract.to_json())
    assert data["contract_version"] == CONTRACT_VERSION == 2
    assert ColorContract.from_json(contract.to_json()) == contract


def test_extra_inputs_round_trip_as_objects():
    contract = iizuka_contract(0.4509)
    data = contract.to_dict()
    assert data["extra_inputs"] == [{"name": "global", "kind": "global", "size": 224, "scale": 1, "bins": 6}]
    assert data["input_offset"] == pytest.approx(-0.4509)
    back = ColorContract.from_dict(data)
    assert back == contract and isinstance(back.extra_inputs[0], ExtraInput)
    assert PRESETS["comicolorization"].takes_reference and PRESETS["comicolorization"].detail_scale == 2


def test_malformed_extra_inputs_and_contracts_built_from_weights_are_named():
    with pytest.raises(ContractError, match="extra_inputs kind"):
        ColorContract.from_dict({"name": "x", "extra_inputs": [{"name": "p", "kind": "histogram"}]})
    with pytest.raises(ContractError, match="malformed"):
        ColorContract.from_dict({"name": "x", "extra_inputs": [{"name": "p", "kind": "palette", "bogus": 1}]})
    with pytest.raises(ContractError, match="global copy needs size"):
        ExtraInput("g", "global")
    with pytest.raises(ContractError, match="mean stored in the .t7"):
        preset("iizuka2016")
