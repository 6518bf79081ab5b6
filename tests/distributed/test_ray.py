"""Ray Data adapter on a local 2-CPU Ray instance: same outputs as the single-process paths.

Images: the folder run writes the same files, byte for byte in their pixels, and reports the same
failures as ``Runtime.colorize_folder``. Films: a multi-scene film colorized in segments by two
actors has the frame count, timestamps, audio packets and (lossless FFV1) pixels of a
single-machine ``colorize_video`` run. The planning steps (keyframe chunks, scene-cut replay,
segments) are checked without Ray against the detector run frame by frame.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from colorrt.distributed.ray import (
    ChunkScan,
    ClusterSpec,
    RuntimeSpec,
    check_model,
    colorize_files,
    find_cuts,
    keyframe_pts,
    plan_chunks,
    plan_segments,
    scan_chunk,
)
from colorrt.engines.base import Engine
from colorrt.errors import BackendError, ContractError, InputError, ModelError
from colorrt.io.images import list_images, read_image
from colorrt.io.video import VideoReader
from colorrt.runtime.options import DEFAULT_TEMPORAL
from colorrt.runtime.runtime import Runtime
from colorrt.runtime.temporal import SceneCutDetector
from colorrt.runtime.video_job import colorize_video
from tests.synth_video import (
    AVI_KINDS,
    packet_bytes,
    read_frames,
    scene_frames,
    write_b_framed_avi,
    write_video,
)
from tests.zoo import ab_model

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAVE_RAY, reason="ray is not installed (pip install 'colorrt[scale]' installs ray[data])"
)
CUTS = (24, 48)  # frames where the synthetic film changes scene
FRAMES = 72


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ab_model(tmp_path_factory.mktemp("zoo") / "ab.onnx")


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of 64x48 grey H.264 (a keyframe every 6 frames, three scenes) with stereo AAC."""
    path = tmp_path_factory.mktemp("film") / "film.mp4"
    options = {"preset": "ultrafast", "g": "6", "keyint_min": "6", "sc_threshold": "0", "bf": "2"}
    write_video(path, scene_frames(FRAMES, cuts=CUTS, seed=3), options=options)
    return path


@pytest.fixture(scope="module")
def local_ray():
    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install 'colorrt[scale]' installs ray[data])")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


# --- planning, without Ray -------------------------------------------------------------------------


def test_keyframe_chunks_cover_every_frame_once(film: Path):
    keyframes = keyframe_pts(film)
    assert len(keyframes) == FRAMES // 6  # one every 6 frames, as encoded
    with av.open(str(film)) as container:
        time_base = container.streams.video[0].time_base
    chunks = plan_chunks(keyframes, time_base, seconds=0.5)  # 0.5 s = 12 frames = 2 GOPs
    assert len(chunks) == FRAMES // 12
    assert chunks[0].start_pts is None and chunks[-1].end_pts is None
    scans = [scan_chunk(film, c) for c in chunks]
    _, times = read_frames(film)
    pts = [p for s in scans for p in s.pts]
    assert [float(p * time_base) for p in pts] == pytest.approx(times)  # all frames, in order, once
    assert all(len(s.scores) == len(s.pts) - 1 for s in scans)


def test_cut_replay_matches_the_detector_frame_by_frame(film: Path):
    with av.open(str(film)) as container:
        time_base = container.streams.video[0].time_base
    chunks = plan_chunks(keyframe_pts(film), time_base, seconds=0.25)
    plan = find_cuts([scan_chunk(film, c) for c in chunks], None, 15)
    frames, _ = read_frames(film)
    detector = SceneCutDetector()
    expected = [i for i, f in enumerate(frames) if detector.update(detector.features(f[:, :, 0]))]
    assert expected == list(CUTS)  # the synthetic cuts are found
    assert plan.cuts == expected
    segments = plan_segments(plan, time_base, 0.5, ".mkv")
    assert [s.first_index for s in segments] == [0, *CUTS]
    assert sum(s.frames for s in segments) == FRAMES
    assert segments[0].detector is None and all(s.detector is not None for s in segments[1:])
    # a segment is never shorter than asked: the cut at 24 is too close to 0 for 1.5 s segments
    assert [s.first_index for s in plan_segments(plan, time_base, 1.5, ".mkv")] == [0, 48]


@pytest.fixture(scope="module", params=list(AVI_KINDS))
def b_framed_avi(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264, an MPEG-4 ASP and a packed (DivX style) MPEG-4 AVI: no stored pts, B-frames."""
    codec, packed = AVI_KINDS[request.param]
    path = tmp_path_factory.mktemp("avi") / f"{request.param}.avi"
    write_b_framed_avi(path, codec, packed=packed)
    return path


def test_avi_chunks_start_at_their_keyframes(b_framed_avi: Path, monkeypatch: pytest.MonkeyPatch):
    frames = list(VideoReader(b_framed_avi))
    keyframes = keyframe_pts(b_framed_avi)
    assert keyframes == [f.pts for f in frames[::12]]  # encoded with a keyframe every 12 frames
    chunks = plan_chunks(keyframes, Fraction(1, 24), seconds=0.5)  # 0.5 s = 12 frames
    assert [c.start_pts for c in chunks] == [None, *keyframes[1:]]
    decoded = []  # frames each chunk's reader decodes (a seek before the keyframe decodes from 0)
    read = VideoReader._decoded

    def counted(reader: VideoReader, container: av.container.InputContainer, *rest: Any):
        for frame in read(reader, container, *rest):
            decoded[-1] += 1
            yield frame

    monkeypatch.setattr(VideoReader, "_decoded", counted)
    scans = []
    for chunk in chunks:
        decoded.append(0)
        scans.append(scan_chunk(b_framed_avi, chunk))
    assert [s.pts[0] for s in scans] == [frames[0].pts, *keyframes[1:]]
    assert [p for s in scans for p in s.pts] == [f.pts for f in frames]  # all frames, in order, once
    # each chunk decodes from its keyframe: its frames, plus (open GOP) the two B-frames shown before it
    assert all(n <= len(s.pts) + 2 for n, s in zip(decoded, scans, strict=True)), decoded


def test_chunks_out_of_order_are_refused():
    scans = [ChunkScan(0, [0, 10], [1.0], np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))]
    scans.append(ChunkScan(1, [5, 20], [1.0], np.zeros((1, 2, 2)), np.zeros((1, 2, 2))))
    with pytest.raises(Exception, match="not after the previous chunk"):
        find_cuts(scans, None, 15)


def test_cluster_spec_reserves_gpus_and_threads_per_actor():
    cpu, plan, cuda = (
        RuntimeSpec("/m/a.onnx"),
        RuntimeSpec("/m/a.plan"),
        RuntimeSpec("/m/a.onnx", device="cuda"),
    )
    cluster = ClusterSpec(workers=4, cpus_per_worker=3)
    assert (cluster.gpus(cpu), cluster.gpus(plan), cluster.gpus(cuda)) == (0.0, 1.0, 1.0)
    assert ClusterSpec(gpus_per_worker=0.5).gpus(plan) == 0.5
    assert cluster.worker_runtime(cpu).threads == 3  # a CPU engine gets the cores Ray reserved
    assert cluster.worker_runtime(cuda).threads is None
    assert cluster.worker_runtime(RuntimeSpec("http://triton:8000/c")).threads is None  # served: no threads
    with pytest.raises(InputError, match="workers"):
        ClusterSpec(workers=0)


def test_cli_refuses_what_ray_does_not_run(model: Path, tmp_path: Path, capsys):
    from colorrt.cli import main

    image = tmp_path / "one.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    assert main(["colorize", str(image), "-o", str(tmp_path / "o.png"), "--ray"]) == 2
    assert "--ray colorizes a folder of images or a video" in capsys.readouterr().err
    assert main(["colorize", str(tmp_path), "-o", str(tmp_path / "out"), "--ray", "--pages"]) == 2
    assert "page pipeline" in capsys.readouterr().err


def test_cli_video_flags_reach_colorize_video_ray() -> None:
    import inspect

    from colorrt.cli import build_parser
    from colorrt.cli.colorize_ray import VIDEO_FLAGS, _video_flags
    from colorrt.distributed.ray import colorize_video_ray

    args = build_parser().parse_args(
        ["colorize", "f.mp4", "-o", "o.mkv", "--ray", "--codec", "hevc", "--crf", "20", "--preset", "fast"]
    )
    assert _video_flags(args) == {"codec": "hevc", "crf": 20, "preset": "fast", "temporal": DEFAULT_TEMPORAL}
    assert set(VIDEO_FLAGS) <= set(inspect.signature(colorize_video_ray).parameters)


def test_models_are_checked_on_the_driver(model: Path, tmp_path: Path):
    check_model(RuntimeSpec(str(model)))
    with pytest.raises(InputError, match="no such model file"):
        check_model(RuntimeSpec(str(tmp_path / "missing.onnx")))
    bare = ab_model(tmp_path / "bare.onnx", None)
    with pytest.raises(ContractError):
        check_model(RuntimeSpec(str(bare)))
    check_model(RuntimeSpec(str(bare), contract="pix2pix-colorization"))
    check_model(RuntimeSpec("http://triton:8000/colorizer"))


@needs_ray
def test_errors_from_workers_come_back_as_colorrt_errors():
    import ray

    from colorrt.distributed.ray.cluster import ray_errors

    with pytest.raises(ModelError, match="bad weights"):
        with ray_errors(ray):
            raise ray.exceptions.RayTaskError("MapBatches", "traceback", ModelError("bad weights"))
    died = ray.exceptions.ActorDiedError()
    with pytest.raises(BackendError, match="the Ray job failed"):
        with ray_errors(ray):
            raise died


# --- on Ray ------------------------------------------------------------------------------------------


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(7)
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (40, 56), np.uint8)).save(src / "grey.png")
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8)).save(src / "photo.jpg")
    Image.fromarray(rng.integers(0, 256, (30, 30, 4), np.uint8)).save(src / "sub" / "alpha.png")
    Image.fromarray(rng.integers(0, 65536, (32, 20), np.uint16)).save(src / "sub" / "deep.png")
    Image.fromarray(rng.integers(0, 256, (17, 23), np.uint8)).save(src / "sub" / "odd.tif")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "notes.txt").write_text("not an image")
    return src


class _RefusesShape(Engine):
    """The test model's engine, failing on one render shape (a model that breaks on some inputs)."""

    name = "refuses-shape"

    def __init__(self, engine: Engine, shape: tuple[int, int]) -> None:
        self.engine, self.shape, self.contract = engine, shape, engine.contract

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        if tuple(batch.shape[2:]) == self.shape:
            raise BackendError(f"cannot run {self.shape}")
        return self.engine.infer(batch)


def test_a_model_failure_stops_a_folder_run_but_a_ray_worker_lists_it(model: Path, tmp_path: Path):
    """One folder logic (Runtime.colorize_pairs), two failure policies for the model's errors."""
    src = _image_folder(tmp_path)
    plain = Runtime(model)
    sizes = {name: read_image(src / name).shape[:2] for name in list_images(src) if name.name != "broken.png"}
    bad = plain.contract.render_shape(*sizes[Path("sub/alpha.png")])
    assert [plain.contract.render_shape(*s) for s in sizes.values()].count(bad) == 1
    runtime = Runtime(_RefusesShape(plain.engine, bad))
    pairs = [(src / name, tmp_path / "out" / name) for name in list_images(src)]
    with pytest.raises(BackendError, match="cannot run"):
        runtime.colorize_pairs(pairs)
    assert not (tmp_path / "out").exists()  # nothing is written before the model ran on every file
    errors = colorize_files(runtime, pairs)
    failed = {s.relative_to(src).as_posix(): e for (s, _), e in zip(pairs, errors, strict=True) if e}
    assert sorted(failed) == ["broken.png", "sub/alpha.png"] and "cannot run" in failed["sub/alpha.png"]
    assert len(list_images(tmp_path / "out")) == 4
    plain.colorize_folder(src, tmp_path / "plain", progress=False)
    for name in sizes.keys() - {Path("sub/alpha.png")}:  # the others as a plain run colours them
        expected = read_image(tmp_path / "plain" / name)
        assert np.array_equal(read_image(tmp_path / "out" / name), expected), name


@needs_ray
def test_folder_on_ray_equals_the_single_process_run(local_ray, model: Path, tmp_path: Path, capsys):
    """Through the command line: ``colorrt colorize SRC -o OUT --ray --workers 2``."""
    from colorrt.cli import main

    src = _image_folder(tmp_path)
    single = Runtime(model, batch_size=2).colorize_folder(src, tmp_path / "single", progress=False)
    assert (single.done, single.total) == (5, 6)
    args = ["colorize", str(src), "-o", str(tmp_path / "ray"), "--model", str(model), "--batch-size", "2"]
    assert main([*args, "--ray", "--workers", "2"]) == 1  # one file failed, as in the single run
    out, err = capsys.readouterr()
    assert "colorized 5 of 6 images" in out
    assert "broken.png" in err and [p.name for p, _ in single.failed] == ["broken.png"]
    names = list_images(tmp_path / "single")
    assert list_images(tmp_path / "ray") == names and len(names) == 5
    for name in names:
        a, b = read_image(tmp_path / "single" / name), read_image(tmp_path / "ray" / name)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    assert not any(p.name.startswith(".") for p in (tmp_path / "ray").rglob("*"))  # no temp files left


def _video_facts(path: Path) -> tuple[list[int], Fraction, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [int(f.pts) for f in container.decode(stream)]
        return pts, stream.time_base, stream.codec_context.width


@needs_ray
def test_film_on_ray_equals_the_single_machine_run(local_ray, model: Path, film: Path, tmp_path: Path):
    from colorrt.distributed.ray import colorize_video_ray

    runtime = Runtime(model, batch_size=4)
    single = colorize_video(runtime, film, tmp_path / "single.mkv", codec="ffv1", progress=False)
    report = colorize_video_ray(
        model, film, tmp_path / "ray.mkv", workers=2, batch_size=4, codec="ffv1", segment_seconds=0.5
    )
    assert report.complete and report.frames == single.frames == FRAMES
    assert report.scene_cuts == single.scene_cuts == list(CUTS)
    assert report.segments == [(0, 24), (1, 24), (2, 24)]  # split at the cuts, 0.5 s at least
    assert _video_facts(tmp_path / "ray.mkv") == _video_facts(tmp_path / "single.mkv")
    ray_audio = packet_bytes(tmp_path / "ray.mkv", "audio")
    assert ray_audio == packet_bytes(tmp_path / "single.mkv", "audio") and len(ray_audio) > 50
    ray_frames, _ = read_frames(tmp_path / "ray.mkv")
    single_frames, _ = read_frames(tmp_path / "single.mkv")
    diff = max(
        int(np.abs(a.astype(int) - b.astype(int)).max())
        for a, b in zip(ray_frames, single_frames, strict=True)
    )
    assert diff <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ray.mkv", "single.mkv"]  # work folder removed
