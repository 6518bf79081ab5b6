"""VideoOptions / StreamOptions: one temporal default, checks, keywords beside an options object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.runtime import DEFAULT_TEMPORAL, Runtime, StreamOptions, VideoOptions
from colorrt.runtime.stream import stream
from colorrt.runtime.temporal import ChromaStabilizer
from colorrt.runtime.video_job import VideoJob, colorize_video
from tests.synth_video import read_frames, scene_frames, write_video


@pytest.fixture(scope="module")
def runtime(zoo_models) -> Runtime:
    return Runtime(zoo_models["ab"], batch_size=4)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("options") / "clip.mkv"
    write_video(path, scene_frames(12, cuts=[6], seed=3), audio=None)
    return path


def test_every_default_is_the_one_constant():
    assert DEFAULT_TEMPORAL == 0.6
    assert StreamOptions().temporal == VideoOptions().temporal == DEFAULT_TEMPORAL
    assert ChromaStabilizer().strength == DEFAULT_TEMPORAL
    assert VideoOptions().stream_options().temporal == DEFAULT_TEMPORAL


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temporal": 1.0}, r"\[0, 1\)"),
        ({"temporal": -0.1}, r"\[0, 1\)"),
        ({"queue_size": 0}, "queue_size"),
        ({"decoder": "ffmpeg"}, "unknown decoder"),
        ({"segment_seconds": 0}, "segment_seconds"),
    ],
)
def test_video_options_refuse_bad_values(changes, message):
    with pytest.raises(InputError, match=message):
        VideoOptions(**changes)


def test_keywords_replace_the_fields_of_an_options_object():
    base = VideoOptions(codec="ffv1", temporal=0.3, resume=True)
    merged = VideoOptions.merged(base, temporal=0.0, progress=False)
    assert merged == VideoOptions(codec="ffv1", temporal=0.0, resume=True, progress=False)
    assert VideoOptions.merged(None, crf=20) == VideoOptions(crf=20)
    with pytest.raises(TypeError):
        VideoOptions.merged(base, tempora=0.5)


def test_stream_options_from_video_options():
    film = VideoOptions(temporal=0.25, queue_size=2, scene_threshold=30.0, codec="hevc")
    options = StreamOptions.merged(film, batch_size=3)
    assert (options.temporal, options.queue_size, options.scene_threshold, options.batch_size) == (
        0.25,
        2,
        30.0,
        3,
    )
    assert film.encoding() == {"codec": "hevc", "crf": None, "bitrate": None, "pix_fmt": None, "preset": None}


def test_stream_takes_an_options_object_or_keywords(runtime: Runtime):
    frames = list(scene_frames(9, cuts=[5], seed=1))
    settings = {"temporal": 0.4, "scene_threshold": 20.0}
    by_keywords = list(stream(runtime, frames, **settings))
    by_stream_options = list(stream(runtime, frames, options=StreamOptions(**settings)))
    by_video_options = list(runtime.stream(frames, options=VideoOptions(**settings)))
    for a, b, c in zip(by_keywords, by_stream_options, by_video_options, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    unsmoothed = list(stream(runtime, frames, options=VideoOptions(temporal=0.4), temporal=0.0))
    assert any(not np.array_equal(a, b) for a, b in zip(by_keywords, unsmoothed, strict=True))


def test_unknown_keywords_are_refused(runtime: Runtime, clip: Path, tmp_path: Path):
    with pytest.raises(TypeError, match="crff"):
        colorize_video(runtime, clip, tmp_path / "out.mkv", crff=20)
    with pytest.raises(TypeError, match="temporall"):
        stream(runtime, [], temporall=0.5)


def test_colorize_video_with_options_matches_keywords(runtime: Runtime, clip: Path, tmp_path: Path):
    by_keywords = tmp_path / "keywords.mkv"
    by_options = tmp_path / "options.mkv"
    colorize_video(runtime, clip, by_keywords, codec="ffv1", temporal=0.3, progress=False)
    options = VideoOptions(codec="ffv1", temporal=0.3)
    job = VideoJob(runtime, clip, by_options, options=options, progress=False)
    assert job.options == VideoOptions(codec="ffv1", temporal=0.3, progress=False)
    assert job.settings.codec == "ffv1"
    assert job.run().complete
    want, want_times = read_frames(by_keywords)
    got, got_times = read_frames(by_options)
    assert got_times == want_times
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keywords.mkv", "options.mkv"]  # no temporaries
