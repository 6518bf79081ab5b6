"""`colorrt colorize film.mp4 -o out.mkv` end to end through the CLI: frames, timestamps, audio kept."""

from __future__ import annotations

import av
import numpy as np

from colorrt.cli import main
from tests import synth_video, zoo


def _film(tmp_path):
    frames = synth_video.scene_frames(24, (48, 64), cuts=(12,), seed=1)
    src = tmp_path / "film.mp4"
    synth_video.write_video(src, frames, fps=12)
    return src


def test_cli_colorizes_a_film_keeping_frames_and_audio(tmp_path, capsys):
    src, dst = _film(tmp_path), tmp_path / "out.mkv"
    model = zoo.ab_model(tmp_path / "m.onnx")
    before = src.read_bytes()
    code = main(["colorize", str(src), "-o", str(dst), "--model", str(model), "--codec", "ffv1", "--quiet"])
    assert code == 0
    assert src.read_bytes() == before
    frames_in, _ = synth_video.read_frames(src)
    frames_out, _ = synth_video.read_frames(dst)
    assert len(frames_out) == len(frames_in)
    assert frames_out[0].shape == frames_in[0].shape
    chroma = np.abs(frames_out[5].astype(int) - frames_out[5].mean(axis=2, keepdims=True)).mean()
    assert chroma > 1  # the model put colour in
    audio_in = [b for b, _ in synth_video.packet_bytes(src, "audio")]
    audio_out = [b for b, _ in synth_video.packet_bytes(dst, "audio")]
    assert audio_out == audio_in


def test_cli_rejects_bad_codec_and_leaves_nothing(tmp_path, capsys):
    src, dst = _film(tmp_path), tmp_path / "out.mkv"
    model = zoo.ab_model(tmp_path / "m.onnx")
    code = main(
        ["colorize", str(src), "-o", str(dst), "--model", str(model), "--codec", "nonsense", "--quiet"]
    )
    assert code == 2
    assert "nonsense" in capsys.readouterr().err
    assert not dst.exists()


def test_cli_preset_reaches_x264_and_a_bad_one_is_refused(tmp_path, capsys):
    src, model = _film(tmp_path), zoo.ab_model(tmp_path / "m.onnx")
    fast = tmp_path / "fast.mp4"
    args = ["colorize", str(src), "--model", str(model), "--quiet"]
    assert main([*args, "-o", str(fast), "--preset", "ultrafast"]) == 0
    assert b"cabac=0" in fast.read_bytes()  # x264's settings string: ultrafast turns CABAC off
    bad = tmp_path / "bad.mp4"
    assert main([*args, "-o", str(bad), "--preset", "quick"]) == 2
    assert "preset 'quick'" in capsys.readouterr().err
    assert not bad.exists()


def test_cli_routes_other_video_suffixes_and_an_audio_file_to_the_video_path(tmp_path, capsys):
    # .3gp / .vob / .mxf / .dv films, or a film with an unusual suffix written to a video suffix
    src, model = _film(tmp_path), zoo.ab_model(tmp_path / "m.onnx")
    args = ["--model", str(model), "--codec", "ffv1", "--quiet"]
    for name in ("phone.3gp", "film.video"):
        copy = tmp_path / name
        copy.write_bytes(src.read_bytes())
        dst = tmp_path / f"{copy.stem}_colour.mkv"
        assert main(["colorize", str(copy), "-o", str(dst), *args]) == 0
        assert len(synth_video.read_frames(dst)[0]) == 24
    sound = synth_video.write_audio_only(tmp_path / "sound.m4a", "aac")
    capsys.readouterr()
    assert main(["colorize", str(sound), "-o", str(tmp_path / "sound.mkv"), *args]) == 2
    assert "no video stream" in capsys.readouterr().err


def test_cli_damaged_film_keeps_its_frames_and_reports_each_warning_kind_once(tmp_path, capsys):
    """Two damaged keyframes: one line per warning kind, the packets counted at the end, no frame lost."""
    src = tmp_path / "film.mp4"
    options = {"preset": "ultrafast", "x264-params": "bframes=2", "g": "12", "threads": "1"}
    synth_video.write_video(src, synth_video.scene_frames(48, (48, 64), seed=4, grain=8), options=options)
    data = bytearray(src.read_bytes())
    with av.open(str(src)) as container:
        places = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    for pos, size in (places[12], places[24]):
        data[pos : pos + size] = np.random.default_rng(pos).integers(0, 256, size, dtype=np.uint8).tobytes()
    bad, dst = tmp_path / "bad.mp4", tmp_path / "out.mkv"
    bad.write_bytes(bytes(data))
    model = zoo.ab_model(tmp_path / "m.onnx")
    code = main(["colorize", str(bad), "-o", str(dst), "--model", str(model), "--codec", "ffv1", "--quiet"])
    assert code == 0
    assert len(synth_video.read_frames(dst)[0]) == 48
    lines = capsys.readouterr().err.splitlines()
    assert sum("damaged video data" in line for line in lines) == 1, lines
    assert sum("replaced by the nearest good frame" in line for line in lines) == 1, lines
    assert any(line.endswith("damaged packets in all (the first is shown above)") for line in lines), lines
    assert all(line.startswith("colorrt: warning: ") for line in lines), lines
