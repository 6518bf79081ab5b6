"""Ray Data adapter: colorize image folders and films on a Ray cluster, one Runtime per actor.

Every worker is a Ray Data actor (:class:`ImageColorizer`, :class:`SegmentColorizer`) that builds one
:class:`~colorrt.Runtime` when it starts and keeps it for every batch, used through
``Dataset.map_batches(cls, compute=ray.data.ActorPoolStrategy(size=N), num_gpus=..., batch_size=...)``.

Images and pages: rows are relative file names; each actor reads its files with
:func:`~colorrt.io.images.read_image`, colorizes them and writes them with
:func:`~colorrt.io.images.write_image` under the same relative name (Ray's own writers would invent
names). The result is the same as :meth:`Runtime.colorize_folder`, file for file.

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

from __future__ import annotations

import math
import os
import pickle
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.engines.registry import BACKENDS, default_model_path
from colorrt.errors import BackendError, ColorRTError, ContractError, InputError, require
from colorrt.io.images import format_for, read_image, write_image
from colorrt.runtime.runtime import BatchReport, Runtime
from colorrt.runtime.temporal import DetectorState, SceneCutDetector, StabilizerState, TemporalState
from colorrt.runtime.video_job import VideoReport

if TYPE_CHECKING:
    from colorrt.io.video import FrameClock

EXTRA = "scale"  # pip extra that installs ray[data]
SEGMENTS_PER_WORKER = 4  # automatic segment length: about this many segments per worker (load balance)
MIN_SEGMENT_S = 5.0  # seconds: automatic segments are at least this long (seek + encoder start-up)
MAX_SEGMENT_S = 120.0  # seconds: and at most this long (work lost when a worker dies)


# --------------------------------------------------------------------------------------------------
# What every worker builds


@dataclass(frozen=True)
class RuntimeSpec:
    """How each worker builds its :class:`Runtime` (sent to the workers, so it holds no engine).

    ``model`` must be a path every worker can read (None: the bundled default model).
    """

    model: str | None = None
    backend: str = "auto"
    device: str = "auto"
    batch_size: int = 4
    contract: ColorContract | str | None = None
    threads: int | None = None

    def build(self) -> Runtime:
        """The Runtime, created on the worker."""
        return Runtime(
            self.model,
            backend=self.backend,
            device=self.device,
            batch_size=self.batch_size,
            contract=self.contract,
            threads=self.threads,
        )


@dataclass(frozen=True)
class ClusterSpec:
    """Where and how wide to run.

    Args:
        address: Ray cluster address (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``); None
            joins the cluster this process is already connected to, or starts a local one.
        workers: actors, each holding one Runtime (one per GPU on a GPU cluster).
        gpus_per_worker: GPUs each actor reserves; None: 1 for ``device="cuda"`` or the TensorRT
            backend, else 0.
        cpus_per_worker: CPUs each actor reserves; a CPU engine gets as many threads.
    """

    address: str | None = None
    workers: int = 2
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"workers must be an integer >= 1, got {self.workers!r}")
        if self.cpus_per_worker <= 0 or (self.gpus_per_worker is not None and self.gpus_per_worker < 0):
            raise InputError(
                f"cpus_per_worker must be > 0 and gpus_per_worker >= 0, got {self.cpus_per_worker} and "
                f"{self.gpus_per_worker}"
            )

    def gpus(self, runtime: RuntimeSpec) -> float:
        """GPUs per actor for this runtime."""
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        on_gpu = runtime.device == "cuda" or runtime.backend == "tensorrt"
        suffix = Path(runtime.model or "").suffix.lower()
        return 1.0 if on_gpu or suffix in BACKENDS["tensorrt"].suffixes else 0.0

    def worker_runtime(self, runtime: RuntimeSpec) -> RuntimeSpec:
        """The runtime spec with CPU threads matched to the CPUs an actor reserves."""
        served = runtime.model is not None and "://" in runtime.model  # a Triton URL: no local threads
        if runtime.threads is not None or served or self.gpus(runtime) > 0:
            return runtime
        return replace(runtime, threads=max(1, int(self.cpus_per_worker)))


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """The ``ray`` module, connected: reuses a running connection, else connects (or starts a local
    instance when ``address`` is None) and disconnects at the end."""
    ray = require("ray", EXTRA, "colorizing on a Ray cluster")
    require("ray.data", EXTRA, "colorizing on a Ray cluster")
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except ConnectionError as e:
        raise InputError(
            f"cannot connect to the Ray cluster at {address!r}: {e}",
            "start it with `ray start --head` on the head node, or pass --address ray://HEAD:10001",
        ) from e
    try:
        yield ray
    finally:
        ray.shutdown()


def check_model(spec: RuntimeSpec) -> None:
    """Fail on the driver, before any actor starts, when the model file is missing or has no contract."""
    if spec.model is not None and "://" in spec.model:
        from colorrt.distributed.triton import TritonURL

        TritonURL.parse(spec.model)  # the server itself is checked by each actor
        return
    path = Path(spec.model) if spec.model is not None else default_model_path()
    if not path.is_file():
        raise InputError(f"no such model file: {path}", "every Ray node must see the model at this path")
    if path.suffix.lower() == ".onnx" and spec.contract is None:
        from colorrt.engines.onnxruntime import describe_onnx

        description = describe_onnx(path)
        if description.contract is None:
            raise ContractError(f"{path}: {description.contract_problem}")


@contextmanager
def _ray_errors(ray: Any) -> Iterator[None]:
    """Re-raise a colorrt error that failed a Ray task or actor as itself (the CLI prints it cleanly)."""
    try:
        yield
    except ray.exceptions.RayError as e:
        cause = _colorrt_cause(e)
        if cause is not None:
            raise cause from e
        raise BackendError(
            f"the Ray job failed: {_reason(e)}", "see the Ray worker logs (`ray logs`, or the dashboard)"
        ) from e


def _reason(error: BaseException) -> str:
    """The colorrt error named in a Ray error's text (an actor that died in its constructor carries
    only text), else the text's first line."""
    text = str(error).strip()
    found = re.findall(r"colorrt\.errors\.(\w+): (.+)", text)
    if found:
        return f"{found[-1][0]}: {found[-1][1]}"
    return text.splitlines()[0] if text else type(error).__name__


def _colorrt_cause(error: BaseException) -> ColorRTError | None:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ColorRTError):
            return error
        cause = getattr(error, "cause", None)  # RayTaskError keeps the task's exception here
        if isinstance(cause, ColorRTError):
            return cause
        error = error.__cause__ or error.__context__
    return None


def ray_specs(
    model: str | os.PathLike[str] | None,
    *,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float | None = None,
    cpus_per_worker: float = 1.0,
    backend: str = "auto",
    device: str = "auto",
    batch_size: int = 4,
    contract: ColorContract | str | None = None,
    threads: int | None = None,
) -> tuple[ClusterSpec, RuntimeSpec]:
    """Where and how wide to run, and what each worker builds: the keyword arguments shared by
    :func:`colorize_folder_ray` and :func:`colorize_video_ray`.

    ``address``, ``workers``, ``gpus_per_worker`` and ``cpus_per_worker`` are :class:`ClusterSpec`'s;
    ``model`` and the others are :class:`Runtime`'s.
    """
    cluster = ClusterSpec(address, workers, gpus_per_worker, cpus_per_worker)
    return cluster, RuntimeSpec(_model_path(model), backend, device, batch_size, contract, threads)


def _map_options(ray: Any, cluster: ClusterSpec, runtime: RuntimeSpec, **extra: Any) -> dict[str, Any]:
    """``map_batches`` keywords for an actor pool of ``cluster.workers`` Runtimes."""
    options = {
        "compute": ray.data.ActorPoolStrategy(size=cluster.workers, **extra),
        "num_cpus": cluster.cpus_per_worker,
        "batch_format": "numpy",
    }
    gpus = cluster.gpus(runtime)
    if gpus > 0:
        options["num_gpus"] = gpus
    return options


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().absolute()


# --------------------------------------------------------------------------------------------------
# Images and pages


class ImageColorizer:
    """Ray Data actor: colorizes files named by the rows of a batch, writing them under ``dst_dir``.

    Batches are ``{"index": int array, "path": relative names}``; returns ``{"index", "error"}``
    with an empty error for every file written.
    """

    def __init__(self, runtime: RuntimeSpec, src_dir: str, dst_dir: str) -> None:
        self.runtime = runtime.build()
        self.src_dir, self.dst_dir = Path(src_dir), Path(dst_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [str(name) for name in batch["path"]]
        pairs = [(self.src_dir / name, self.dst_dir / name) for name in names]
        errors = colorize_files(self.runtime, pairs)
        return {"index": np.asarray(batch["index"]), "error": np.array(errors, dtype=object)}


def colorize_files(runtime: Runtime, pairs: Sequence[tuple[Path, Path]]) -> list[str]:
    """Colorize ``(src, dst)`` files with one runtime; one entry per pair: "" or why it failed."""
    errors = [""] * len(pairs)
    images: dict[int, np.ndarray] = {}
    for i, (src, dst) in enumerate(pairs):
        try:
            format_for(dst)  # an unwritable suffix fails before any work
            images[i] = read_image(src)
        except ColorRTError as e:
            errors[i] = str(e)
    for i, colour in _colorize_each(runtime, images).items():
        if isinstance(colour, str):
            errors[i] = colour
            continue
        try:
            write_image(pairs[i][1], colour)
        except ColorRTError as e:
            errors[i] = str(e)
    return errors


def _colorize_each(runtime: Runtime, images: dict[int, np.ndarray]) -> dict[int, np.ndarray | str]:
    """Colorize as one batch; when that fails, image by image so the failure is pinned on its file."""
    keys = list(images)
    try:
        return dict(zip(keys, runtime.colorize_batch([images[k] for k in keys]), strict=True))
    except ColorRTError:
        results: dict[int, np.ndarray | str] = {}
        for key in keys:
            try:
                results[key] = runtime.colorize(images[key])
            except ColorRTError as e:
                results[key] = str(e)
        return results


def colorize_folder_ray(
    model: str | os.PathLike[str] | None,
    src_dir: str | os.PathLike[str],
    dst_dir: str | os.PathLike[str],
    **options: Any,
) -> BatchReport:
    """Colorize every image under ``src_dir`` into ``dst_dir`` (same relative names) on Ray.

    Same outputs and the same report as :meth:`Runtime.colorize_folder`: unreadable or unwritable
    files are listed in ``report.failed`` and the run goes on. ``options``: where and how wide to
    run and what each worker builds, see :func:`ray_specs`.
    """
    from colorrt.runtime.runtime import check_distinct, images_outside

    cluster, spec = ray_specs(model, **options)
    src_dir, dst_dir = _absolute(src_dir), _absolute(dst_dir)
    check_distinct(src_dir, dst_dir)
    if dst_dir.exists() and not dst_dir.is_dir():
        raise InputError(f"output {dst_dir} is a file, but the input is a folder", "pass an output folder")
    files = images_outside(src_dir, dst_dir)
    report, start = BatchReport(), time.perf_counter()
    rows = _image_rows(files, src_dir, dst_dir, report)
    if rows:
        check_model(spec)
        with ray_session(cluster.address) as ray, _ray_errors(ray):
            _quiet_progress(ray)
            blocks = max(1, math.ceil(len(rows) / spec.batch_size))
            dataset = ray.data.from_items(rows, override_num_blocks=blocks)
            results = dataset.map_batches(
                ImageColorizer,
                fn_constructor_kwargs={
                    "runtime": cluster.worker_runtime(spec),
                    "src_dir": str(src_dir),
                    "dst_dir": str(dst_dir),
                },
                batch_size=spec.batch_size,
                **_map_options(ray, cluster, spec),
            ).take_all()
        for row in sorted(results, key=lambda r: int(r["index"])):
            if row["error"]:
                report.failed.append((src_dir / files[int(row["index"])], str(row["error"])))
            else:
                report.done += 1
    report.failed.sort()
    report.seconds = time.perf_counter() - start
    return report


def _image_rows(files: list[Path], src_dir: Path, dst_dir: Path, report: BatchReport) -> list[dict]:
    """One row per file; an output that would land on an input file fails here, before any work."""
    inputs = {(src_dir / f).resolve() for f in files}
    rows = []
    for index, name in enumerate(files):
        if (dst_dir / name).resolve() in inputs:
            report.failed.append((src_dir / name, f"output {dst_dir / name} would overwrite an input file"))
            continue
        rows.append({"index": index, "path": name.as_posix()})
    return rows


def _model_path(model: str | os.PathLike[str] | None) -> str | None:
    if model is None:
        return None
    text = os.fspath(model)
    if re.match(r"(https?|grpcs?):/", text):  # a served model (triton backend); Path() folds "//" to "/"
        return re.sub(r"^([a-z]+):/+", r"\1://", text)
    return str(_absolute(text))


def _quiet_progress(ray: Any) -> None:
    """Ray Data's per-operator bars flood a log; the overall bar is kept."""
    context = ray.data.DataContext.get_current()
    context.enable_operator_progress_bars = False


# --------------------------------------------------------------------------------------------------
# Films: plan


@dataclass(frozen=True)
class Chunk:
    """Frames with ``start_pts <= pts < end_pts`` (None: from the first / to the last frame)."""

    number: int
    start_pts: int | None
    end_pts: int | None


@dataclass
class ChunkScan:
    """Scene-cut scores of one chunk: ``scores[i]`` compares frame i with frame i-1 of the chunk."""

    number: int
    pts: list[int]
    scores: list[float]
    first: np.ndarray | None  # detector features of the first and last frames (joined across chunks)
    last: np.ndarray | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """Frames ``first_index`` .. ``first_index + frames - 1`` colorized by one actor into ``file``.

    ``detector`` is the scene-cut detector's ``(since_cut, recent scores)`` just before the segment's
    first frame; the actor decodes the frame before it to restore the detector's ``previous``
    features. None for a segment starting at frame 0 or when smoothing is off.
    """

    number: int
    file: str
    start_pts: int | None  # None: from the first frame
    end_pts: int | None  # None: to the end
    first_index: int = 0
    frames: int | None = None  # None: not known before decoding (smoothing off)
    previous_pts: int | None = None  # pts of the frame before the segment (read for its features)
    detector: tuple[int, tuple[float, ...]] | None = None


@dataclass
class SegmentResult:
    """What an actor did with one segment."""

    number: int
    file: str
    frames: int
    first_pts: int | None
    last_pts: int | None
    cuts: list[int]
    warnings: list[str]
    seconds: float


def keyframe_pts(src: str | os.PathLike[str]) -> list[int]:
    """Presentation timestamps of the video stream's keyframes, as :class:`VideoReader` gives them.

    Read from the packets where the container stores pts. AVI stores none: there the decoder runs
    from each keyframe packet until the keyframe comes out (a few packets), since its pts is the
    dts of the packet that releases it and an open-GOP keyframe is shown after the B-frames that
    follow it. A keyframe released only when the decoder drains (the file's last few packets) is
    left out: its time is counted, not read, and no chunk needs to start there.
    """
    from colorrt.io.video import FrameClock, open_reader_input, probe

    step = probe(src).frame_duration
    found, clock = set(), None  # clock: while decoding from a keyframe with no stored pts
    with open_reader_input(src) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                found.add(int(packet.pts))
            elif packet.is_keyframe and packet.size:
                stream.codec_context.flush_buffers()  # decode from here, as a chunk reader seeking here does
                clock = FrameClock(step)
            if clock is not None and (pts := _released_keyframe(packet, clock)) is not None:
                found.add(pts)
                clock = None
    return sorted(found)


def _released_keyframe(packet: Any, clock: FrameClock) -> int | None:
    """The pts of the keyframe among the frames this packet releases, if it is there."""
    import av

    try:
        frames = packet.decode()
    except av.error.FFmpegError:
        return None  # damaged: the chunk reader reports it; the next keyframe can start a chunk
    for frame in frames:
        pts = clock(frame)
        if frame.key_frame:
            return pts if frame.dts is not None else None
    return None


def plan_chunks(keyframes: Sequence[int], time_base: Fraction, seconds: float) -> list[Chunk]:
    """Keyframe-aligned chunks at least ``seconds`` long (the last one takes the rest)."""
    starts: list[int | None] = [None]
    last = keyframes[0] if keyframes else 0
    for pts in keyframes[1:]:
        if (pts - last) * time_base >= seconds:
            starts.append(pts)
            last = pts
    ends = [*starts[1:], None]
    return [Chunk(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def _frames_in(src: Path, start_pts: int | None, end_pts: int | None, start_index: int = 0) -> Iterator[Any]:
    """Decoded frames with ``start_pts <= pts < end_pts`` (the reader closes when this stops)."""
    from colorrt.io.video import VideoReader

    frames = iter(VideoReader(src, start_pts=start_pts, start_index=start_index))
    try:
        for frame in frames:
            if end_pts is not None and frame.pts >= end_pts:
                return
            yield frame
    finally:
        frames.close()


def scan_chunk(src: str | os.PathLike[str], chunk: Chunk) -> ChunkScan:
    """Decode one chunk and score every frame against the previous one, as the scene-cut detector does."""
    import warnings

    from colorrt.io.video import VideoDamageWarning

    detector = SceneCutDetector()
    scan = ChunkScan(chunk.number, [], [], None, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VideoDamageWarning)
        for frame in _frames_in(Path(src), chunk.start_pts, chunk.end_pts):
            features = detector.features(frame.image)
            if scan.last is None:
                scan.first = features
            else:
                scan.scores.append(SceneCutDetector.score(scan.last, features))
            scan.pts.append(frame.pts)
            scan.last = features
    scan.warnings = [str(w.message) for w in caught if issubclass(w.category, VideoDamageWarning)]
    return scan


class _ScoreReplay(SceneCutDetector):
    """The scene-cut detector's decision rule run on precomputed scores (its "features" are the scores)."""

    @staticmethod
    def score(previous: Any, current: Any) -> float:
        return float(current)


@dataclass(frozen=True)
class CutPlan:
    """Every frame's pts, the frames that start a scene, and the detector state just before each."""

    pts: list[int]
    cuts: list[int]
    states: dict[int, tuple[int, tuple[float, ...]]]


def find_cuts(scans: Sequence[ChunkScan], threshold: float | None, min_scene_len: int) -> CutPlan:
    """Replay scene-cut detection over the whole film from the chunks' scores, in order."""
    pts: list[int] = []
    scores: list[float] = []
    last = None
    for scan in sorted(scans, key=lambda s: s.number):
        if not scan.pts:
            continue
        if pts and scan.pts[0] <= pts[-1]:
            raise ColorRTError(
                f"chunk {scan.number} starts at pts {scan.pts[0]}, not after the previous chunk's {pts[-1]}",
                "the video's timestamps are not increasing; colorize it on one machine (without --ray)",
            )
        scores.append(0.0 if last is None else SceneCutDetector.score(last, scan.first))
        scores.extend(scan.scores)
        pts.extend(scan.pts)
        last = scan.last
    replay = _ScoreReplay(threshold, min_scene_len)
    cuts, states = [], {}
    for index, score in enumerate(scores):
        before = replay.state()
        if replay.update(score):
            cuts.append(index)
            states[index] = (before.since_cut, tuple(before.recent))
    return CutPlan(pts, cuts, states)


def plan_segments(plan: CutPlan, time_base: Fraction, seconds: float, suffix: str) -> list[Segment]:
    """Segments that start at frame 0 or at a scene cut, each at least ``seconds`` long when it can be."""
    starts = [0]
    for cut in plan.cuts:
        if (plan.pts[cut] - plan.pts[starts[-1]]) * time_base >= seconds:
            starts.append(cut)
    segments = []
    for number, (first, end) in enumerate(zip(starts, [*starts[1:], len(plan.pts)], strict=True)):
        segments.append(
            Segment(
                number=number,
                file=_segment_name(number, suffix),
                start_pts=None if first == 0 else plan.pts[first],
                end_pts=None if end == len(plan.pts) else plan.pts[end],
                first_index=first,
                frames=end - first,
                previous_pts=None if first == 0 else plan.pts[first - 1],
                detector=None if first == 0 else plan.states[first],
            )
        )
    return segments


def keyframe_segments(chunks: Sequence[Chunk], suffix: str) -> list[Segment]:
    """Without smoothing every frame stands alone: segments are the keyframe chunks."""
    return [Segment(c.number, _segment_name(c.number, suffix), c.start_pts, c.end_pts) for c in chunks]


def _segment_name(number: int, suffix: str) -> str:
    return f"segment_{number:05d}{suffix}"


# --------------------------------------------------------------------------------------------------
# Films: colorize


@dataclass(frozen=True)
class FilmJob:
    """What every segment actor needs to know about the film (sent to the workers)."""

    src: Path
    work_dir: Path
    info: Any  # colorrt.io.video.VideoInfo
    settings: Any  # colorrt.io.video.EncodeSettings
    options: Any  # colorrt.runtime.stream.StreamOptions


def colorize_segment(runtime: Runtime, job: FilmJob, segment: Segment) -> SegmentResult:
    """Colorize one segment into ``job.work_dir / segment.file`` (written atomically)."""
    import warnings

    from colorrt.io.video import SegmentWriter, VideoDamageWarning

    start = time.perf_counter()
    result = SegmentResult(segment.number, segment.file, 0, None, None, [], [], 0.0)
    path = job.work_dir / segment.file
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    writer = None
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            closing(_colorized_frames(runtime, job, segment)) as colorized,
        ):
            warnings.simplefilter("always", VideoDamageWarning)
            for frame in colorized:
                index, pts = frame.tag
                if writer is None:
                    writer = SegmentWriter(temp, job.settings, job.info, pts)
                    result.first_pts = pts
                writer.write(frame.image, pts)
                result.frames += 1
                result.last_pts = pts
                if frame.cut:
                    result.cuts.append(index)
        result.warnings = [str(w.message) for w in caught if issubclass(w.category, VideoDamageWarning)]
        if writer is not None:
            writer.close()
            os.replace(temp, path)
    except BaseException:
        if writer is not None:
            writer.abort()
        temp.unlink(missing_ok=True)
        raise
    result.seconds = time.perf_counter() - start
    return result


def _colorized_frames(runtime: Runtime, job: FilmJob, segment: Segment) -> Iterator[Any]:
    """The segment's frames through the streaming pipeline, started from the recorded state."""
    from colorrt.runtime.stream import ColorizeStages, Pipeline

    read_from = segment.start_pts if segment.detector is None else segment.previous_pts
    first_index = segment.first_index - (segment.detector is not None)
    frames = _frames_in(job.src, read_from, segment.end_pts, first_index)
    try:
        state = _initial_state(segment, frames) if segment.detector is not None else None
        stages = ColorizeStages(runtime.engine, runtime.batch_size, job.options, state)
    except BaseException:
        frames.close()
        raise
    # the pipeline iterates (and closes) the source in its own thread
    yield from Pipeline(_tagged(frames), stages.stages(), queue_size=job.options.queue_size)


def _tagged(frames: Iterator[Any]) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    try:
        for frame in frames:
            yield (frame.index, frame.pts), frame.image
    finally:
        frames.close()


def _initial_state(segment: Segment, frames: Iterator[Any]) -> TemporalState:
    """Detector state before the segment: recorded counters + the features of the frame before it."""
    previous = next(frames, None)
    if previous is None or previous.pts != segment.previous_pts:
        found = None if previous is None else previous.pts
        raise ColorRTError(
            f"segment {segment.number}: expected the frame at pts {segment.previous_pts} before it, "
            f"decoded {found}",
            "the video decodes differently when seeking; colorize it on one machine (without --ray)",
        )
    since_cut, recent = segment.detector
    detector = DetectorState(SceneCutDetector().features(previous.image), since_cut, tuple(recent))
    # the segment's first frame is a cut, where the smoother restarts: its past does not matter
    return TemporalState(detector, StabilizerState(None, None))


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
    src, dst = _absolute(src), _absolute(dst)
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
        with ray_session(cluster.address) as ray, _ray_errors(ray):
            _quiet_progress(ray)
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
        **_map_options(ray, cluster, spec, max_tasks_in_flight_per_actor=1),
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


# --------------------------------------------------------------------------------------------------
# Command line (`colorrt colorize ... --ray`)


# colorize's video flags, passed on to colorize_video_ray
