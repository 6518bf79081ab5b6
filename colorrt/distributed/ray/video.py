"""Ray film path: scan for cuts, colorize segments in parallel actors, join them by stream copy."""

from __future__ import annotations

import os
import pickle
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.atomic import replaced_when_done
from colorrt.distributed.ray.cluster import (
    ClusterSpec,
    RuntimeSpec,
    absolute,
    check_model,
    map_options,
    quiet_progress,
    ray_errors,
    ray_session,
    ray_specs,
)
from colorrt.distributed.ray.scan import Chunk, ChunkScan, find_cuts, keyframe_pts, plan_chunks, scan_chunk
from colorrt.distributed.ray.segments import (
    FilmJob,
    Segment,
    SegmentResult,
    colorize_segment,
    keyframe_segments,
    plan_segments,
)
from colorrt.errors import ColorRTError, InputError
from colorrt.runtime.options import DEFAULT_TEMPORAL, VideoOptions
from colorrt.runtime.video_job import VideoReport, check_video_paths

SEGMENTS_PER_WORKER = 4  # automatic segment length: about this many segments per worker (load balance)
MIN_SEGMENT_S = 5.0  # seconds: automatic segments are at least this long (seek + encoder start-up)
MAX_SEGMENT_S = 120.0  # seconds: and at most this long (work lost when a worker dies)


class SegmentColorizer:
    """Ray Data actor: colorizes film segments (one row = one pickled :class:`Segment`)."""

    def __init__(self, runtime: RuntimeSpec, job: FilmJob) -> None:
        self.runtime = runtime.build()
        self.job = job

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _result_rows(
            [colorize_segment(self.runtime, self.job, pickle.loads(s)) for s in batch["item"]]
        )


def _scan_rows(batch: dict[str, np.ndarray], src: str) -> dict[str, np.ndarray]:
    """Ray Data task: scene-cut scores of the chunks in a batch."""
    return _result_rows([scan_chunk(src, pickle.loads(c)) for c in batch["item"]])


def _result_rows(results: Sequence[ChunkScan | SegmentResult]) -> dict[str, np.ndarray]:
    """The rows :func:`_map_each` reads back: each result pickled, beside its number."""
    return {
        "number": np.array([r.number for r in results]),
        "result": np.array([pickle.dumps(r) for r in results], dtype=object),
    }


def _map_each(ray: Any, items: Sequence[Chunk | Segment], fn: Any, **options: Any) -> list[Any]:
    """``fn`` on every item, one row (``{"number", "item"}``, pickled) each; the results in item order."""
    rows = [{"number": item.number, "item": pickle.dumps(item)} for item in items]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    out = dataset.map_batches(fn, batch_size=1, **options).take_all()
    return [pickle.loads(row["result"]) for row in sorted(out, key=lambda r: int(r["number"]))]


@dataclass
class RayVideoReport(VideoReport):
    """A :class:`~colorrt.runtime.video_job.VideoReport` with the segments the film was cut into."""

    segments: list[tuple[int, int]] = field(default_factory=list)  # (number, frames), in order


def colorize_video_ray(
    model: str | os.PathLike[str] | None,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    codec: str | None = None,
    crf: int | None = None,
    bitrate: int | str | None = None,
    pix_fmt: str | None = None,
    preset: str | None = None,
    temporal: float = DEFAULT_TEMPORAL,
    scene_threshold: float | None = None,
    segment_seconds: float | None = None,
    **options: Any,
) -> RayVideoReport:
    """Colorize a film on Ray: segments between scene cuts in parallel actors, joined by stream copy.

    The output has the frames, timestamps, audio/subtitle packets and metadata that
    :func:`colorrt.runtime.video_job.colorize_video` gives on one machine, and the same colours
    (frame for frame; with a lossy codec the encoded bits differ because segments start elsewhere).
    ``segment_seconds``: shortest segment (segments start only at cuts, so a long shot is never
    split); None picks about 4 segments per worker, 5 to 120 s each. Encoding arguments and
    ``temporal``/``scene_threshold`` are :func:`~colorrt.runtime.video_job.colorize_video`'s
    (:class:`~colorrt.runtime.options.VideoOptions` fields); ``options`` are :func:`ray_specs`'s.
    Returns a :class:`RayVideoReport`.
    """
    from colorrt.io.video import assemble

    start = time.perf_counter()
    cluster, spec = ray_specs(model, **options)
    src, dst = absolute(src), absolute(dst)
    check_video_paths(src, dst)
    check_model(spec)
    film = VideoOptions(
        codec=codec,
        crf=crf,
        bitrate=bitrate,
        pix_fmt=pix_fmt,
        preset=preset,
        temporal=temporal,
        scene_threshold=scene_threshold,
    )
    job = _film_job(src, dst, film)
    seconds = segment_seconds if segment_seconds is not None else _auto_seconds(job.info, cluster.workers)
    if seconds <= 0:
        raise InputError(f"segment_seconds must be > 0, got {seconds}")
    shutil.rmtree(job.work_dir, ignore_errors=True)
    job.work_dir.mkdir(parents=True)
    try:
        with ray_session(cluster.address) as ray, ray_errors(ray):
            quiet_progress(ray)
            scans, segments = _plan(ray, job, cluster, seconds, dst.suffix)
            results = _run_segments(ray, job, segments, cluster, spec)
        _check_results(segments, results)
        with replaced_when_done(dst, dst.suffix) as temp:
            assemble(_parts(job.work_dir, results), src, temp, job.info)
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
    return _report(job, dst, scans, results, time.perf_counter() - start)


def _film_job(src: Path, dst: Path, film: VideoOptions) -> FilmJob:
    """The film's facts and encoding, checked before any worker starts; work goes next to ``dst``."""
    from colorrt.io.video import check_output, encode_settings, probe

    info = probe(src)
    settings = encode_settings(dst, size=(info.height, info.width), **film.encoding())
    check_output(dst, settings, info)
    return FilmJob(src, dst.parent / f".{dst.name}.colorrt-ray", info, settings, film.stream_options())


def _plan(
    ray: Any, job: FilmJob, cluster: ClusterSpec, seconds: float, suffix: str
) -> tuple[list[ChunkScan], list[Segment]]:
    """The scans (none without smoothing) and the segments: from scene cuts, else keyframe chunks."""
    chunks = plan_chunks(keyframe_pts(job.src), job.info.time_base, seconds)
    if job.options.temporal > 0:
        scans = _run_scan(ray, job.src, chunks, cluster)
        plan = find_cuts(scans, job.options.scene_threshold, job.options.min_scene_len)
        return scans, plan_segments(plan, job.info.time_base, seconds, suffix)
    return [], keyframe_segments(chunks, suffix)


def _parts(work: Path, results: list[SegmentResult]) -> list[Any]:
    """The segment files to join (``colorrt.io.video.SegmentPart``), in order; empty segments left out."""
    from colorrt.io.video import SegmentPart

    return [SegmentPart(work / r.record.file, r.record.first_pts) for r in results if r.record is not None]


def _report(
    job: FilmJob, dst: Path, scans: list[ChunkScan], results: list[SegmentResult], seconds: float
) -> RayVideoReport:
    frames = sum(r.frames for r in results)
    return RayVideoReport(
        segments=[(r.number, r.frames) for r in results],
        src=job.src,
        dst=dst,
        complete=True,
        frames=frames,
        frames_this_run=frames,
        resumed_from=0,
        seconds=seconds,
        codec=job.settings.codec,
        scene_cuts=sorted(c for r in results for c in r.cuts),
        warnings=[w for s in scans for w in s.warnings] + [w for r in results for w in r.warnings],
    )


def _auto_seconds(info: Any, workers: int) -> float:
    duration = info.duration_s or (info.frames or 0) / float(info.rate or 25)
    return min(MAX_SEGMENT_S, max(MIN_SEGMENT_S, duration / (SEGMENTS_PER_WORKER * workers)))


def _run_scan(ray: Any, src: Path, chunks: list[Chunk], cluster: ClusterSpec) -> list[ChunkScan]:
    return _map_each(
        ray,
        chunks,
        _scan_rows,
        fn_kwargs={"src": str(src)},
        batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=cluster.workers),
        num_cpus=cluster.cpus_per_worker,
    )


def _run_segments(
    ray: Any, job: FilmJob, segments: list[Segment], cluster: ClusterSpec, spec: RuntimeSpec
) -> list[SegmentResult]:
    return _map_each(
        ray,
        segments,
        SegmentColorizer,
        fn_constructor_kwargs={"runtime": cluster.worker_runtime(spec), "job": job},
        # one segment at a time per actor: a queued segment would wait behind a long one
        **map_options(ray, cluster, spec, max_tasks_in_flight_per_actor=1),
    )


def _check_results(segments: list[Segment], results: list[SegmentResult]) -> None:
    """Every planned segment came back, with the frames the plan counted."""
    if [r.number for r in results] != [s.number for s in segments]:
        raise ColorRTError(
            f"expected {len(segments)} colorized segments, got {len(results)}",
            "a Ray worker failed; see the Ray logs and run again",
        )
    for segment, result in zip(segments, results, strict=True):
        if segment.frames is not None and result.frames != segment.frames:
            raise ColorRTError(
                f"segment {segment.number} decoded {result.frames} frames where the scan found "
                f"{segment.frames}",
                "the video decodes differently when seeking; colorize it on one machine (without --ray)",
            )
