"""Output codec settings (colorrt.io.video.codecs): defaults, checks, presets, bitrates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.io.video import SegmentWriter, encode_settings, parse_bitrate, probe


def test_encode_settings_defaults_and_checks(tmp_path: Path):
    assert encode_settings(tmp_path / "a.mp4").encoder == "libx264"
    assert encode_settings(tmp_path / "a.webm").encoder == "libvpx-vp9"
    assert encode_settings(tmp_path / "a.mkv", codec="h265").encoder == "libx265"
    assert encode_settings(tmp_path / "a.mkv", codec="prores").pix_fmt == "yuv422p10le"
    assert encode_settings(tmp_path / "a.mkv", size=(47, 64)).pix_fmt == "yuv444p"  # odd height
    vp9 = encode_settings(tmp_path / "a.webm", crf=30)
    assert vp9.options["crf"] == "30" and vp9.options["b"] == "0"
    with pytest.raises(InputError, match="did you mean 'hevc'"):
        encode_settings(tmp_path / "a.mkv", codec="hevcc")
    with pytest.raises(InputError, match="no crf"):
        encode_settings(tmp_path / "a.mkv", codec="ffv1", crf=10)
    with pytest.raises(InputError, match="0..51"):
        encode_settings(tmp_path / "a.mkv", crf=99)
    with pytest.raises(InputError, match="not both"):
        encode_settings(tmp_path / "a.mkv", crf=20, bitrate="1M")
    with pytest.raises(InputError, match="even frame sizes"):
        encode_settings(tmp_path / "a.mkv", pix_fmt="yuv420p", size=(47, 64))
    with pytest.raises(InputError, match="cannot write pixel format"):
        encode_settings(tmp_path / "a.mkv", codec="vp9", pix_fmt="rgb24")


def test_preset_reaches_the_encoder(film: Path, tmp_path: Path):
    """x264 writes its settings into the stream: ultrafast turns CABAC off, medium keeps it on."""
    info = probe(film)
    frames = [np.full((info.height, info.width, 3), 40 * i, np.uint8) for i in range(3)]
    streams = {}
    for preset in ("ultrafast", None):
        dst = tmp_path / f"{preset}.mp4"
        writer = SegmentWriter(dst, encode_settings(dst, preset=preset), info, pts_offset=0)
        for i, image in enumerate(frames):
            writer.write(image, pts=i * info.frame_duration)
        writer.close()
        streams[preset] = dst.read_bytes()
    assert b"cabac=0" in streams["ultrafast"] and b"cabac=1" in streams[None]
    assert encode_settings(tmp_path / "a.mkv", codec="hevc", preset="slow").options["preset"] == "slow"
    with pytest.raises(InputError, match="did you mean 'veryfast'"):
        encode_settings(tmp_path / "a.mp4", preset="veryfats")
    with pytest.raises(InputError, match="no speed preset"):
        encode_settings(tmp_path / "a.mkv", codec="ffv1", preset="fast")


def test_parse_bitrate():
    assert parse_bitrate("8M") == 8_000_000
    assert parse_bitrate("2500k") == 2_500_000
    assert parse_bitrate("1.5M") == 1_500_000
    assert parse_bitrate(640_000) == 640_000
    for bad in ("fast", "-3M", 0, "0k"):
        with pytest.raises(InputError, match="bitrate"):
            parse_bitrate(bad)
