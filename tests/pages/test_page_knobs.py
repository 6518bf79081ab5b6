"""Issue 17 for pages: the runtime's render size and chroma strength reach the page pipeline, and a
model returning NaN stops a chapter without writing it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from skimage.color import rgb2lab

from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.errors import NonFiniteOutputError
from colorrt.io.images import encode_image, read_image, write_image
from colorrt.runtime import Runtime
from tests import synth_pages, zoo


class ShapeRecorder(OnnxRuntimeEngine):
    """The real ONNX Runtime engine, recording the shape of every batch it is given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.shapes: set[tuple[int, ...]] = set()

    def _infer_impl(self, batch):
        self.shapes.add(tuple(batch.shape[1:]))
        return super()._infer_impl(batch)


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return synth_pages.make_page(5, (320, 230), "grid").image


def _chroma(image: np.ndarray) -> float:
    return float(np.hypot(*np.moveaxis(rgb2lab(image[..., :3])[..., 1:], -1, 0)).mean())


def test_strength_scales_page_chroma(model_path: Path, page, tmp_path) -> None:
    src = write_image(tmp_path / "in" / "p1.png", page)
    chroma = []
    for strength in (0.0, 1.0, 2.0):
        with Runtime(model_path, threads=2, strength=strength) as rt:
            rt.colorize_pages(src.parent, tmp_path / f"out{strength}", progress=False, force=True)
        out = read_image(tmp_path / f"out{strength}" / "p1.png")
        if strength == 0.0:
            assert np.ptp(out.astype(int), axis=2).max() <= 1  # grey
        chroma.append(_chroma(out))
    assert chroma[1] > 1 and chroma[2] > 1.4 * chroma[1]


def test_render_size_sets_the_panel_canvas(tmp_path, page) -> None:
    engine = ShapeRecorder(zoo.ab_model(tmp_path / "ab.onnx"))  # any multiple of 4, 64 by default
    with Runtime(engine, render_size=96) as rt:
        report = rt.colorize_pages(write_image(tmp_path / "p.png", page), tmp_path / "o.png", progress=False)
    assert report.colorized == ["p.png"]
    assert engine.shapes == {(1, 96, 96)}


def test_nan_model_stops_a_chapter_and_writes_no_archive(tmp_path, page) -> None:
    src = tmp_path / "chapter.cbz"
    with zipfile.ZipFile(src, "w") as archive:
        for i in range(3):
            archive.writestr(f"p{i}.png", encode_image(page, "p.png"))
    with Runtime(zoo.dividing_model(tmp_path / "nan.onnx"), batch_size=2) as rt:
        with pytest.raises(NonFiniteOutputError, match=r"nan\.onnx \(onnxruntime\)"):
            rt.colorize_pages(src, tmp_path / "out.cbz", progress=False)
    assert not (tmp_path / "out.cbz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.cbz")]  # no temporary left
