"""How far a reference pulls a page's colours: ``reference_strength`` (0 = no reference, 1 = full pull),
and a default that helps with a matching reference without letting a mismatched one overpower the
model (CIEDE2000 against the synthetic character's true colours; see docs/pages.md)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image
from scipy import ndimage
from skimage.color import deltaE_ciede2000, rgb2lab

from colorrt.cli import EXIT_ERROR, main
from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.errors import InputError
from colorrt.io.images import read_image
from colorrt.pages import colorize_pages
from colorrt.pages.colorize import PageColorizer, PageOptions
from colorrt.pages.palette import DEFAULT_REFERENCE_STRENGTH, Palette
from tests import synth_pages, zoo


def _delta_e(image: np.ndarray, page: synth_pages.SyntheticPage) -> float:
    """Mean CIEDE2000 of the character's fills (eroded: no anti-aliased edges) against its true Lab."""
    lab, errors = rgb2lab(image), []
    for part, fill in page.character.items():
        inner = ndimage.binary_erosion(fill)
        errors.append(deltaE_ciede2000(lab[inner], np.array(synth_pages.CHARACTER_LAB[part])[None]))
    return float(np.concatenate(errors).mean())


def _mean_delta_e(engine, pages, options: PageOptions) -> float:
    colorizer = PageColorizer(engine, 8, options)
    results = [r for _, r in colorizer.stream(enumerate(p.image for p in pages))]
    return float(np.mean([_delta_e(r.image, p) for r, p in zip(results, pages, strict=True)]))


@pytest.fixture(scope="module")
def pages() -> list[synth_pages.SyntheticPage]:
    return synth_pages.make_chapter(4, seed=3, size=(320, 240))


def test_the_default_helps_with_a_matching_reference_and_does_not_overpower_with_another(
    engine, pages
) -> None:
    astronaut = Palette.from_image(skimage.data.astronaut()[::2, ::2])  # nothing like the character
    sheet = Palette.from_image(synth_pages.character_reference(128))  # the character's own colours
    alone = _mean_delta_e(engine, pages, PageOptions())
    mismatched = _mean_delta_e(engine, pages, PageOptions(palette=astronaut))  # the default strength
    mismatched_full = _mean_delta_e(engine, pages, PageOptions(palette=astronaut, reference_strength=1.0))
    matching = _mean_delta_e(engine, pages, PageOptions(palette=sheet))
    print(f"ΔE00: alone {alone:.2f}, astronaut {mismatched:.2f} (at 1: {mismatched_full:.2f})")
    print(f"ΔE00: character sheet {matching:.2f}")
    assert 0.0 < DEFAULT_REFERENCE_STRENGTH < 1.0
    assert mismatched < mismatched_full - 3.0
    assert mismatched - alone < 0.6 * (mismatched_full - alone)  # at most about half the full pull's harm
    assert matching < alone - 5.0  # a matching reference still helps clearly


def test_strength_zero_is_no_reference(engine, pages) -> None:
    palette = Palette.from_image(skimage.data.astronaut()[::2, ::2])
    page = pages[0].image
    plain = PageColorizer(engine).colorize(page).image
    zero = PageColorizer(engine, options=PageOptions(palette=palette, reference_strength=0.0)).colorize(page)
    assert np.array_equal(zero.image, plain)


def test_strength_zero_gives_a_hint_model_no_hints(tmp_path) -> None:
    engine = OnnxRuntimeEngine(zoo.hints_model(tmp_path / "hints.onnx"))
    page = synth_pages.make_page(4, (300, 220), character_panels=3).image
    palette = Palette.from_image(synth_pages.character_reference(128))
    plain = PageColorizer(engine).colorize(page).image
    zero = PageColorizer(engine, options=PageOptions(palette=palette, reference_strength=0.0))
    assert np.array_equal(zero.colorize(page).image, plain)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_a_strength_outside_0_to_1_is_refused(strength) -> None:
    with pytest.raises(InputError, match=r"reference strength must be in 0\.\.1") as caught:
        PageOptions(reference_strength=strength)
    assert "0 ignores the reference" in str(caught.value)


def test_runtime_and_colorize_pages_take_the_strength(runtime, pages, tmp_path) -> None:
    src = tmp_path / "pages"
    src.mkdir()
    Image.fromarray(pages[1].image).save(src / "p.png")
    reference = skimage.data.astronaut()[::2, ::2]
    runtime.colorize_pages(src, tmp_path / "plain", progress=False)
    runtime.colorize_pages(
        src, tmp_path / "zero", reference=reference, reference_strength=0.0, progress=False
    )
    runtime.colorize_pages(src, tmp_path / "default", reference=reference, progress=False)
    plain, zero, default = (read_image(tmp_path / name / "p.png") for name in ("plain", "zero", "default"))
    assert np.array_equal(zero, plain)
    assert not np.array_equal(default, plain)
    with pytest.raises(InputError, match="reference strength"):
        colorize_pages(runtime, src, tmp_path / "bad", reference=reference, reference_strength=2.0)
    assert not (tmp_path / "bad").exists()


def test_cli_reference_strength(tmp_path, model_path, pages, capsys) -> None:
    src, reference = tmp_path / "pages", tmp_path / "astronaut.png"
    src.mkdir()
    Image.fromarray(pages[2].image).save(src / "p.png")
    Image.fromarray(skimage.data.astronaut()[::2, ::2]).save(reference)
    common = ["colorize", str(src), "--pages", "--model", str(model_path), "--quiet"]
    assert main([*common, "-o", str(tmp_path / "plain")]) == 0
    assert (
        main(
            [
                *common,
                "-o",
                str(tmp_path / "zero"),
                "--reference",
                str(reference),
                "--reference-strength",
                "0",
            ]
        )
        == 0
    )
    assert np.array_equal(read_image(tmp_path / "zero" / "p.png"), read_image(tmp_path / "plain" / "p.png"))
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "a"), "--reference-strength", "0.5"]) == EXIT_ERROR
    assert "--reference-strength needs --reference" in capsys.readouterr().err
    bad = ["--reference", str(reference), "--reference-strength", "1.5"]
    assert main([*common, "-o", str(tmp_path / "b"), *bad]) == EXIT_ERROR
    assert "reference strength must be in 0..1, got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
