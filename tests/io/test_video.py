"""Video files end to end: codecs, timestamps, stream-copied audio/subtitles, resume, damaged input.

Inputs are tiny synthetic videos written with PyAV; the model is the closed-form zoo ``ab`` model on
ONNX Runtime, so every run is real decoding, inference and encoding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.io.video import VideoDamageWarning, VideoReader, probe
from colorrt.runtime.runtime import Runtime
from colorrt.runtime.video_job import DiscardedJobWarning, VideoJob, colorize_video
from tests.synth_video import (
    AVI_FRAMES,
    packet_bytes,
    read_frames,
    scene_frames,
    write_audio_only,
    write_video,
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "colorrt" in p.name or ".partial" in p.name)


def _chroma(frame: np.ndarray) -> float:
    return float(np.abs(frame.astype(int) - frame.mean(axis=2, keepdims=True)).mean())


# --- the main path ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_frames_timestamps_audio_and_metadata_are_kept(
    runtime: Runtime, film: Path, tmp_path: Path, suffix: str
):
    before = _digest(film)
    dst = tmp_path / f"colour{suffix}"
    report = colorize_video(runtime, film, dst, progress=False, segment_seconds=0.5)
    assert report.complete and report.frames == report.frames_this_run == 40
    assert report.scene_cuts == [20]
    frames_in, times_in = read_frames(film)
    frames_out, times_out = read_frames(dst)
    assert len(frames_out) == len(frames_in) == 40
    # Matroska keeps milliseconds; it also shifts every stream by the AAC priming delay (sync kept)
    tolerance = 0.0011 if suffix == ".mkv" else 1e-9
    shift = times_out[0] - times_in[0]
    assert suffix == ".mkv" or shift == 0
    np.testing.assert_allclose(np.array(times_out) - shift, times_in, atol=tolerance)
    assert len(set(np.round(np.diff(times_in), 4))) > 1  # the input really is variable-rate
    audio_in, audio_out = packet_bytes(film, "audio"), packet_bytes(dst, "audio")
    assert [b for b, _ in audio_out] == [b for b, _ in audio_in]  # bit-identical, none lost
    np.testing.assert_allclose([t for _, t in audio_out], [t + shift for _, t in audio_in], atol=tolerance)
    with av.open(str(dst)) as out:
        assert out.metadata.get("title") == "synthetic film"
        assert out.streams.audio[0].metadata.get("language") == "eng"
        assert out.streams.video[0].codec_context.name == "h264"
    assert min(_chroma(f) for f in frames_out) > 1.0  # colour was added
    assert _digest(film) == before
    assert _leftovers(tmp_path) == []


def test_subtitles_chapters_and_grey_source(runtime: Runtime, film_mkv: Path, tmp_path: Path):
    assert probe(film_mkv).grey
    dst = tmp_path / "colour.mkv"
    report = colorize_video(runtime, film_mkv, dst, codec="ffv1", progress=False)
    assert report.complete and report.frames == 30
    assert packet_bytes(dst, "subtitle") == packet_bytes(film_mkv, "subtitle")
    assert [b for b, _ in packet_bytes(dst, "audio")] == [b for b, _ in packet_bytes(film_mkv, "audio")]
    with av.open(str(film_mkv)) as src, av.open(str(dst)) as out:
        assert [c["metadata"]["title"] for c in out.chapters()] == ["One", "Two"]
        assert [(c["start"] * c["time_base"]) for c in out.chapters()] == [
            (c["start"] * c["time_base"]) for c in src.chapters()
        ]
        assert out.streams.subtitles[0].metadata.get("language") == "fra"
    assert read_frames(dst)[1] == read_frames(film_mkv)[1]


def test_output_pixels_are_the_runtime_colorization(runtime: Runtime, film_mkv: Path, tmp_path: Path):
    dst = tmp_path / "colour.mkv"
    colorize_video(runtime, film_mkv, dst, codec="ffv1", pix_fmt="bgr0", temporal=0, progress=False)
    reader = VideoReader(film_mkv)
    expected = [runtime.colorize(f.image) for f in reader]
    got, _ = read_frames(dst)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)  # RGB FFV1 is lossless


@pytest.mark.parametrize(
    ("codec", "suffix", "audio", "stream_codec"),
    [
        ("h264", ".mp4", "aac", "h264"),
        ("hevc", ".mp4", "aac", "hevc"),
        ("ffv1", ".mkv", "libopus", "ffv1"),
        ("prores", ".mov", "aac", "prores"),
        ("vp9", ".webm", "libopus", "vp9"),
    ],
)
def test_every_output_codec(
    runtime: Runtime, tmp_path: Path, codec: str, suffix: str, audio: str, stream_codec: str
):
    src = tmp_path / "in.mkv"
    write_video(src, scene_frames(12, seed=3), audio=audio, time_base=Fraction(1, 1000))
    dst = tmp_path / f"out{suffix}"
    colorize_video(runtime, src, dst, codec=codec, progress=False)
    frames, times = read_frames(dst)
    assert len(frames) == 12 and times == read_frames(src)[1]
    with av.open(str(dst)) as out:
        assert out.streams.video[0].codec_context.name == stream_codec
        assert [b for b, _ in packet_bytes(dst, "audio")] == [b for b, _ in packet_bytes(src, "audio")]


def test_crf_and_bitrate_change_the_encoding(runtime: Runtime, film: Path, tmp_path: Path):
    small, large = tmp_path / "q40.mp4", tmp_path / "q10.mp4"
    colorize_video(runtime, film, small, crf=40, progress=False)
    colorize_video(runtime, film, large, crf=10, progress=False)
    assert large.stat().st_size > small.stat().st_size
    rate = tmp_path / "rate.mkv"
    colorize_video(runtime, film, rate, codec="vp9", bitrate="200k", progress=False)
    assert len(read_frames(rate)[0]) == 40


# --- cancel and resume -----------------------------------------------------------------------------


def _cancel_at(frame_count: int):
    holder: dict[str, VideoJob] = {}

    def on_progress(done: int, total: int | None) -> None:
        if done == frame_count:
            holder["cancelled_at"] = time.perf_counter()
            holder["job"].cancel()

    return holder, on_progress


def test_cancel_leaves_partial_file_and_resume_matches_uninterrupted_run(runtime: Runtime, tmp_path: Path):
    src = tmp_path / "in.mkv"
    write_video(src, scene_frames(72, cuts=[30], seed=4), audio="aac", time_base=Fraction(1, 1000))
    whole = tmp_path / "whole.mkv"
    colorize_video(runtime, src, whole, codec="ffv1", progress=False, segment_seconds=0.5)

    dst = tmp_path / "resumed.mkv"
    holder, on_progress = _cancel_at(31)
    job = VideoJob(
        runtime, src, dst, codec="ffv1", progress=False, segment_seconds=0.5, on_progress=on_progress
    )
    holder["job"] = job
    report = job.run()
    stopped_in = time.perf_counter() - holder["cancelled_at"]
    assert not report.complete and not dst.exists()
    assert stopped_in < 1.0
    assert report.frames >= 31 and report.partial is not None
    partial_frames, _ = read_frames(report.partial)
    assert len(partial_frames) == report.frames  # the partial file plays what was done
    assert (report.work_dir / "manifest.json").is_file()

    resumed = colorize_video(
        runtime, src, dst, codec="ffv1", progress=False, segment_seconds=0.5, resume=True
    )
    assert resumed.complete and resumed.resumed_from == report.frames
    assert resumed.frames_this_run == 72 - report.frames
    whole_frames, whole_times = read_frames(whole)
    got_frames, got_times = read_frames(dst)
    assert got_times == whole_times
    for want, have in zip(whole_frames, got_frames, strict=True):
        np.testing.assert_array_equal(have, want)  # the temporal state was carried over exactly
    assert packet_bytes(dst, "audio") == packet_bytes(whole, "audio")
    assert _leftovers(tmp_path) == []


def test_keyboard_interrupt_keeps_work_and_reraises(runtime: Runtime, film: Path, tmp_path: Path):
    def interrupt(done: int, total: int | None) -> None:
        if done == 20:
            raise KeyboardInterrupt

    dst = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(runtime, film, dst, progress=False, segment_seconds=0.25, on_progress=interrupt)
    assert not dst.exists()
    assert (tmp_path / "out.partial.mp4").is_file()
    report = colorize_video(runtime, film, dst, progress=False, segment_seconds=0.25, resume=True)
    assert report.complete and report.resumed_from >= 20 and len(read_frames(dst)[0]) == 40


def test_resume_refuses_other_settings(runtime: Runtime, film: Path, tmp_path: Path):
    dst = tmp_path / "out.mkv"
    event = threading.Event()
    colorize_video(
        runtime, film, dst, progress=False, on_progress=lambda d, t: d == 10 and event.set(), cancel=event
    )
    with pytest.raises(InputError, match="another input, model or settings"):
        colorize_video(runtime, film, dst, crf=30, progress=False, resume=True)


def test_without_resume_an_old_job_is_discarded(runtime: Runtime, film: Path, tmp_path: Path):
    dst = tmp_path / "out.mkv"
    event = threading.Event()
    colorize_video(
        runtime, film, dst, progress=False, on_progress=lambda d, t: d == 10 and event.set(), cancel=event
    )
    with pytest.warns(DiscardedJobWarning, match="starting over"):
        report = colorize_video(runtime, film, dst, progress=False)
    assert report.complete and report.resumed_from == 0 and report.frames_this_run == 40


def test_engine_error_stops_the_job_and_keeps_finished_segments(runtime: Runtime, film: Path, tmp_path: Path):
    class Failing:
        def __init__(self, engine) -> None:
            self.engine, self.calls = engine, 0
            self.contract, self.device, self.name = engine.contract, "cpu", "failing"

        def infer(self, batch):
            self.calls += 1
            if self.calls == 6:
                raise RuntimeError("engine exploded")
            return self.engine.infer(batch)

    class Broken:
        batch_size = 4
        engine = Failing(runtime.engine)

    dst = tmp_path / "out.mkv"
    with pytest.raises(RuntimeError, match="engine exploded"):
        colorize_video(Broken(), film, dst, progress=False, segment_seconds=0.25)
    assert not dst.exists()
    work = tmp_path / ".out.mkv.colorrt"
    assert len(list(work.glob("segment_*"))) >= 2  # finished before the failure; resumable


def _phone_clip(path: Path, *, rotation: int = 0, sar: Fraction | None = None) -> Path:
    """A few H.264 frames with a display rotation (phone video) and/or a non-square pixel shape."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        for index, image in enumerate(scene_frames(6, seed=4)):
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_display_rotation_and_pixel_aspect_are_kept(runtime: Runtime, tmp_path: Path, suffix: str):
    # a phone video shown upright only through its display matrix; a DVD film with 32:27 pixels
    rotated = _phone_clip(tmp_path / f"phone{suffix}", rotation=90)
    anamorphic = _phone_clip(tmp_path / f"dvd{suffix}", sar=Fraction(32, 27))
    for src, want_rotation, want_sar in ((rotated, 90, None), (anamorphic, 0, Fraction(32, 27))):
        dst = tmp_path / f"{src.stem}_colour{suffix}"
        colorize_video(runtime, src, dst, progress=False)
        with av.open(str(dst)) as out:
            stream = out.streams.video[0]
            assert stream.sample_aspect_ratio == want_sar
            assert next(out.decode(stream)).rotation == want_rotation


@pytest.mark.parametrize("suffix", [".mov", ".mp4"])
def test_camera_timecode_is_kept(runtime: Runtime, tmp_path: Path, suffix: str):
    # cameras and film scanners write a QuickTime timecode track; the muxer times it by the frame rate
    src = tmp_path / "scan.mov"
    write_video(src, scene_frames(6, seed=6), metadata={"timecode": "01:00:00:00"})
    dst = tmp_path / f"colour{suffix}"
    report = colorize_video(runtime, src, dst, progress=False)
    assert report.complete and report.frames == 6
    with av.open(str(dst)) as out:
        assert out.streams.video[0].metadata.get("timecode") == "01:00:00:00"
        assert out.streams.video[0].average_rate == 24
    assert read_frames(dst)[1] == read_frames(src)[1]


def test_last_segment_of_three_b_framed_frames_in_matroska(runtime: Runtime, tmp_path: Path):
    # 12 + 3 frames: Matroska gives the 3-frame segment's packets (I, P, B) no dts at all
    src = tmp_path / "grey.mkv"
    write_video(
        src, scene_frames(15, seed=5), codec="ffv1", pix_fmt="gray", audio=None, time_base=Fraction(1, 1000)
    )
    dst = tmp_path / "colour.mkv"
    report = colorize_video(runtime, src, dst, progress=False, segment_seconds=0.5)
    assert report.complete and report.frames == 15
    assert read_frames(dst)[1] == read_frames(src)[1]


# --- AVI with B-frames (decoding alone: test_video_reader.py) ---------------------------------------


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_b_framed_avi_colorized_keeps_frames_and_timestamps(
    runtime: Runtime, b_framed_avi: tuple[Path, int], tmp_path: Path, suffix: str
):
    src, delay = b_framed_avi
    dst = tmp_path / f"colour{suffix}"
    report = colorize_video(runtime, src, dst, progress=False, segment_seconds=0.5)
    assert report.complete and report.frames == AVI_FRAMES and report.warnings == []
    frames, times = read_frames(dst)
    assert len(frames) == AVI_FRAMES
    tolerance = 0.0006 if suffix == ".mkv" else 1e-9  # Matroska stores milliseconds
    np.testing.assert_allclose(times, [(delay + k) / 24 for k in range(AVI_FRAMES)], atol=tolerance)
    assert min(_chroma(f) for f in frames) > 1.0


# --- bad input -------------------------------------------------------------------------------------


def test_not_a_video(runtime: Runtime, tmp_path: Path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match="not a video"):
        colorize_video(runtime, text, tmp_path / "out.mkv", progress=False)


def test_audio_only_file(runtime: Runtime, tmp_path: Path):
    path = write_audio_only(tmp_path / "sound.mka", "libopus")
    with pytest.raises(InputError, match="no video stream"):
        colorize_video(runtime, path, tmp_path / "out.mkv", progress=False)


def test_tags_that_are_not_utf8_are_read(runtime: Runtime, tmp_path: Path):
    # old files often carry Windows-1252 / Latin-1 titles; FFmpeg hands the bytes on as they are
    src = tmp_path / "old.mkv"
    with av.open(str(src), "w", metadata_encoding="latin-1") as out:
        out.metadata["title"] = "Café"
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gray"
        for index, image in enumerate(scene_frames(3, seed=5)):
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    report = colorize_video(runtime, src, tmp_path / "colour.mkv", progress=False)
    assert report.complete and report.frames == 3
    with av.open(str(tmp_path / "colour.mkv")) as out:
        assert out.metadata["title"].startswith("Caf")


def test_video_codec_ffmpeg_cannot_decode(runtime: Runtime, film: Path, tmp_path: Path):
    unknown = tmp_path / "odd.mp4"
    unknown.write_bytes(film.read_bytes().replace(b"avc1", b"zzz9"))  # the sample entry's codec tag
    with pytest.raises(InputError, match="codec"):
        colorize_video(runtime, unknown, tmp_path / "out.mkv", progress=False)


def _damaged_copy(
    src: Path, dst: Path, *, truncate: float | None = None, scramble: float | None = None
) -> Path:
    data = bytearray(src.read_bytes())
    if scramble is not None:
        start = int(len(data) * scramble)
        for k in range(start, start + 3000, 7):
            data[k] ^= 0xFF
    if truncate is not None:
        data = data[: int(len(data) * truncate)]
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def noisy_mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 frames of H.264 noise (big packets) with a keyframe every 12, in Matroska."""
    path = tmp_path_factory.mktemp("noisy") / "noisy.mkv"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64), dtype=np.uint8) for _ in range(96)]
    write_video(path, frames, audio=None, options={"g": "12"}, time_base=Fraction(1, 1000))
    return path


def test_truncated_stream_is_finished_with_a_warning(runtime: Runtime, noisy_mkv: Path, tmp_path: Path):
    cut = _damaged_copy(noisy_mkv, tmp_path / "cut.mkv", truncate=0.5)
    before = _digest(cut)
    with pytest.warns(VideoDamageWarning, match=r"ends at \d+\.\d+ s.*truncated"):
        report = colorize_video(runtime, cut, tmp_path / "out.mkv", progress=False)
    assert report.complete and 30 < report.frames < 96
    assert len(read_frames(tmp_path / "out.mkv")[0]) == report.frames
    assert any("truncated" in w for w in report.warnings)
    assert _digest(cut) == before


@pytest.mark.filterwarnings("ignore::colorrt.io.video.HeldFramesWarning")  # asserted in report.warnings
def test_corrupt_packets_are_reported_with_their_timestamp(runtime: Runtime, noisy_mkv: Path, tmp_path: Path):
    bad = _damaged_copy(noisy_mkv, tmp_path / "bad.mkv", scramble=0.33)
    with pytest.warns(VideoDamageWarning, match=r"damaged video data at \d+\.\d{3} s"):
        report = colorize_video(runtime, bad, tmp_path / "out.mkv", progress=False)
    # The frames of the packets left are all there (lost ones held); those of the clusters the
    # scrambled bytes took out of the container are gone with their timestamps.
    assert report.complete and 50 < report.frames < 96
    assert "held" in report.warnings[-1]
    times = read_frames(tmp_path / "out.mkv")[1]
    assert len(times) == report.frames and times == sorted(set(times))


def test_truncated_mp4_without_index_is_a_clear_error(runtime: Runtime, film: Path, tmp_path: Path):
    cut = _damaged_copy(film, tmp_path / "cut.mp4", truncate=0.5)
    with pytest.raises(InputError, match="not a video PyAV/FFmpeg can read"):
        colorize_video(runtime, cut, tmp_path / "out.mkv", progress=False)


@pytest.mark.parametrize(
    ("codec", "suffix"), [("ffv1", ".mov"), ("prores", ".mp4"), ("prores", ".webm"), ("h264", ".webm")]
)
def test_codec_the_container_cannot_hold(
    runtime: Runtime, film: Path, tmp_path: Path, codec: str, suffix: str
):
    with pytest.raises(InputError, match="cannot hold") as info:
        colorize_video(runtime, film, tmp_path / f"out{suffix}", codec=codec, progress=False)
    assert ".mkv" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_streams_the_container_cannot_hold_are_refused(runtime: Runtime, film_mkv: Path, tmp_path: Path):
    with pytest.raises(InputError, match=r"cannot hold the input's subtitle stream[\s\S]*\.mkv"):
        colorize_video(runtime, film_mkv, tmp_path / "out.mp4", progress=False)
    src = tmp_path / "opus.mkv"
    write_video(src, scene_frames(4, seed=3), audio="libopus", time_base=Fraction(1, 1000))
    with pytest.raises(InputError, match=r"cannot hold these streams \(h264 video, audio:opus\)"):
        colorize_video(runtime, src, tmp_path / "out.mov", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opus.mkv"]


def test_unwritable_output(runtime: Runtime, film: Path, tmp_path: Path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        colorize_video(runtime, film, blocker / "out.mkv", progress=False)


def test_missing_output_folders_are_created(runtime: Runtime, film: Path, tmp_path: Path):
    dst = tmp_path / "new" / "nested" / "out.mkv"
    report = colorize_video(runtime, film, dst, codec="ffv1", progress=False)
    assert report.complete and len(read_frames(dst)[0]) == report.frames


def test_input_equals_output(runtime: Runtime, film: Path):
    before = _digest(film)
    with pytest.raises(InputError, match="is the input video itself"):
        colorize_video(runtime, film, film, progress=False)
    assert _digest(film) == before


def test_missing_input(runtime: Runtime, tmp_path: Path):
    with pytest.raises(InputError, match="no such video file"):
        colorize_video(runtime, tmp_path / "nope.mp4", tmp_path / "out.mkv", progress=False)


# --- memory ----------------------------------------------------------------------------------------


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read the RSS")
def test_memory_stays_flat_over_a_long_video(runtime: Runtime, tmp_path: Path):
    src = tmp_path / "long.mkv"
    frames = list(scene_frames(50, (32, 48), cuts=[25], seed=8))
    # no audio: it is only touched when the segments are assembled, after the measured frames
    write_video(
        src,
        (frames[i % 50] for i in range(5000)),
        codec="ffv1",
        pix_fmt="gray",
        audio=None,
        time_base=Fraction(1, 1000),
    )
    rss: dict[int, float] = {}

    def sample(done: int, total: int | None) -> None:
        if done in (500, 5000):
            rss[done] = _rss_mb()

    report = colorize_video(runtime, src, tmp_path / "out.mkv", progress=False, on_progress=sample)
    assert report.complete and report.frames == 5000
    assert rss[5000] - rss[500] < 100, rss


# --- DALI ------------------------------------------------------------------------------------------


def _has_dali() -> bool:
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except ModuleNotFoundError:  # no "nvidia" namespace package at all
        return False


@pytest.mark.requires_cuda
@pytest.mark.skipif(not _has_dali(), reason="NVIDIA DALI is not installed (pip install 'colorrt[gpu]')")
def test_dali_decoder_matches_pyav(runtime: Runtime, tmp_path: Path):
    src = tmp_path / "in.mp4"
    write_video(src, scene_frames(20, (64, 96), seed=9), audio="aac")
    out_cpu, out_gpu = tmp_path / "cpu.mkv", tmp_path / "gpu.mkv"
    colorize_video(runtime, src, out_cpu, codec="ffv1", progress=False)
    colorize_video(runtime, src, out_gpu, codec="ffv1", progress=False, decoder="dali")
    cpu_frames, cpu_times = read_frames(out_cpu)
    gpu_frames, gpu_times = read_frames(out_gpu)
    assert gpu_times == cpu_times
    for a, b in zip(cpu_frames, gpu_frames, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0  # NVDEC vs FFmpeg YUV->RGB rounding
