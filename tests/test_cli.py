"""The colorrt command, run in process through main() and once as `python -m colorrt`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorrt import cli
from colorrt.cli import PluginCommand, main
from colorrt.io.images import read_image, write_image
from tests import zoo


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-zoo")
    return {"ab": zoo.ab_model(d / "ab.onnx"), "bare": zoo.ab_model(d / "bare.onnx", None)}


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    return write_image(tmp_path / "photo.png", rng.integers(0, 256, (40, 52, 3), dtype=np.uint8))


def _error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("colorrt: error: ") and "Traceback" not in err
    return err


def test_colorize_file(models, photo, tmp_path, capsys):
    out = tmp_path / "o" / "colour.png"
    assert main(["colorize", str(photo), "-o", str(out), "--model", str(models["ab"])]) == 0
    assert read_image(out).shape == (40, 52, 3)
    assert f"wrote {out}" in capsys.readouterr().out


def test_colorize_into_existing_folder_keeps_name(models, photo, tmp_path):
    (tmp_path / "dest").mkdir()
    args = ["colorize", str(photo), "-o", str(tmp_path / "dest"), "--model", str(models["ab"]), "-q"]
    assert main(args) == 0
    assert (tmp_path / "dest" / "photo.png").is_file()


def test_colorize_folder_partial_failure_exit_1(models, tmp_path, capsys):
    src = tmp_path / "in"
    for name in ("a.png", "sub/b.png"):
        write_image(src / name, np.full((30, 20), 128, np.uint8))
    (src / "broken.png").write_text("not an image")
    args = [
        "colorize",
        str(src),
        "-o",
        str(tmp_path / "out"),
        "--model",
        str(models["ab"]),
        "--batch-size",
        "2",
    ]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "colorized 2 of 3 images" in captured.out
    assert "1 file(s) failed" in captured.err and "broken.png" in captured.err
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "a.png",
        "sub/b.png",
    ]


@pytest.mark.parametrize(
    "setup, extra, expected",
    [
        ("missing", [], "no such file"),
        ("text", [], "not an image"),
        ("truncated", [], "truncated or corrupt"),
        ("bare", [], "--contract"),
        ("good", ["--contract", "pix2pix-colourization"], "did you mean 'pix2pix-colorization'"),
        ("good", ["--backend", "onnxrt"], "did you mean 'onnxruntime'"),
        ("good", ["--batch-size", "0"], "batch_size"),
    ],
)
def test_errors_are_one_clear_line_exit_2(models, photo, tmp_path, capsys, setup, extra, expected):
    src, model = photo, models["ab"]
    if setup == "missing":
        src = tmp_path / "nope.png"
    elif setup == "text":
        src = tmp_path / "text.png"
        src.write_text("hello")
    elif setup == "truncated":
        src = tmp_path / "cut.jpg"
        Image.open(photo).save(src, quality=95)
        src.write_bytes(src.read_bytes()[:400])
    elif setup == "bare":
        model = models["bare"]
    out = tmp_path / "result.png"
    assert main(["colorize", str(src), "-o", str(out), "--model", str(model), *extra]) == 2
    assert expected in _error_of(capsys)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_bare_model_with_contract_flag_works(models, photo, tmp_path):
    out = tmp_path / "r.png"
    args = ["colorize", str(photo), "-o", str(out), "--model", str(models["bare"]), "-q"]
    assert main([*args, "--contract", "pix2pix-colorization"]) == 0
    assert out.is_file()


def test_garbage_video_is_one_clear_error(models, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    out = tmp_path / "o.mp4"
    assert main(["colorize", str(video), "-o", str(out), "--model", str(models["ab"])]) == 2
    assert "clip.mp4" in _error_of(capsys)
    assert not out.exists()


def test_info_prints_contract_shapes_precision(models, capsys):
    assert main(["info", str(models["ab"])]) == 0
    out = capsys.readouterr().out
    for text in ("contract:   zoo-ab", "input_space", "output_scale", "110"):
        assert text in out
    assert "render size            longest side 64, sides multiples of 4" in out
    assert "size_rule" not in out and "multiple " not in out  # "multiple 64" read as a size rule
    assert "opset:      17" in out and "precision:  weights fp32" in out
    assert "input            float    [N, 1, H, W]" in out and "[N, 2, H, W]" in out


def test_info_json_and_bare_model(models, capsys):
    assert main(["info", str(models["ab"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["contract"]["name"] == "zoo-ab" and data["inputs"][0]["shape"] == ["N", 1, "H", "W"]
    assert main(["info", str(models["bare"])]) == 0
    assert "--contract" in capsys.readouterr().out


def test_info_bad_model_file(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07\x12\x03abc" * 3)
    assert main(["info", str(tmp_path / "junk.onnx")]) == 2
    assert "junk.onnx" in _error_of(capsys)


def test_plugin_command_is_wired(tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_plugin.py").write_text(
        "def add_args(parser):\n    parser.add_argument('--name', required=True)\n"
        "def run(args):\n    print('hello', args.name)\n    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        cli.PLUGIN_COMMANDS, "export", PluginCommand("fake_plugin", "add_args", "run", "x", "x")
    )
    assert main(["export", "--name", "zoo"]) == 3
    assert "hello zoo" in capsys.readouterr().out


def test_plugin_module_missing_is_clear(monkeypatch, capsys):
    ghost = PluginCommand("colorrt._no_such_module", "add", "run", "gpu", "x")
    monkeypatch.setitem(cli.PLUGIN_COMMANDS, "build", ghost)
    assert main(["build", "model.onnx"]) == 2
    assert "'colorrt build' is not available" in _error_of(capsys)


def test_python_dash_m_colorrt(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "colorrt",
            "colorize",
            str(tmp_path / "missing.png"),
            "-o",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("colorrt: error: no such file") and "Traceback" not in run.stderr
    version = subprocess.run([sys.executable, "-m", "colorrt", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("colorrt ")


def test_warnings_are_one_line_each_kind_with_repeats_counted(tmp_path, monkeypatch, capsys):
    (tmp_path / "warn_plugin.py").write_text(
        "import warnings\n"
        "class PacketWarning(UserWarning):\n    noun = 'damaged packets'\n"
        "def add_args(parser):\n    pass\n"
        "def run(args):\n"
        "    for i in range(27):\n        warnings.warn(f'packet {i} is damaged', PacketWarning)\n"
        "    warnings.warn('cache folder not writable', UserWarning)\n"
        "    warnings.warn('cache folder not writable', UserWarning)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        cli.PLUGIN_COMMANDS, "export", PluginCommand("warn_plugin", "add_args", "run", "x", "x")
    )
    assert main(["export"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "colorrt: warning: packet 0 is damaged",
        "colorrt: warning: cache folder not writable",
        "colorrt: warning: 27 damaged packets in all (the first is shown above)",
        "colorrt: warning: 2 UserWarning warnings in all (the first is shown above)",
    ]


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_threads_below_one_is_refused(threads, tmp_path, capsys):
    out = tmp_path / "photo.png"
    photo = Path(__file__).resolve().parents[1] / "examples" / "old_photo.jpg"
    argv = ["colorize", str(photo), "-o", str(out), f"--threads={threads}"]
    assert main(argv) == 2
    assert f"threads must be an integer >= 1, got {threads}" in _error_of(capsys)
    assert not out.exists()


@pytest.mark.parametrize("name", ["out.png", "out.mp4"])
def test_folder_input_refuses_a_file_named_output(name, tmp_path, capsys):
    src = tmp_path / "scans"
    src.mkdir()
    Image.new("L", (16, 16), 128).save(src / "a.png")
    assert main(["colorize", str(src), "-o", str(tmp_path / name)]) == 2
    assert "is a folder, so the output is a folder too" in _error_of(capsys)
    assert not (tmp_path / name).exists()


def test_tensorrt_backend_without_tensorrt_names_what_was_run(models, tmp_path, capsys):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed: the error does not happen")
    except ImportError:
        pass
    photo = Path(__file__).resolve().parents[1] / "examples" / "old_photo.jpg"
    argv = ["colorize", str(photo), "-o", str(tmp_path / "o.png"), "--backend", "tensorrt", "--model"]
    assert main([*argv, str(models["ab"])]) == 2
    error = _error_of(capsys)
    assert "the TensorRT backend (--backend tensorrt)" in error and "colorrt build needs" not in error
