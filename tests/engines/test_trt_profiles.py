"""Shape ranges (--batch / --size) → optimization profiles, and batch shapes checked against them."""

from __future__ import annotations

import json

import pytest

from colorrt.engines.tensorrt.profiles import (
    Profile,
    TensorRange,
    check_shape_in_profile,
    default_size_range,
    derive_profiles,
    parse_shape_ranges,
    select_profile,
)
from colorrt.errors import ContractError, InputError
from tests.engines.trt_helpers import CYCLEGAN, DEFAULT, FIXED


@pytest.mark.parametrize(
    ("text", "expected"), [("1:4:16", (1, 4, 16)), ("8", (1, 8, 8)), (" 2:2:2 ", (2, 2, 2)), (4, (1, 4, 4))]
)
def test_parse_batch(text, expected):
    assert parse_shape_ranges(text).batch == expected


@pytest.mark.parametrize("text", ["4:1:16", "0:1:2", "a:b:c", "1:2", "1:2:3:4", "-1", ""])
def test_bad_batch_is_rejected_with_usage(text):
    with pytest.raises(InputError, match="--batch") as err:
        parse_shape_ranges(text)
    assert "MIN:OPT:MAX" in err.value.hint


def test_parse_size_single_and_triple():
    assert parse_shape_ranges(size="256x256").size == ((256, 256),) * 3
    assert parse_shape_ranges(size="256x256:512X512:1088x1920").size == ((256, 256), (512, 512), (1088, 1920))


@pytest.mark.parametrize(
    "text", ["256", "256x", "x256", "0x256", "512x512:256x256:1088x1920", "1x1:2x2", "axb"]
)
def test_bad_size_is_rejected(text):
    with pytest.raises(InputError, match="--size"):
        parse_shape_ranges(size=text)


def test_sizes_round_up_to_the_contracts_multiple():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16", "250x250:510x510:1081x1918"))
    rng = profile.tensor()
    assert rng.name == CYCLEGAN.input_name
    assert rng.min == (1, 3, 252, 252)
    assert rng.opt == (4, 3, 512, 512)
    assert rng.max == (16, 3, 1084, 1920)


def test_film_size_rounds_to_multiple_of_16_and_channels_follow_the_contract():
    [profile] = derive_profiles(DEFAULT, parse_shape_ranges("2:8:8", "1080x1920"))
    rng = profile.tensor()
    assert rng.min == (2, 1, 1088, 1920)
    assert rng.opt == rng.max == (8, 1, 1088, 1920)


def test_default_sizes_span_a_quarter_to_the_full_render_size():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges())
    rng = profile.tensor()
    assert (rng.min, rng.opt, rng.max) == ((1, 3, 64, 64), (4, 3, 256, 256), (16, 3, 256, 256))
    odd = DEFAULT.replace(render_size=250)  # 250 is not a multiple of 16: the max rounds up to 256
    assert default_size_range(odd) == ((64, 64), (256, 256), (256, 256))


def test_fixed_contract_forces_its_render_size():
    [profile] = derive_profiles(FIXED, parse_shape_ranges("1:2:4"))
    assert profile.tensor().min == (1, 1, 256, 256) and profile.tensor().max == (4, 1, 256, 256)
    [same] = derive_profiles(FIXED, parse_shape_ranges("1:2:4", "256x256"))
    assert same == profile


def test_fixed_contract_rejects_other_sizes():
    with pytest.raises(ContractError, match="fixed 256x256") as err:
        derive_profiles(FIXED, parse_shape_ranges("1:2:4", "256x256:512x512:512x512"))
    assert "--size 256x256" in err.value.hint


def test_fixed_batch_of_the_model_is_used_or_enforced():
    shape = (1, 3, None, None)
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges(None), input_shape=shape)
    assert profile.tensor().min[0] == profile.tensor().max[0] == 1
    with pytest.raises(ContractError, match="fixed batch of 1") as err:
        derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16"), input_shape=shape)
    assert "--batch 1:1:1" in err.value.hint


def test_model_channels_must_match_the_contract():
    with pytest.raises(ContractError, match="1 channels"):
        derive_profiles(CYCLEGAN, parse_shape_ranges(), input_shape=("N", 1, "H", "W"))


def test_fixed_model_size_is_used_when_no_size_is_asked():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges("1:1:2"), input_shape=("N", 3, 96, 128))
    assert profile.tensor().min == (1, 3, 96, 128) and profile.tensor().max == (2, 3, 96, 128)
    with pytest.raises(ContractError, match="fixed height of 96"):
        derive_profiles(CYCLEGAN, parse_shape_ranges("1:1:2", "64x64:96x128:128x128"), ("N", 3, 96, 128))


def test_shape_inside_and_outside_the_profile():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16", "64x64:256x256:256x256"))
    check_shape_in_profile((16, 3, 64, 256), profile)
    with pytest.raises(InputError, match=r"batch 32 is outside 1\.\.16") as err:
        check_shape_in_profile((32, 3, 128, 128), profile)
    assert "colorrt build --batch" in err.value.hint
    with pytest.raises(InputError, match=r"size 512x128 is outside 64x64\.\.256x256"):
        check_shape_in_profile((2, 3, 512, 128), profile)
    with pytest.raises(InputError, match="3 channels"):
        check_shape_in_profile((2, 1, 128, 128), profile)
    with pytest.raises(InputError, match="4 dims"):
        check_shape_in_profile((3, 128, 128), profile)


def test_select_profile_picks_the_first_that_fits():
    small = Profile((TensorRange("x", (1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 128, 128)),))
    large = Profile((TensorRange("x", (1, 3, 128, 128), (1, 3, 512, 512), (2, 3, 512, 512)),))
    assert select_profile((2, 3, 96, 96), [small, large]) == 0
    assert select_profile((1, 3, 256, 512), [small, large]) == 1
    with pytest.raises(InputError, match="outside"):
        select_profile((8, 3, 512, 512), [small, large])


def test_profile_round_trips_through_json():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges())
    assert Profile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert "batch 1..16 (opt 4)" in profile.describe() and "64x64..256x256" in profile.describe()
