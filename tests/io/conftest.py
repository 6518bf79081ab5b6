"""Fixtures of the video tests: the zoo ``ab`` runtime and small synthetic films (MP4, MKV, AVI)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from colorrt.runtime.runtime import Runtime
from tests.synth_video import AVI_KINDS, scene_frames, write_b_framed_avi, write_video
from tests.zoo import ab_model


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(ab_model(tmp_path_factory.mktemp("zoo") / "ab.onnx"), batch_size=4)


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.1 s of grey 64x48 H.264 at variable frame rate with stereo AAC, in MP4."""
    path = tmp_path_factory.mktemp("film") / "film.mp4"
    write_video(path, scene_frames(40, cuts=[20], seed=1), vfr=True)
    return path


@pytest.fixture(scope="module")
def film_mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grey (gray pix_fmt) FFV1 in Matroska with Opus audio, SubRip subtitles and chapters."""
    path = tmp_path_factory.mktemp("film") / "film.mkv"
    write_video(
        path,
        scene_frames(30, cuts=[15], seed=2),
        codec="ffv1",
        pix_fmt="gray",
        audio="libopus",
        subtitles=True,
        chapters=True,
        time_base=Fraction(1, 1000),
    )
    return path


@pytest.fixture(scope="module", params=list(AVI_KINDS))
def b_framed_avi(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    """(path, decode delay) of an H.264, an MPEG-4 ASP and a packed (DivX style) MPEG-4 AVI."""
    codec, packed = AVI_KINDS[request.param]
    path = tmp_path_factory.mktemp("avi") / f"{request.param}.avi"
    return path, write_b_framed_avi(path, codec, packed=packed)
