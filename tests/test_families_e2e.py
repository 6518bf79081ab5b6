"""Each new family end to end: export -> ONNX (parity vs torch) -> `colorrt colorize` on an image, a
page folder and a short film, at small widths so the suite stays quick on a CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from colorrt.cli import main  # noqa: E402
from colorrt.engines.onnxruntime import OnnxRuntimeEngine  # noqa: E402
from colorrt.engines.torch import TorchEngine  # noqa: E402
from colorrt.export import export  # noqa: E402
from colorrt.kernels import luminance  # noqa: E402
from colorrt.kernels.extras import model_feed, reference_palette  # noqa: E402
from tests import synth_pages, synth_video  # noqa: E402

FAMILIES = {  # arch: (options, export size)
    "cyclegan-sketch": ({"ngf": 8, "n_blocks": 2}, 64),
    "chromagan": ({"width": 1 / 16}, None),
    "iizuka2016": ({"width": 1 / 16}, 64),
    "comicolorization": ({"width": 1 / 16, "sr_width": 1 / 8}, None),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ref") / "reference.png"
    Image.fromarray(synth_pages.character_reference(96)).save(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    image = folder / "photo.png"
    Image.fromarray(synth_pages.make_page(3, size=(120, 90)).image).convert("L").save(image)
    pages = folder / "chapter"
    pages.mkdir()
    for i, page in enumerate(synth_pages.make_chapter(2, seed=4, size=(260, 180))):
        Image.fromarray(page.image).save(pages / f"page{i}.png")
    film = folder / "film.mp4"
    synth_video.write_video(film, synth_video.scene_frames(4, (48, 64), seed=2), fps=8)
    return {"image": image, "pages": pages, "film": film}


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_family_exports_and_colorizes_images_pages_and_films(arch, inputs, reference, tmp_path):
    options, size = FAMILIES[arch]
    result = export(arch, random_init=True, output=tmp_path / f"{arch}.onnx", options=options, size=size)
    assert result.max_abs_error is not None and result.max_abs_error <= 1e-4
    _parity_on_a_real_feed(arch, result.path, options, inputs["image"], reference)
    extra = ["--reference", str(reference)] if arch == "comicolorization" else []
    model = ["--model", str(result.path), "--backend", "onnxruntime", "--threads", "1", "--quiet"]

    out = tmp_path / "photo.png"
    assert main(["colorize", str(inputs["image"]), "-o", str(out), *model, *extra]) == 0
    grey = np.asarray(Image.open(inputs["image"]))
    assert np.asarray(Image.open(out)).shape == (*grey.shape, 3)

    pages = tmp_path / "pages"
    assert main(["colorize", str(inputs["pages"]), "-o", str(pages), "--pages", *model, *extra]) == 0
    assert sorted(p.name for p in pages.iterdir()) == ["page0.png", "page1.png"]

    film = tmp_path / "film.mkv"
    assert main(["colorize", str(inputs["film"]), "-o", str(film), "--codec", "ffv1", *model, *extra]) == 0
    frames, _ = synth_video.read_frames(film)
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)


def _parity_on_a_real_feed(arch: str, path: Path, options: dict, image: Path, reference: Path) -> None:
    """The ONNX model and the torch definition (same seeded weights) agree on a real picture's feed."""
    onnx_engine = OnnxRuntimeEngine(path, threads=1)
    torch_engine = TorchEngine(arch, random_init=True, options=options, device="cpu")
    contract = onnx_engine.contract
    palette = reference_palette(np.asarray(Image.open(reference).convert("RGB")))
    feed = model_feed([luminance(np.asarray(Image.open(image)))], contract, palette=palette)
    got, expected = onnx_engine.infer(feed), torch_engine.infer(feed)
    assert got.shape == expected.shape
    assert float(np.max(np.abs(got - expected))) <= 1e-4


@pytest.fixture(scope="module")
def comico(tmp_path_factory) -> Path:
    """Comicolorization exported by the CLI from a folder in the official layout (two Chainer snapshots)."""
    from colorrt.models import build_model
    from tests.models.official_files import write_comicolorization_folder

    folder = tmp_path_factory.mktemp("comico")
    source = build_model(
        "comicolorization", random_init=True, seed=3, options=FAMILIES["comicolorization"][0]
    )
    official = write_comicolorization_folder(folder / "model", source)
    out = folder / "comicolorization.onnx"
    widths = ["--arch-option", "width=0.0625", "--arch-option", "sr_width=0.125"]
    args = ["export", "--arch", "comicolorization", "--weights", str(official), "-o", str(out), *widths]
    assert main(args) == 0
    return out


def test_info_shows_the_merge_the_extra_inputs_and_the_weights(comico, capsys):
    assert main(["info", str(comico)]) == 0
    out = capsys.readouterr().out
    assert "wholesale (the model's whole colour, upsampled); line art" in out
    assert "palette: the reference's binary RGB palette (6^3 = 216 values)" in out
    assert "lines: Otsu line drawing at 2x the render size" in out
    assert "comicolorization/550000.model:sha256:" in out and '"licence": "MIT"' in out


def test_comicolorization_refuses_to_run_without_a_reference(comico, inputs, tmp_path, capsys):
    code = main(["colorize", str(inputs["image"]), "-o", str(tmp_path / "o.png"), "--model", str(comico)])
    assert code == 2
    assert "takes a reference palette" in capsys.readouterr().err


def test_pages_report_how_the_reference_was_used(comico, inputs, reference, tmp_path, capsys):
    args = [
        "colorize",
        str(inputs["pages"]),
        "--pages",
        "--model",
        str(comico),
        "--reference",
        str(reference),
    ]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert "the reference went into the model as its colour palette" in capsys.readouterr().out
