"""Calibration sets: the runtime's preprocessing, bounds, seeds, videos sampled across the clip, bad input."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from colorrt.calibration import CalibrationSet, load_calibration_set, synthetic_set
from colorrt.calibration.dataset import CalibrationWarning
from colorrt.errors import InputError
from colorrt.io.images import read_image
from colorrt.kernels import pipeline
from tests.calibration import helpers

CONTRACT = helpers.RGB_CONTRACT


def test_folder_samples_are_the_runtime_preprocessing(assets):
    pictures = assets["pictures"]
    calib = load_calibration_set(pictures, CONTRACT, max_samples=6)
    assert calib.kind == "images" and len(calib) == 6
    for sample in calib.samples:
        lightness = pipeline.luminance(read_image(pictures / sample.source))
        expected = pipeline.preprocess([lightness], CONTRACT)
        assert sample.input.dtype == np.float32 and sample.input.shape == expected.shape
        np.testing.assert_array_equal(sample.input, expected)
        np.testing.assert_array_equal(sample.luminance, lightness)  # 48x64: kept at full size
    assert any(s.source.startswith("sub/") for s in load_calibration_set(pictures, CONTRACT).samples)


def test_sets_are_bounded_seeded_and_reproducible(assets):
    first = load_calibration_set(assets["pictures"], CONTRACT, max_samples=5, seed=3)
    again = load_calibration_set(assets["pictures"], CONTRACT, max_samples=5, seed=3)
    other = load_calibration_set(assets["pictures"], CONTRACT, max_samples=5, seed=4)
    assert len(first) == 5
    assert [s.source for s in first.samples] == [s.source for s in again.samples]
    assert first.fingerprint() == again.fingerprint()
    assert [s.source for s in first.samples] != [s.source for s in other.samples]
    assert first.fingerprint() != other.fingerprint()
    assert len(load_calibration_set(assets["pictures"], CONTRACT, max_samples=100)) == 14


def test_unreadable_files_are_skipped_and_listed(assets, tmp_path):
    folder = shutil.copytree(assets["pictures"], tmp_path / "pictures")
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "cut.jpg").write_bytes((folder / "sub" / "pic01.jpg").read_bytes()[:200])
    with pytest.warns(CalibrationWarning, match="unreadable"):
        calib = load_calibration_set(folder, CONTRACT, max_samples=100)
    assert len(calib) == 14
    assert sorted(s.split(":")[0] for s in calib.skipped) == ["broken.png", "cut.jpg"]


def test_too_few_or_no_pictures_is_a_clear_error(assets, tmp_path):
    with pytest.raises(InputError, match=r"found 14 readable images.*at least 20"):
        load_calibration_set(assets["pictures"], CONTRACT, min_samples=20)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    with pytest.raises(InputError, match="holds no images"):
        load_calibration_set(empty, CONTRACT)
    junk = tmp_path / "junk"
    junk.mkdir()
    for index in range(5):
        (junk / f"{index}.png").write_bytes(b"junk")
    with (
        pytest.warns(CalibrationWarning),
        pytest.raises(InputError, match=r"found 0 readable images \(5 unreadable"),
    ):
        load_calibration_set(junk, CONTRACT)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "no such calibration source"),
        ("one.png", "single image"),
        ("data.csv", "not a calibration source"),
    ],
)
def test_sources_colorrt_cannot_use(tmp_path, name, message):
    path = tmp_path / name
    if name != "missing":
        path.write_bytes(b"x")
    with pytest.raises(InputError, match=message):
        load_calibration_set(path, CONTRACT)


def test_cbz_pages(assets, tmp_path):
    book = tmp_path / "book.cbz"
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("ComicInfo.xml", "<ComicInfo/>")
        for picture in sorted(assets["pictures"].glob("*.png"))[:6]:
            archive.write(picture, f"pages/{picture.name}")
    calib = load_calibration_set(book, CONTRACT, max_samples=4)
    assert calib.kind == "pages" and len(calib) == 4
    for sample in calib.samples:
        assert sample.source.startswith("book.cbz:pages/")
        page = read_image(assets["pictures"] / sample.source.rsplit("/", 1)[1])
        np.testing.assert_array_equal(sample.input, pipeline.preprocess([pipeline.luminance(page)], CONTRACT))


def test_video_frames_come_from_every_part_of_the_clip(assets):
    frames, fps, count = 60, 10, 6
    duration = frames / fps
    calib = load_calibration_set(assets["video"], CONTRACT, max_samples=count, seed=1)
    assert calib.kind == "video" and len(calib) == count
    times = [float(re.search(r"@([0-9.]+)s$", s.source).group(1)) for s in calib.samples]
    for index, seconds in enumerate(times):  # one frame in each equal slice of the clip
        assert index * duration / count - 1 / fps <= seconds < (index + 1) * duration / count + 1 / fps
    # the pictures really are those frames: frame i has grey level 40 + i * 160 / frames
    for sample, seconds in zip(calib.samples, times, strict=True):
        grey = (sample.input.mean() + 1) / 2 * 255
        assert grey == pytest.approx(helpers.frame_level(round(seconds * fps), frames), abs=6)
    other = load_calibration_set(assets["video"], CONTRACT, max_samples=count, seed=2)
    assert [s.source for s in other.samples] != [s.source for s in calib.samples]


def test_video_that_cannot_be_decoded(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="broken.mp4"):
        load_calibration_set(broken, CONTRACT)


def test_split_holds_out_disjoint_seeded_samples(assets):
    calib = load_calibration_set(assets["pictures"], CONTRACT, max_samples=12)
    kept, held = calib.split(4, seed=0)
    assert len(kept) == 8 and len(held) == 4
    assert not {s.source for s in kept.samples} & {s.source for s in held.samples}
    assert [s.source for s in calib.split(4, seed=0)[1].samples] == [s.source for s in held.samples]
    with pytest.raises(InputError):
        calib.split(12)


def test_synthetic_set_is_deterministic():
    first, second = synthetic_set(CONTRACT, 4, seed=5), synthetic_set(CONTRACT, 4, seed=5)
    assert isinstance(first, CalibrationSet) and first.kind == "synthetic" and len(first) == 4
    assert first.fingerprint() == second.fingerprint() != synthetic_set(CONTRACT, 4, seed=6).fingerprint()
    assert {s.input.shape for s in first.samples} == {(1, 3, 64, 64), (1, 3, 48, 64)}
    spread = [float(s.luminance.std()) for s in first.samples]
    assert min(spread) > 3  # real structure, not flat grey


def test_large_pictures_keep_a_bounded_lightness_for_the_report(tmp_path):
    from PIL import Image

    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(helpers.smooth_picture(rng, 600, 1200)).save(folder / f"{index}.png")
    calib = load_calibration_set(folder, CONTRACT)
    assert {s.luminance.shape for s in calib.samples} == {(256, 512)}
    assert {s.input.shape for s in calib.samples} == {
        (1, 3, 32, 64)
    }  # contract: longest side 64, multiple of 4


def test_sources_are_labelled_relative(assets):
    calib = load_calibration_set(assets["pictures"], CONTRACT, max_samples=3)
    assert all(not Path(s.source).is_absolute() for s in calib.samples)
