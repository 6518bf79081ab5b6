"""`colorrt colorize chapter.cbz -o out.cbz` runs the page pipeline end to end through the CLI."""

from __future__ import annotations

import zipfile

import numpy as np
from PIL import Image

from colorrt.cli import main
from colorrt.io.images import read_image
from colorrt.kernels.color import rgb_to_l
from tests import synth_pages


def _write_cbz(path, pages, extra_member=None):
    with zipfile.ZipFile(path, "w") as archive:
        for i, page in enumerate(pages):
            png = path.parent / f"p{i:02d}.png"
            Image.fromarray(page.image).save(png)
            archive.write(png, f"chapter/{i:02d}.png")
        if extra_member:
            archive.writestr(*extra_member)


def test_cbz_in_cbz_out_keeps_names_order_and_lightness(tmp_path, model_path, capsys):
    pages = synth_pages.make_chapter(2, seed=5, size=(320, 240))
    src, dst = tmp_path / "chapter.cbz", tmp_path / "chapter_color.cbz"
    _write_cbz(src, pages, extra_member=("ComicInfo.xml", "<ComicInfo/>"))
    before = src.read_bytes()
    assert main(["colorize", str(src), "-o", str(dst), "--model", str(model_path), "--quiet"]) == 0
    assert src.read_bytes() == before  # the input is never modified
    with zipfile.ZipFile(dst) as archive:
        names = archive.namelist()
        assert names == ["chapter/00.png", "chapter/01.png", "ComicInfo.xml"]
        archive.extractall(tmp_path / "out")
    for i, page in enumerate(pages):
        out = read_image(tmp_path / "out" / f"chapter/{i:02d}.png")
        assert out.shape[:2] == page.image.shape[:2]
        grey = page.image if page.image.ndim == 2 else page.image[..., 0]
        diff = rgb_to_l(out.astype(np.float32) / 255) - rgb_to_l(np.repeat(grey[..., None], 3, -1) / 255.0)
        assert 10 * np.log10(100**2 / np.mean(diff**2)) >= 40


def test_bad_page_is_reported_and_the_rest_complete(tmp_path, model_path, capsys):
    pages = synth_pages.make_chapter(2, seed=6, size=(320, 240))
    src, dst = tmp_path / "chapter.cbz", tmp_path / "out.cbz"
    _write_cbz(src, pages, extra_member=("chapter/99.png", b"this is not a png"))
    assert main(["colorize", str(src), "-o", str(dst), "--model", str(model_path), "--quiet"]) == 1
    assert "99.png" in capsys.readouterr().err
    with zipfile.ZipFile(dst) as archive:
        assert {"chapter/00.png", "chapter/01.png"} <= set(archive.namelist())
