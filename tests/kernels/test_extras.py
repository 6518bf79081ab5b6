"""Extra model inputs computed on the host: reference palette, Otsu line drawing, global copy, feed."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from colorrt.contract import PRESETS, iizuka_contract
from colorrt.errors import InputError
from colorrt.kernels import preprocess, resize_bilinear
from colorrt.kernels.extras import line_drawing, model_feed, otsu_threshold, reference_palette


def _official_palette(rgb: np.ndarray, bins: int = 6) -> np.ndarray:
    """Comicolorization's HistogramNetwork (multidimensional, threshold 0), restated on float32 0..255."""
    h = rgb.transpose(2, 0, 1).astype(np.float32)
    cells = (h / 255 * bins).astype(np.int32)
    cells = np.where(cells == bins, cells - 1, cells)
    index = cells[0] * bins * bins + cells[1] * bins + cells[2]
    counts = np.bincount(index.ravel(), minlength=bins**3) / (h.shape[1] * h.shape[2])
    return (counts > 0.0).astype(np.float32)


def test_reference_palette_matches_the_official_histogram():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    image[:5] = [255, 0, 42]  # bin edges: 255 in the last bin, 42 still in the first
    palette = reference_palette(image)
    assert palette.shape == (216,) and set(np.unique(palette)) <= {0.0, 1.0}
    np.testing.assert_array_equal(palette, _official_palette(image))
    single = reference_palette(np.full((4, 4, 3), [204, 51, 51], np.uint8))
    assert single.sum() == 1 and single[4 * 36 + 1 * 6 + 1] == 1  # 204 -> bin 4, 51 -> bin 1
    assert reference_palette(np.full((3, 3), 0.5, np.float32)).sum() == 1  # grey float image


def test_otsu_threshold_matches_scikit_image():
    rng = np.random.default_rng(2)
    for _ in range(5):
        values = (
            np.concatenate([rng.normal(20, 5, 300), rng.normal(85, 8, 700)]).clip(0, 100).astype(np.uint8)
        )
        assert otsu_threshold(values) == threshold_otsu(values)
    assert otsu_threshold(np.full(10, 7, np.uint8)) == 7
    lines = line_drawing(np.where(np.arange(100)[None] % 10 == 0, 10.0, 97.0).repeat(4, 0))
    assert lines.dtype == np.float32 and lines[:, 0].max() == 0 and lines[:, 1].min() == 1


def test_model_feed_holds_each_extra_input():
    L = np.random.default_rng(3).uniform(0, 100, (96, 128)).astype(np.float32)
    iizuka = iizuka_contract(0.45)
    feed = model_feed([L, L], iizuka)
    assert set(feed) == {"local", "global"}
    assert feed["local"].shape == (2, 1, 168, 224) and feed["global"].shape == (2, 1, 224, 224)
    np.testing.assert_allclose(feed["global"], resize_bilinear(feed["local"], (224, 224)), atol=1e-6)
    assert model_feed([L], PRESETS["colorrt-default"]).shape == (1, 1, 192, 256)  # no extras: an array

    comico = PRESETS["comicolorization"]
    palette = reference_palette(np.full((4, 4, 3), 200, np.uint8))
    feed = model_feed([L], comico, palette=palette)
    assert feed["input"].shape == (1, 3, 224, 224) and feed["palette"].shape == (1, 216)
    assert feed["lines"].shape == (1, 1, 448, 448) and set(np.unique(feed["lines"])) <= {0.0, 1.0}
    assert set(np.unique(feed["input"][:, 0])) <= {0.0, 1.0}  # binarised panel, L / 100
    assert not feed["input"][:, 1:].any()  # no colour dots
    with pytest.raises(InputError, match="takes a reference palette"):
        model_feed([L], comico)
    with pytest.raises(InputError, match="216"):
        model_feed([L], comico, palette=np.ones(10))


def test_nhwc_and_tiled_inputs():
    L = np.linspace(0, 100, 224 * 224, dtype=np.float32).reshape(224, 224)
    batch = preprocess([L], PRESETS["chromagan"])
    assert batch.shape == (1, 224, 224, 3)
    np.testing.assert_allclose(batch[0, :, :, 0], L / 100, atol=1e-5)
    assert (batch[..., 0] == batch[..., 2]).all()
