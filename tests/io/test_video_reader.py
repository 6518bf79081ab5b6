"""Decoding (colorrt.io.video.reader): grey and deep frames, resume points, B-framed AVI timestamps."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from colorrt.io.dali import presentation_timestamps
from colorrt.io.video import VideoDamageWarning, VideoReader
from tests.synth_video import AVI_FRAMES, scene_frames, write_video

# --- AVI with B-frames -----------------------------------------------------------------------------
# AVI stores no presentation timestamps, only a frame index: FFmpeg's demuxer gives each packet a dts
# and the decoder puts B-framed pictures back in display order. Old films digitized to DivX/Xvid
# store their B-frames "packed": a P-VOP and the B-VOP shown before it in one chunk, then a tiny
# placeholder (N-VOP) chunk, so that every chunk still yields one picture.


def test_b_framed_avi_frames_come_in_order_with_their_timestamps(b_framed_avi: tuple[Path, int]):
    path, delay = b_framed_avi
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoDamageWarning)  # the file is intact: no repair warnings
        reader = VideoReader(path)
        frames = list(reader)
    assert reader.warnings == []
    assert [f.index for f in frames] == list(range(AVI_FRAMES))
    assert [f.pts for f in frames] == [delay + k for k in range(AVI_FRAMES)]
    assert [f.time for f in frames] == [(delay + k) / 24 for k in range(AVI_FRAMES)]
    sources = [s.astype(int) for s in scene_frames(AVI_FRAMES, seed=11)]
    for frame in frames:  # each picture is the source frame of its index (lossy: the closest one)
        errors = [np.abs(frame.image.astype(int) - s).mean() for s in sources]
        assert int(np.argmin(errors)) == frame.index


def test_b_framed_avi_reader_resumes_at_a_frame(b_framed_avi: tuple[Path, int]):
    path, _ = b_framed_avi
    everything = list(VideoReader(path))
    for start in (12, 17):  # on a keyframe, and between keyframes
        tail = list(VideoReader(path, start_pts=everything[start].pts, start_index=start))
        assert [(f.index, f.pts) for f in tail] == [(f.index, f.pts) for f in everything[start:]]
        np.testing.assert_array_equal(tail[0].image, everything[start].image)


def test_b_framed_avi_dali_timestamps_are_the_readers(b_framed_avi: tuple[Path, int]):
    """DALI reports no timestamps: the DALI path's, read by demuxing, must be the PyAV reader's."""
    path, _ = b_framed_avi
    assert presentation_timestamps(path) == [f.pts for f in VideoReader(path)]


# --- reader --------------------------------------------------------------------------------------


def test_reader_gives_grey_and_deep_frames(tmp_path: Path):
    grey = tmp_path / "grey.mkv"
    write_video(grey, scene_frames(3, seed=1), codec="ffv1", pix_fmt="gray", audio=None)
    frames = list(VideoReader(grey))
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].image.shape == (48, 64)
    deep = tmp_path / "deep.mkv"
    write_video(deep, scene_frames(2, seed=1), codec="ffv1", pix_fmt="gray16le", audio=None)
    image = next(iter(VideoReader(deep))).image
    assert image.dtype == np.uint16 and image.shape == (48, 64)
    colour = tmp_path / "colour.mkv"
    write_video(colour, scene_frames(2, seed=1, colour=True), codec="ffv1", pix_fmt="yuv444p", audio=None)
    assert next(iter(VideoReader(colour))).image.shape == (48, 64, 3)


@pytest.mark.parametrize("name", ["film", "film_mkv"])
def test_reader_starts_at_a_resume_point(name: str, request: pytest.FixtureRequest):
    path = request.getfixturevalue(name)
    everything = list(VideoReader(path))
    tail = list(VideoReader(path, start_pts=everything[17].pts, start_index=17))
    assert [(f.index, f.pts) for f in tail] == [(f.index, f.pts) for f in everything[17:]]
    np.testing.assert_array_equal(tail[0].image, everything[17].image)


def test_reader_recovers_from_a_seek_past_the_resume_point(film: Path, monkeypatch: pytest.MonkeyPatch):
    everything = list(VideoReader(film))

    def overshoot(container, stream, pts):  # a broken index: lands after the wanted frame
        container.seek(everything[-5].pts, stream=stream, any_frame=True)

    monkeypatch.setattr("colorrt.io.video.reader.seek_keyframe", overshoot)
    tail = list(VideoReader(film, start_pts=everything[10].pts, start_index=10))
    assert [f.pts for f in tail] == [f.pts for f in everything[10:]]
