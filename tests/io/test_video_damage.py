"""Damaged H.264 in MP4: every frame slot of the input is kept (lost frames held), warnings counted once.

The clip is 48 frames of 64x48 H.264 with B-frames and a keyframe every 12, written with one encoder
thread (the same bytes on every machine); some of its packets are overwritten in place, as the
kilobytes of a damaged file would be.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from colorrt.io.video import DamagedPacketWarning, HeldFramesWarning, VideoReader
from colorrt.runtime.runtime import Runtime
from colorrt.runtime.video_job import colorize_video
from tests.synth_video import read_frames, scene_frames, write_video

FRAMES = 48


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("damage") / "clip.mp4"
    options = {"preset": "ultrafast", "x264-params": "bframes=2", "g": "12", "threads": "1"}
    write_video(path, scene_frames(FRAMES, (48, 64), seed=4, grain=8), options=options)
    return path


def _damaged(src: Path, dst: Path, packets: range) -> Path:
    """A copy of ``src`` with the video packets ``packets`` (decode order) overwritten by noise."""
    data = bytearray(src.read_bytes())
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        places = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    rng = np.random.default_rng(7)
    for pos, size in (places[k] for k in packets):
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def _packet_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.size)


def _read(path: Path, **kwargs) -> tuple[list, list[warnings.WarningMessage], VideoReader]:
    reader = VideoReader(path, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = list(reader)
    return frames, caught, reader


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "ffv1"), (".mp4", "h264")])
def test_lost_frames_are_held_so_count_and_timestamps_stay(
    runtime: Runtime, clip: Path, tmp_path: Path, suffix: str, codec: str
):
    # The keyframe of the third GOP is lost: the decoder drops the frames that refer to it and lets
    # one out late. Before: .mkv/FFV1 failed in the muxer (the late frame was renumbered one tick on,
    # the same millisecond) and the .mp4 held 39 of the 48 frames.
    bad = _damaged(clip, tmp_path / "bad.mp4", range(24, 25))
    dst = tmp_path / f"out{suffix}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = colorize_video(runtime, bad, dst, codec=codec, progress=False)
    frames, times = read_frames(dst)
    assert report.complete and report.frames == len(frames) == FRAMES
    want = _packet_times(bad)
    shift = times[0] - want[0]  # Matroska shifts every stream by the AAC priming delay
    assert suffix == ".mkv" or shift == 0
    np.testing.assert_allclose(np.array(times) - shift, want, atol=0.0011 if suffix == ".mkv" else 1e-9)
    held = [w for w in caught if w.category is HeldFramesWarning]
    assert len(held) == 1 and report.warnings[-1] == str(held[0].message)
    count = int(str(held[0].message).split(": ")[1].split(" ")[0])
    assert 0 < count < FRAMES and "held" in str(held[0].message)


def test_one_warning_per_damaged_packet(clip: Path, tmp_path: Path):
    bad = _damaged(clip, tmp_path / "bad.mp4", range(24, 25))
    frames, caught, reader = _read(bad)
    damaged = [str(w.message) for w in caught if w.category is DamagedPacketWarning]
    assert damaged and len(damaged) == len(set(damaged))  # each names its packet's time, once
    assert DamagedPacketWarning.noun == "damaged packets"
    assert [f.pts for f in frames] == sorted({f.pts for f in frames}) and len(frames) == FRAMES
    assert [f.index for f in frames] == list(range(FRAMES))
    assert reader.held > 0 and sum(w.category is HeldFramesWarning for w in caught) == 1


def test_lost_first_frames_show_the_next_good_one(clip: Path, tmp_path: Path):
    bad = _damaged(clip, tmp_path / "bad.mp4", range(0, 1))  # the first keyframe
    frames, _, reader = _read(bad)
    assert len(frames) == FRAMES and reader.held > 0
    first_good = frames[reader.held]
    for held in frames[: reader.held]:
        assert held.image is first_good.image
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts))
    time_base = Fraction(1, 15360)
    assert [float(p * time_base) for p in pts] == pytest.approx(_packet_times(bad))


def test_resumed_read_of_a_damaged_clip_matches_the_whole_read(clip: Path, tmp_path: Path):
    bad = _damaged(clip, tmp_path / "bad.mp4", range(24, 25))
    whole, _, _ = _read(bad)
    start = whole[30]
    tail, _, _ = _read(bad, start_pts=start.pts, start_index=start.index)
    assert [(f.index, f.pts) for f in tail] == [(f.index, f.pts) for f in whole[30:]]
    for a, b in zip(tail, whole[30:], strict=True):
        np.testing.assert_array_equal(a.image, b.image)
