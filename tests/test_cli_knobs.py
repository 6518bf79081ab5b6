"""`colorrt colorize` flags of issue 17: --render-size, --strength, --side-by-side, --resume and --format
for folders, skipped files by name, a model returning NaN (exit 2, nothing written), --temporal's default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colorrt.cli import build_parser, main
from colorrt.io.images import read_image, write_image
from colorrt.runtime import DEFAULT_TEMPORAL
from tests import synth_video, zoo


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-knobs")
    return {
        "ab": zoo.ab_model(d / "ab.onnx"),
        "bins": zoo.bins_model(d / "bins.onnx"),
        "nan": zoo.dividing_model(d / "divides_by_zero.onnx"),
    }


def _photo(path, shape=(40, 52)):
    rng = np.random.default_rng(4)
    return write_image(path, rng.integers(30, 220, shape, dtype=np.uint8))


def _error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert "colorrt: error: " in err and "Traceback" not in err
    return err


def test_side_by_side_strength_and_render_size_on_an_image(models, tmp_path):
    src, out = _photo(tmp_path / "p.png"), tmp_path / "pair.png"
    argv = ["colorize", str(src), "-o", str(out), "--model", str(models["ab"]), "-q"]
    assert main([*argv, "--side-by-side", "--render-size", "32", "--strength", "1.5"]) == 0
    pair = read_image(out)
    assert pair.shape == (40, 104, 3)
    assert np.abs(pair[:, :52].astype(int) - read_image(src)[:, :, None]).max() <= 1  # grey input left
    assert main([*argv, "--strength", "0"]) == 0
    assert np.ptp(read_image(out).astype(int), axis=2).max() <= 1  # strength 0: grey


@pytest.mark.parametrize(
    ("model", "flags", "expected"),
    [
        ("ab", ["--strength", "2.5"], "strength must be a number from 0 to 2"),
        ("bins", ["--render-size", "64"], "contract 'zoo-bins' runs the model at a fixed 32x32"),
        ("ab", ["--format", "png"], "for one file, -o decides"),
    ],
)
def test_bad_knobs_are_one_clear_error(models, tmp_path, capsys, model, flags, expected):
    src, out = _photo(tmp_path / "p.png"), tmp_path / "o.jpg"
    assert main(["colorize", str(src), "-o", str(out), "--model", str(models[model]), *flags]) == 2
    assert expected in _error_of(capsys)
    assert not out.exists()


def test_nan_model_exits_2_and_writes_nothing(models, tmp_path, capsys):
    src = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    assert main(["colorize", str(src), "-o", str(out), "--model", str(models["nan"])]) == 2
    error = _error_of(capsys)
    assert "divides_by_zero.onnx (onnxruntime) returned NaN or infinite values" in error
    assert "FP32" in error
    assert not out.exists()


def test_nan_model_stops_a_film_without_a_final_or_partial_file(models, tmp_path, capsys):
    src = tmp_path / "film.mp4"
    synth_video.write_video(src, synth_video.scene_frames(8, (32, 48), seed=2), fps=8, audio=None)
    out = tmp_path / "out.mkv"
    argv = ["colorize", str(src), "-o", str(out), "--model", str(models["nan"]), "--codec", "ffv1", "-q"]
    assert main(argv) == 2
    assert "returned NaN or infinite values" in _error_of(capsys)
    assert not out.exists() and not (tmp_path / "out.partial.mkv").exists()


def test_side_by_side_film_is_twice_as_wide(models, tmp_path):
    src = tmp_path / "film.mp4"
    synth_video.write_video(src, synth_video.scene_frames(6, (32, 48), seed=3), fps=6, audio=None)
    out = tmp_path / "pair.mkv"
    argv = ["colorize", str(src), "-o", str(out), "--model", str(models["ab"]), "--codec", "ffv1", "-q"]
    assert main([*argv, "--side-by-side"]) == 0
    frames, _ = synth_video.read_frames(out)
    assert len(frames) == 6 and frames[0].shape[:2] == (32, 96)
    assert np.ptp(frames[2][:, :48].astype(int), axis=2).max() <= 3  # the grey input, left
    assert np.ptp(frames[2][:, 48:].astype(int), axis=2).mean() > 3  # the colour result, right


def test_folder_resume_skipped_files_and_format(models, tmp_path, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    for name in ("a.png", "sub/b.jpg"):
        _photo(src / name, (24, 32))
    (src / "reel.mov").write_bytes(b"\x00" * 32)
    write_image(dst / "a.webp", np.zeros((4, 4, 3), np.uint8))  # done by an earlier, interrupted run
    argv = ["colorize", str(src), "-o", str(dst), "--model", str(models["ab"]), "--format", "webp"]
    assert main([*argv, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "colorized 1 of 1 images" in captured.out and "1 already done, kept (--resume)" in captured.out
    assert "skipped 1 file(s) that are not images" in captured.err
    assert f"{src / 'reel.mov'}: a video" in captured.err
    assert read_image(dst / "a.webp").shape == (4, 4, 3) and read_image(dst / "sub" / "b.webp").shape[:2] == (
        24,
        32,
    )
    assert main([*argv, "-q"]) == 0  # without --resume: overwritten, as before
    assert read_image(dst / "a.webp").shape[:2] == (24, 32)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--pages", "--side-by-side"], "--side-by-side is not available for comic pages"),
        (["--ray", "--strength", "1.5", "--side-by-side"], "--strength, --side-by-side cannot be used"),
        (["--ray", "--resume"], "--resume cannot be used with --ray"),
        (["--ray", "--no-gpu-path"], "--gpu-path/--no-gpu-path cannot be used with --ray"),
        (["--ray", "--detector", "det.onnx"], "--detector cannot be used with --ray"),
    ],
)
def test_flags_a_path_cannot_honour_are_refused_not_ignored(models, tmp_path, capsys, flags, expected):
    src = tmp_path / "in"
    _photo(src / "a.png", (24, 32))
    out = tmp_path / "out"
    assert main(["colorize", str(src), "-o", str(out), "--model", str(models["ab"]), *flags]) == 2
    assert expected in _error_of(capsys)
    assert not out.exists()


def test_temporal_default_is_the_runtime_one():
    args = build_parser().parse_args(["colorize", "in.mp4", "-o", "out.mp4"])
    assert args.temporal == DEFAULT_TEMPORAL
    assert args.render_size is None and args.strength == 1.0 and not args.side_by_side


def test_gpu_path_flag_reaches_the_runtime(tmp_path, capsys):
    photo = Path(__file__).resolve().parents[1] / "examples" / "old_photo.jpg"
    out = tmp_path / "o.png"
    assert main(["colorize", str(photo), "-o", str(out), "--gpu-path", "-q"]) == 2  # a CPU engine here
    assert "gpu_path=True needs an engine on CUDA" in capsys.readouterr().err and not out.exists()
    assert main(["colorize", str(photo), "-o", str(out), "--no-gpu-path", "-q"]) == 0 and out.exists()
