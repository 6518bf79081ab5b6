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
from colorrt.runtime.video_job import VideoReport

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
    temporal: float = 0.6,
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
    ``temporal``/``scene_threshold`` are :func:`~colorrt.runtime.video_job.colorize_video`'s;
    ``options`` are :func:`ray_specs`'s. Returns a :class:`RayVideoReport`.
    """
    from colorrt.io.video import SegmentPart, assemble, check_output, encode_settings, probe
    from colorrt.runtime.stream import StreamOptions
    from colorrt.runtime.video_job import check_video_paths

    start = time.perf_counter()
    cluster, spec = ray_specs(model, **options)
    src, dst = absolute(src), absolute(dst)
    check_video_paths(src, dst)
    check_model(spec)
    info = probe(src)
    settings = encode_settings(
        dst,
        codec=codec,
        crf=crf,
        bitrate=bitrate,
        pix_fmt=pix_fmt,
        size=(info.height, info.width),
        preset=preset,
    )
    check_output(dst, settings, info)
    stream_options = StreamOptions(temporal=temporal, scene_threshold=scene_threshold)
    seconds = segment_seconds if segment_seconds is not None else _auto_seconds(info, cluster.workers)
    if seconds <= 0:
        raise InputError(f"segment_seconds must be > 0, got {seconds}")
    work = dst.parent / f".{dst.name}.colorrt-ray"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    job = FilmJob(src, work, info, settings, stream_options)
    try:
        with ray_session(cluster.address) as ray, ray_errors(ray):
            quiet_progress(ray)
            chunks = plan_chunks(keyframe_pts(src), info.time_base, seconds)
            scans: list[ChunkScan] = []
            if temporal > 0:
                scans = _run_scan(ray, src, chunks, cluster)
                plan = find_cuts(scans, scene_threshold, stream_options.min_scene_len)
                segments = plan_segments(plan, info.time_base, seconds, dst.suffix)
            else:
                segments = keyframe_segments(chunks, dst.suffix)
            results = _run_segments(ray, job, segments, cluster, spec)
        _check_results(segments, results)
        parts = [SegmentPart(work / r.file, r.first_pts) for r in results if r.frames]
        temp = dst.with_name(f".{dst.stem}.colorrt-ray-tmp{dst.suffix}")
        try:
            assemble(parts, src, temp, info)
            os.replace(temp, dst)
        finally:
            temp.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    frames = sum(r.frames for r in results)
    return RayVideoReport(
        segments=[(r.number, r.frames) for r in results],
        src=src,
        dst=dst,
        complete=True,
        frames=frames,
        frames_this_run=frames,
        resumed_from=0,
        seconds=time.perf_counter() - start,
        codec=settings.codec,
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
