"""Reference palettes: statistics per lightness band, JSON files, and the chroma transfer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.color import lab2rgb

from colorrt.errors import InputError
from colorrt.pages.palette import ChromaMap, Palette, load_reference
from tests import synth_pages


def _two_tone_lab() -> np.ndarray:
    """Lab image: left half L=30 (a, b around 20, 10), right half L=70 (around -10, -30), noisy."""
    rng = np.random.default_rng(0)
    lab = np.zeros((40, 80, 3))
    lab[:, :40] = (30, 20, 10)
    lab[:, 40:] = (70, -10, -30)
    lab[..., 1:] += rng.normal(0, 3, (40, 80, 2))
    return lab


def test_bands_recover_the_tones_and_their_colours() -> None:
    palette = Palette.from_lab(_two_tone_lab(), bands=4)
    assert palette.centers.tolist() == pytest.approx([30, 70])
    assert palette.mean.tolist() == [pytest.approx([20, 10], abs=0.5), pytest.approx([-10, -30], abs=0.5)]
    assert palette.std.tolist() == [pytest.approx([3, 3], abs=0.5)] * 2
    assert palette.weight.sum() == pytest.approx(1.0)


def test_palette_of_the_character_reference_holds_its_true_colours() -> None:
    palette = Palette.from_image(synth_pages.character_reference(192))
    for part, (L, a, b) in synth_pages.CHARACTER_LAB.items():
        k = int(np.argmin(np.abs(palette.centers - L)))
        assert abs(palette.centers[k] - L) < 1.5, part
        assert palette.mean[k].tolist() == [pytest.approx(a, abs=2), pytest.approx(b, abs=2)], part


def test_transfer_moves_each_band_to_the_reference_statistics() -> None:
    palette = Palette.from_lab(_two_tone_lab(), bands=4)
    rng = np.random.default_rng(1)
    lightness = np.where(np.arange(60)[None, :] < 30, 30.0, 70.0) * np.ones((50, 1))
    ab = np.stack([np.full((50, 60), 5.0), np.full((50, 60), 40.0)]) + rng.normal(0, 8, (2, 50, 60))
    out = palette.transfer(ab, lightness)
    for L, mean in ((30, (20, 10)), (70, (-10, -30))):
        region = out[:, lightness == L]
        assert region.mean(axis=1).tolist() == pytest.approx(mean, abs=0.3)
        assert region.std(axis=1).tolist() == pytest.approx([3, 3], abs=0.5)


def test_transfer_strength_and_lightness_far_from_every_band() -> None:
    palette = Palette.from_lab(_two_tone_lab(), bands=4)
    lightness = np.full((10, 10), 30.0)
    lightness[:, 5:] = 50.0  # 20 L from both bands: the model's colour is (almost) kept
    ab = np.stack([np.full((10, 10), 5.0), np.full((10, 10), 40.0)])
    assert np.allclose(palette.transfer(ab, lightness, strength=0.0), ab)
    out = palette.transfer(ab, lightness)
    assert np.allclose(out[:, :, 5:], ab[:, :, 5:], atol=0.3)  # membership exp(-0.5 (20/6)^2) = 0.4%
    assert np.allclose(out[:, :, :5].mean(axis=(1, 2)), (20, 10), atol=0.2)


def test_valid_weights_leave_padding_out_of_the_statistics() -> None:
    palette = Palette.from_lab(_two_tone_lab(), bands=4)
    lightness = np.full((10, 20), 30.0)
    ab = np.zeros((2, 10, 20))
    ab[:, :, 10:] = 60.0  # "padding" with a wild colour
    valid = np.zeros((10, 20))
    valid[:, :10] = 1.0
    out = palette.transfer(ab, lightness, valid)
    assert out[:, :, :10].mean(axis=(1, 2)).tolist() == pytest.approx(palette.mean[0].tolist(), abs=0.05)


def test_a_map_fitted_at_render_size_applies_at_full_resolution() -> None:
    palette = Palette.from_lab(_two_tone_lab(), bands=4)
    small_L = np.repeat([[30.0, 70.0]], 8, axis=0).repeat(4, axis=1)
    small_ab = np.random.default_rng(2).normal(0, 10, (2, 8, 8))
    chroma_map = palette.fit(small_ab, small_L)
    assert np.allclose(chroma_map.apply(small_ab, small_L), palette.transfer(small_ab, small_L))
    big_L, big_ab = small_L.repeat(3, 0).repeat(3, 1), small_ab.repeat(3, 1).repeat(3, 2)
    assert np.allclose(chroma_map.apply(big_ab, big_L)[:, ::3, ::3], palette.transfer(small_ab, small_L))
    identity = ChromaMap.identity()
    assert np.allclose(identity.apply(small_ab, small_L), small_ab)


def test_json_round_trip_and_load_reference(tmp_path) -> None:
    palette = Palette.from_image(synth_pages.character_reference(128))
    path = palette.save(tmp_path / "palette.json")
    again = load_reference(path)
    assert np.allclose(again.centers, palette.centers) and np.allclose(again.mean, palette.mean)
    assert np.allclose(again.std, palette.std) and again.softness == palette.softness
    from colorrt.io.images import write_image

    write_image(tmp_path / "ref.png", synth_pages.character_reference(128))
    from_file = load_reference(tmp_path / "ref.png")
    assert np.allclose(from_file.mean, palette.mean, atol=0.05)


@pytest.mark.parametrize(
    "content",
    ['{"format": "something-else"}', '{"format": "colorrt.palette", "bands": [{"L": "x"}]}', "not json"],
)
def test_malformed_palettes_raise_input_error(tmp_path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError):
        load_reference(path)
    with pytest.raises(InputError, match="no such palette"):
        load_reference(tmp_path / "missing.json")


def test_a_white_reference_is_refused() -> None:
    with pytest.raises(InputError, match="needs some colour"):
        Palette.from_image(np.full((20, 20, 3), 255, np.uint8))


def test_hints_sit_on_a_grid_with_band_colours() -> None:
    palette = Palette.from_lab(_two_tone_lab(), bands=4)
    lightness = np.full((64, 64), 70.0)
    hints = palette.hints(lightness, np.ones((64, 64)), spacing=16)
    assert hints.shape == (64, 64, 3)
    assert hints[..., 2].sum() == 16
    on = hints[..., 2] == 1
    assert np.allclose(hints[on, :2], palette.mean[1])
    # And their colour is what the reference shows (checked through skimage's conversion).
    rgb = lab2rgb(np.array([[[70.0, *palette.mean[1]]]]))[0, 0]
    assert rgb[2] > rgb[0]  # (-10, -30) is a blue


def test_palette_json_is_plain() -> None:
    data = json.loads(json.dumps(Palette.from_lab(_two_tone_lab(), 4).to_dict()))
    assert data["format"] == "colorrt.palette" and len(data["bands"]) == 2
    assert set(data["bands"][0]) == {"L", "a", "b", "std_a", "std_b", "weight"}
