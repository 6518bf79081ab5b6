"""Issue 17 in the runtime: render size, chroma strength, side by side, non-finite model output, and
folder runs that resume, report skipped files by name and honour an output format."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skimage.color import rgb2lab

from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.errors import InputError, NonFiniteOutputError
from colorrt.io.images import read_image, write_image
from colorrt.runtime import Runtime
from tests import zoo

RNG = np.random.default_rng(17)


class ShapeRecorder(OnnxRuntimeEngine):
    """The real ONNX Runtime engine, recording the shape of every batch it is given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.shapes: list[tuple[int, ...]] = []

    def _infer_impl(self, batch):
        self.shapes.append(tuple(batch.shape))
        return super()._infer_impl(batch)


def _grey(height: int = 48, width: int = 80) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (40 + 170 * (x / width) * (0.5 + 0.5 * np.sin(y / 5))).astype(np.uint8)


def _chroma(image: np.ndarray) -> float:
    return float(np.hypot(*np.moveaxis(rgb2lab(image[..., :3])[..., 1:], -1, 0)).mean())


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    return zoo.dividing_model(tmp_path_factory.mktemp("nan") / "divides_by_zero.onnx")


# ------------------------------------------------------------------------------------------- render size


def test_render_size_is_the_longest_side_the_model_sees(zoo_models) -> None:
    engine = ShapeRecorder(zoo_models["ab"])  # contract: any multiple of 4, longest side 64
    with Runtime(engine, render_size=128) as rt:
        assert rt.render_size == 128 and rt.contract.render_size == 128
        rt.colorize(_grey(48, 80))
        list(rt.stream([_grey(48, 80)] * 2, temporal=0.0))
    assert engine.shapes == [(1, 1, 76, 128), (2, 1, 76, 128)]  # image, then the film frames


def test_render_size_rounds_to_the_multiple_with_a_warning(zoo_models) -> None:
    with pytest.warns(UserWarning, match="render size 102 rounded to 104"):
        rt = Runtime(zoo_models["ab"], render_size=102)
    assert rt.render_size == 104
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Runtime(zoo_models["ab"], render_size=96).render_size == 96
        assert Runtime(zoo_models["ab"]).render_size == 64  # the contract's by default


@pytest.mark.parametrize("size", [0, 2, 5000, 64.0, True])
def test_render_size_out_of_range_or_not_whole_is_refused(zoo_models, size) -> None:
    with pytest.raises(InputError, match="render"):
        Runtime(zoo_models["ab"], render_size=size)


def test_fixed_size_contract_refuses_another_render_size(zoo_models) -> None:
    with pytest.raises(InputError, match="fixed 32x32") as caught:
        Runtime(zoo_models["bins"], render_size=64)
    assert "leave --render-size out" in caught.value.hint
    assert Runtime(zoo_models["bins"], render_size=32).render_size == 32


# ---------------------------------------------------------------------------------------------- strength


def test_strength_zero_is_grey_and_two_is_stronger(zoo_models) -> None:
    grey = _grey()
    with Runtime(zoo_models["ab"]) as plain, Runtime(zoo_models["ab"], strength=0.0) as none:
        with Runtime(zoo_models["ab"], strength=2.0) as strong:
            outputs = [rt.colorize(grey) for rt in (none, plain, strong)]
            film = [next(iter(rt.stream([grey], temporal=0.0))) for rt in (none, plain, strong)]
    for images in (outputs, film):
        assert np.ptp(images[0].astype(int), axis=2).max() <= 1  # neutral
        assert _chroma(images[1]) > 2 and _chroma(images[2]) > 1.5 * _chroma(images[1])
    assert np.array_equal(outputs[1], film[1])  # images and films share the strength


@pytest.mark.parametrize("strength", [-0.5, 2.5, float("nan")])
def test_strength_outside_0_to_2_is_refused(zoo_models, strength) -> None:
    with pytest.raises(InputError, match="strength must be a number from 0 to 2"):
        Runtime(zoo_models["ab"], strength=strength)


# ------------------------------------------------------------------------------------------ side by side


def test_side_by_side_image_and_frames(zoo_models, tmp_path) -> None:
    grey = _grey()
    src = write_image(tmp_path / "in.png", grey)
    with Runtime(zoo_models["ab"]) as rt:
        rt.colorize_file(src, tmp_path / "pair.png", side_by_side=True)
        single = rt.colorize(grey)
        (frame,) = list(rt.stream([grey], temporal=0.0, side_by_side=True))
    pair = read_image(tmp_path / "pair.png")
    assert pair.shape == (48, 160, 3) and frame.shape == (48, 160, 3)
    assert np.array_equal(pair[:, 80:], single) and np.array_equal(frame[:, 80:], single)
    assert np.abs(pair[:, :80].astype(int) - grey[:, :, None]).max() <= 1  # the grey input, left
    assert np.array_equal(frame[:, :80], pair[:, :80])


# -------------------------------------------------------------------------------------- non-finite output


def test_nan_model_output_is_an_error_and_nothing_is_written(nan_model, tmp_path) -> None:
    src = write_image(tmp_path / "in.png", _grey())
    with Runtime(nan_model) as rt:
        with pytest.raises(NonFiniteOutputError, match=r"divides_by_zero\.onnx \(onnxruntime\)") as caught:
            rt.colorize_file(src, tmp_path / "out.png")
        assert "FP32" in caught.value.hint
        assert not (tmp_path / "out.png").exists()
        with pytest.raises(NonFiniteOutputError):
            list(rt.stream([_grey()] * 3, temporal=0.0))


def test_nan_model_stops_a_folder_run(nan_model, tmp_path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "in" / name, _grey())
    with Runtime(nan_model, batch_size=1) as rt, pytest.raises(NonFiniteOutputError):
        rt.colorize_folder(tmp_path / "in", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_large_finite_outputs_pass(tmp_path) -> None:
    huge = zoo.dividing_model(tmp_path / "huge.onnx", divisor=1e-3)  # ab near 1e5: absurd but finite
    with Runtime(huge) as rt:
        assert rt.colorize(_grey()).shape == (48, 80, 3)


# ------------------------------------------------------------------------------------------ folder runs


def _folder(root, names=("a.png", "sub/b.png")):
    for name in names:
        write_image(root / name, _grey(24, 32))
    return root


def test_folder_resume_keeps_outputs_already_there(runtime_ab, tmp_path) -> None:
    src = _folder(tmp_path / "in")
    dst = tmp_path / "out"
    write_image(dst / "a.png", np.zeros((5, 5, 3), np.uint8))  # a finished output of an earlier run
    (dst / ".a.png.1234abcd.tmp").write_bytes(b"half")  # a temporary name: not an output
    report = runtime_ab.colorize_folder(src, dst, progress=False, resume=True)
    assert (report.done, report.kept, report.failed) == (1, 1, [])
    assert read_image(dst / "a.png").shape == (5, 5, 3)  # kept
    assert "1 already done, kept (--resume)" in report.summary(dst)
    report = runtime_ab.colorize_folder(src, dst, progress=False)  # without resume: overwritten
    assert (report.done, report.kept) == (2, 0)
    assert read_image(dst / "a.png").shape == (24, 32, 3)


def test_folder_reports_videos_and_other_files_by_name(runtime_ab, tmp_path) -> None:
    src = _folder(tmp_path / "in")
    (src / "clip.mp4").write_bytes(b"\x00" * 16)
    (src / "sub" / "notes.txt").write_text("hello")
    (src / ".hidden.mov").write_bytes(b"x")  # hidden files stay out of sight, as before
    report = runtime_ab.colorize_folder(src, tmp_path / "out", progress=False)
    assert report.done == 2 and report.ok
    assert [(p.relative_to(src).as_posix(), why.split(":")[0]) for p, why in report.skipped] == [
        ("clip.mp4", "a video"),
        ("sub/notes.txt", "not an image file"),
    ]
    assert "2 other file(s) skipped" in report.summary(tmp_path / "out")


def test_folder_side_by_side(runtime_ab, tmp_path) -> None:
    src = _folder(tmp_path / "in")
    report = runtime_ab.colorize_folder(src, tmp_path / "out", progress=False, side_by_side=True)
    assert report.done == 2
    assert read_image(tmp_path / "out" / "sub" / "b.png").shape == (24, 64, 3)


def test_folder_format_changes_every_output_suffix(runtime_ab, tmp_path) -> None:
    src = _folder(tmp_path / "in", ("a.jpg", "sub/b.png", "c.png", "c.tif"))
    report = runtime_ab.colorize_folder(src, tmp_path / "out", progress=False, format="webp")
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*"))
    assert written == ["a.webp", "c.webp", "sub/b.webp"]
    assert report.done == 3 and len(report.failed) == 1
    assert "also the output of" in report.failed[0][1]
    with pytest.raises(InputError, match="cannot write image format"):
        runtime_ab.colorize_folder(src, tmp_path / "x", progress=False, format="nope")


@pytest.fixture(scope="module")
def runtime_ab(zoo_models):
    with Runtime(zoo_models["ab"], batch_size=2) as rt:
        yield rt
