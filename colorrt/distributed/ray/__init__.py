"""Ray Data adapter: colorize image folders and films on a Ray cluster, one Runtime per actor.

Modules: :mod:`~colorrt.distributed.ray.cluster` (worker spec, cluster spec, Ray session),
:mod:`~colorrt.distributed.ray.images` (folders), :mod:`~colorrt.distributed.ray.scan` (film: cut
scan), :mod:`~colorrt.distributed.ray.segments` (film: segment plan and colorization) and
:mod:`~colorrt.distributed.ray.video` (film: the Ray job and the join). Importing them imports no Ray.

Every worker is a Ray Data actor (:class:`ImageColorizer`, :class:`SegmentColorizer`) that builds one
:class:`~colorrt.Runtime` when it starts and keeps it for every batch, used through
``Dataset.map_batches(cls, compute=ray.data.ActorPoolStrategy(size=N), num_gpus=..., batch_size=...)``.

Images and pages: rows are relative file names; each actor colorizes its files with
:meth:`Runtime.colorize_pairs`, the folder logic of :meth:`Runtime.colorize_folder`, writing them
under the same relative names (Ray's own writers would invent names). The result is the same as
:meth:`Runtime.colorize_folder`, file for file; a file the model fails on is listed in the report
where a single-process run stops.

Films: the colorization of a frame depends on the frames before it (temporal smoothing and
scene-cut detection), so a film is cut where that dependence ends, at scene cuts:

1. *scan*: chunks between keyframes are decoded in parallel (Ray tasks) to score every frame
   for scene cuts; the driver replays the detector's decision rule on the scores in order, so it
   finds exactly the cuts a single-machine run finds, and the detector state before each one;
2. *colorize*: segments that start at cuts are colorized in parallel actors; a segment starts with
   the detector state recorded in step 1 and with the smoother reset (a cut resets it), so every
   frame gets the colours a single-machine run gives it; each segment is encoded to its own file;
3. *join*: :func:`colorrt.io.video.assemble` stream-copies the segments' video packets with the
   source's audio/subtitle packets into the output, written atomically.

With ``temporal=0`` frames are independent: step 1 is skipped and segments start at keyframes.
Ray does not keep the order of blocks by default, so every row carries its index and results are
sorted by it. Paths are made absolute: every worker must see the input, the output folder and the
model at the same paths (a shared file system). See docs/distributed.md.
"""

from colorrt.distributed.ray.cluster import (
    EXTRA,
    ClusterSpec,
    RuntimeSpec,
    check_model,
    ray_errors,
    ray_session,
    ray_specs,
)
from colorrt.distributed.ray.images import ImageColorizer, colorize_files, colorize_folder_ray
from colorrt.distributed.ray.scan import (
    Chunk,
    ChunkScan,
    CutPlan,
    find_cuts,
    keyframe_pts,
    plan_chunks,
    scan_chunk,
)
from colorrt.distributed.ray.segments import (
    FilmJob,
    Segment,
    SegmentResult,
    colorize_segment,
    keyframe_segments,
    plan_segments,
)
from colorrt.distributed.ray.video import (
    MAX_SEGMENT_S,
    MIN_SEGMENT_S,
    SEGMENTS_PER_WORKER,
    RayVideoReport,
    SegmentColorizer,
    colorize_video_ray,
)

__all__ = [
    "EXTRA",
    "MAX_SEGMENT_S",
    "MIN_SEGMENT_S",
    "SEGMENTS_PER_WORKER",
    "Chunk",
    "ChunkScan",
    "ClusterSpec",
    "CutPlan",
    "FilmJob",
    "ImageColorizer",
    "RayVideoReport",
    "RuntimeSpec",
    "Segment",
    "SegmentColorizer",
    "SegmentResult",
    "check_model",
    "colorize_files",
    "colorize_folder_ray",
    "colorize_segment",
    "colorize_video_ray",
    "find_cuts",
    "keyframe_pts",
    "keyframe_segments",
    "plan_chunks",
    "plan_segments",
    "ray_errors",
    "ray_session",
    "ray_specs",
    "scan_chunk",
]
