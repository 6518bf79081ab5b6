"""A video job's work folder: segments take their names only when whole; states and manifest read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colorrt.io.video import VideoReader, encode_settings, probe
from colorrt.runtime.cuts import DetectorState
from colorrt.runtime.segments import FrameTag, SegmentEncoder, SegmentRecord, WorkDir
from colorrt.runtime.stages import ColorizedFrame
from colorrt.runtime.temporal import StabilizerState, TemporalState
from tests.synth_video import read_frames, scene_frames, write_video


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mkv"
    write_video(path, scene_frames(7, seed=2), audio=None)
    return path


def _frames(clip: Path) -> list[ColorizedFrame]:
    colorized = []
    for frame in VideoReader(clip):
        rgb = np.repeat(frame.image[..., None], 3, axis=2) if frame.image.ndim == 2 else frame.image
        state = TemporalState(
            DetectorState(np.full((1, 2, 2), frame.index, np.float32), frame.index, (1.5, 2.5)),
            StabilizerState(np.full((2, 3, 3), frame.index, np.float32), None),
        )
        colorized.append(ColorizedFrame(rgb, FrameTag(frame.index, frame.pts), False, state))
    return colorized


def _hidden(work: WorkDir) -> list[str]:
    return sorted(p.name for p in work.path.iterdir() if p.name.startswith("."))


def test_segments_are_renamed_into_place_when_closed_and_dropped_on_abort(clip: Path, tmp_path: Path):
    dst = tmp_path / "out.mkv"
    info = probe(clip)
    settings = encode_settings(dst, codec="ffv1", size=(info.height, info.width))
    work = WorkDir(dst)
    work.reset()
    manifest: dict = {"version": 1, "segments": []}
    segments: list[SegmentRecord] = []
    encoder = SegmentEncoder(work, settings, info, 3, manifest, segments)
    frames = _frames(clip)

    for frame in frames[:2]:
        encoder.write(frame)
    assert not work.segment_path(0).exists() and len(_hidden(work)) == 1  # encoding under a hidden name
    encoder.write(frames[2])  # the segment is full: closed, renamed, recorded
    assert work.segment_path(0).is_file() and _hidden(work) == []
    assert len(read_frames(work.segment_path(0))[0]) == 3
    assert work.load()["segments"] == [segments[0].to_dict()]
    first, last = frames[0].tag.pts, frames[2].tag.pts
    assert segments[0] == SegmentRecord("segment_00000.mkv", 0, 3, first, last, "state_00000.npz")
    with np.load(work.path / segments[0].state) as arrays:
        state = TemporalState.from_arrays(dict(arrays))
    assert state.detector.since_cut == 2 and state.detector.recent == (1.5, 2.5)
    np.testing.assert_array_equal(state.stabilizer.ab, frames[2].state.stabilizer.ab)

    for frame in frames[3:5]:
        encoder.write(frame)
    encoder.abort()  # an error mid-segment: nothing of it stays
    assert not work.segment_path(1).exists() and _hidden(work) == []
    assert len(work.load()["segments"]) == 1
    kept = sorted(p.name for p in work.path.iterdir())
    assert kept == ["manifest.json", "segment_00000.mkv", "state_00000.npz"]
