"""Colorize a video file: decode → colorize (pipelined) → encode in segments → assemble, resumable.

The job writes its work next to the output, in a hidden folder ``.<output name>.colorrt/``:
encoded segments of about ``segment_seconds`` each, the temporal state after each one and a
``manifest.json`` naming the source, the settings and the finished segments. When every frame is
done the segments and the source's audio/subtitles are stream-copied into a temporary file that is
renamed onto the output, and the work folder is removed. Interrupted (``cancel()``, Ctrl-C, an
error), the finished segments stay; a cancelled job also leaves ``<output stem>.partial<suffix>``,
a playable file of what was done. ``resume=True`` continues after the last finished segment with the
temporal state saved there, so the final file matches an uninterrupted run in frame count, timestamps
and audio packets.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.atomic import replaced_when_done
from colorrt.errors import InputError
from colorrt.io.video import (
    EncodeSettings,
    SegmentPart,
    VideoInfo,
    VideoReader,
    assemble,
    check_output,
    encode_settings,
    probe,
)
from colorrt.progress import progress_bar
from colorrt.runtime.gpu_path import colorize_stages
from colorrt.runtime.options import DECODERS, SEGMENT_SECONDS, VideoOptions
from colorrt.runtime.queues import Pipeline
from colorrt.runtime.segments import FrameTag, SegmentEncoder, SegmentRecord, WorkDir
from colorrt.runtime.stream import rendering
from colorrt.runtime.temporal import TemporalState

__all__ = [
    "DECODERS",
    "MANIFEST_VERSION",
    "DiscardedJobWarning",
    "SEGMENT_SECONDS",
    "VideoJob",
    "VideoOptions",
    "VideoReport",
    "check_video_paths",
    "colorize_video",
]

MANIFEST_VERSION = 1


class DiscardedJobWarning(UserWarning):
    """An unfinished job's work folder was discarded: the run started over (no ``resume``)."""

    noun = "unfinished jobs discarded"


@dataclass
class VideoReport:
    """What a video job did."""

    src: Path
    dst: Path  # the output; it exists only when ``complete``
    complete: bool
    frames: int  # frames in the output (or in the partial file)
    frames_this_run: int  # frames colorized by this call (fewer than ``frames`` after a resume)
    resumed_from: int  # frame index this run started at (0 unless resumed)
    seconds: float
    codec: str
    scene_cuts: list[int] = field(default_factory=list)  # frame indices starting a new scene (this run)
    warnings: list[str] = field(default_factory=list)  # damaged input, with timestamps
    partial: Path | None = None  # playable file of the finished part, after a cancel
    work_dir: Path | None = None  # kept for --resume when the job did not complete

    @property
    def fps(self) -> float:
        """Frames colorized per second by this run, end to end."""
        return self.frames_this_run / self.seconds if self.seconds > 0 else 0.0


class VideoJob:
    """One colorization of a video file; :meth:`run` does it, :meth:`cancel` stops it from any thread.

    Args (also the keyword arguments of :func:`colorize_video`):
        runtime: a :class:`colorrt.Runtime` (anything with ``engine`` and ``batch_size``).
        src: input video (never modified).
        dst: output video; the suffix picks the container (.mp4, .mkv, .mov, .webm, ...).
        options: a :class:`~colorrt.runtime.options.VideoOptions`; its defaults when None.
        on_progress: called after each encoded frame with (frames done, estimated total or None).
        **keywords: :class:`~colorrt.runtime.options.VideoOptions` fields, replacing those of
            ``options``: ``codec``, ``crf``, ``bitrate``, ``pix_fmt``, ``preset``, ``temporal``
            (chroma smoothing strength in [0, 1); 0 disables smoothing), ``scene_threshold``,
            ``resume``, ``decoder`` (``"pyav"`` or ``"dali"``), ``progress``, ``segment_seconds``,
            ``queue_size``.
    """

    def __init__(
        self,
        runtime: Any,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        options: VideoOptions | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
        **keywords: Any,
    ) -> None:
        self.runtime = runtime
        self.on_progress = on_progress
        self.src, self.dst = Path(src), Path(dst)
        check_video_paths(self.src, self.dst)
        self.options = VideoOptions.merged(options, **keywords)
        self.stream_options = self.options.stream_options()
        self.info: VideoInfo = probe(self.src)
        wide = self.options.side_by_side  # the output's frames: grey input | result
        self.out_info = dataclasses.replace(self.info, width=self.info.width * 2) if wide else self.info
        self.settings: EncodeSettings = encode_settings(
            self.dst, size=(self.info.height, self.out_info.width), **self.options.encoding()
        )
        self.batch_size = int(runtime.batch_size)
        self.segment_frames = _segment_frames(self.options.segment_seconds, self.info, self.batch_size)
        self.work = WorkDir(self.dst)
        self._cancel = threading.Event()
        self._pipeline: Pipeline | None = None

    def cancel(self) -> None:
        """Stop the job: the running segment is closed, a partial file written, and :meth:`run` returns."""
        self._cancel.set()
        if self._pipeline is not None:
            self._pipeline.cancel()

    def run(self) -> VideoReport:
        """Colorize the whole video (or the rest of it, when resuming)."""
        start_time = time.perf_counter()
        check_output(self.dst, self.settings, self.out_info)
        manifest = self._open_manifest()
        segments = [SegmentRecord(**s) for s in manifest["segments"]]
        done = sum(s.frames for s in segments)
        report = VideoReport(
            self.src, self.dst, False, done, 0, done, 0.0, self.settings.codec, work_dir=self.work.path
        )
        reader = self._reader(segments)
        stages = colorize_stages(  # on the device when the runtime takes the GPU path
            self.runtime,
            self.batch_size,
            self.stream_options,
            self._initial_state(segments),
            **rendering(self.runtime),
        )
        source = ((FrameTag(f.index, f.pts), f.image) for f in reader)
        self._pipeline = Pipeline(source, stages.stages(), queue_size=self.stream_options.queue_size)
        if self._cancel.is_set():  # cancel() came before the pipeline existed
            self._pipeline.cancel()
        encoder = SegmentEncoder(
            self.work, self.settings, self.out_info, self.segment_frames, manifest, segments
        )
        try:
            interrupted = self._encode_all(encoder, report)
        finally:
            report.warnings = list(getattr(reader, "warnings", []))
        report.frames = sum(s.frames for s in segments)
        if self._pipeline.cancelled or interrupted is not None:
            report.partial = self._write_partial(segments)
            report.seconds = time.perf_counter() - start_time
            if interrupted is not None:
                raise interrupted
            return report
        self._finish(segments)
        report.complete, report.work_dir = True, None
        report.seconds = time.perf_counter() - start_time
        return report

    def _encode_all(self, encoder: SegmentEncoder, report: VideoReport) -> KeyboardInterrupt | None:
        """Encode the pipeline's frames into segments; a Ctrl-C is returned (to re-raise), not raised."""
        done = report.frames
        interrupted = None
        try:
            show = self.options.progress
            with progress_bar(self.info.frames, enabled=show, desc="colorize", unit="frame") as bar:
                bar.update(done)
                for frame in self._pipeline:
                    encoder.write(frame)
                    report.frames_this_run += 1
                    if frame.cut:
                        report.scene_cuts.append(frame.tag.index)
                    bar.update(1)
                    if self.on_progress is not None:
                        self.on_progress(done + report.frames_this_run, self.info.frames)
        except KeyboardInterrupt as e:  # Ctrl-C: stop like cancel(), keep what is done
            self._pipeline.cancel()
            interrupted = e
        except BaseException:
            self._pipeline.close()
            encoder.abort()
            raise
        try:
            encoder.close()
        except BaseException:
            encoder.abort()
            raise
        return interrupted

    def _open_manifest(self) -> dict[str, Any]:
        identity = self._identity()
        existing = self.work.load() if self.work.path.exists() else None
        if self.options.resume and existing is not None:
            if existing.get("identity") != identity:
                raise InputError(
                    f"cannot resume into {self.dst}: the unfinished job in {self.work.path} was started with "
                    "another input, model or settings",
                    "resume with the same input, model and options, or run without --resume to start over",
                )
            for segment in existing["segments"]:
                if not (self.work.path / segment["file"]).is_file():
                    raise InputError(
                        f"cannot resume: segment {segment['file']} of {self.work.path} is missing",
                        "run without --resume to start over",
                    )
            return existing
        if existing is not None and not self.options.resume:
            warnings.warn(
                f"starting over: the unfinished job in {self.work.path} is discarded (pass resume=True / "
                "--resume to continue it)",
                DiscardedJobWarning,
                stacklevel=3,
            )
        self.work.reset()
        manifest = {"version": MANIFEST_VERSION, "identity": identity, "segments": []}
        self.work.save(manifest)
        return manifest

    def _identity(self) -> dict[str, Any]:
        """What must not change between an interrupted run and its resumption."""
        stat = self.src.stat()
        engine = self.runtime.engine
        model = rendering(self.runtime)
        identity = {
            "source": {"path": str(self.src.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
            "encode": self.settings.to_dict(),
            "model": {
                "engine": getattr(engine, "name", type(engine).__name__),
                "path": str(getattr(engine, "path", "")),
                "contract": model["contract"].to_dict(),
                "strength": model["strength"],
            },
            "temporal": self.options.temporal,
            "side_by_side": self.options.side_by_side,
            "scene_threshold": self.options.scene_threshold,
            "batch_size": self.batch_size,
            "segment_frames": self.segment_frames,
        }
        return json.loads(json.dumps(identity))  # as it reads back from the manifest (tuples -> lists)

    def _reader(self, segments: list[SegmentRecord]) -> Any:
        start_pts = segments[-1].last_pts + 1 if segments else None
        start_index = segments[-1].first_index + segments[-1].frames if segments else 0
        if self.options.decoder == "dali":
            from colorrt.io.dali import DaliVideoReader

            return DaliVideoReader(self.src, start_pts=start_pts, start_index=start_index)
        return VideoReader(self.src, start_pts=start_pts, start_index=start_index)

    def _initial_state(self, segments: list[SegmentRecord]) -> TemporalState | None:
        if not segments or segments[-1].state is None:
            return None
        with np.load(self.work.path / segments[-1].state) as arrays:
            return TemporalState.from_arrays(dict(arrays))

    def _parts(self, segments: list[SegmentRecord]) -> list[SegmentPart]:
        return [SegmentPart(self.work.path / s.file, s.first_pts) for s in segments]

    def _write_partial(self, segments: list[SegmentRecord]) -> Path | None:
        if not segments:
            return None
        partial = self.dst.with_name(f"{self.dst.stem}.partial{self.dst.suffix}")
        with replaced_when_done(partial, self.dst.suffix) as temp:
            assemble(self._parts(segments), self.src, temp, self.info)
        return partial

    def _finish(self, segments: list[SegmentRecord]) -> None:
        with replaced_when_done(self.dst, self.dst.suffix) as temp:
            assemble(self._parts(segments), self.src, temp, self.info)
        self.dst.with_name(f"{self.dst.stem}.partial{self.dst.suffix}").unlink(missing_ok=True)
        self.work.remove()


def colorize_video(
    runtime: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    options: VideoOptions | None = None,
    cancel: threading.Event | None = None,
    **keywords: Any,
) -> VideoReport:
    """Colorize a video file into ``dst``: same frames, timestamps, audio, subtitles and metadata.

    Args:
        runtime: a :class:`colorrt.Runtime`.
        src: input video (never modified).
        dst: output video; the suffix picks the container (.mp4, .mkv, .mov, .webm, ...).
        options: a :class:`~colorrt.runtime.options.VideoOptions`; its defaults when None.
        cancel: an event that, once set, stops the job (a partial file and a resume point are kept).
        **keywords: :class:`VideoJob`'s keyword arguments: ``on_progress`` and the
            :class:`~colorrt.runtime.options.VideoOptions` fields (``codec``, ``crf``, ``preset``,
            ``temporal``, ``resume``, ``progress``, ``segment_seconds``, ...), replacing those of
            ``options``.

    Returns:
        A :class:`VideoReport`; ``complete`` is False after a cancel.
    """
    job = VideoJob(runtime, src, dst, options=options, **keywords)
    if cancel is None:
        return job.run()
    watcher = threading.Thread(target=_watch, args=(cancel, job), daemon=True, name="colorrt-cancel")
    watcher.start()
    try:
        return job.run()
    finally:
        job._cancel.set()  # ends the watcher


def _watch(event: threading.Event, job: VideoJob) -> None:
    while not job._cancel.is_set():
        if event.wait(0.05):
            job.cancel()
            return


def _segment_frames(seconds: float, info: VideoInfo, batch_size: int) -> int:
    """Frames per segment: about ``seconds`` of video, a whole number of batches."""
    rate = float(info.rate or 25)
    batches = max(1, round(seconds * rate / batch_size))
    return batches * batch_size


def check_video_paths(src: Path, dst: Path) -> None:
    """The input exists and the output is neither the input itself nor a folder."""
    if not src.exists():
        raise InputError(f"no such video file: {src}", "check the path")
    if src.resolve() == dst.resolve() or (dst.exists() and os.path.samefile(src, dst)):
        raise InputError(
            f"the output {dst} is the input video itself",
            "write to another file: colorrt never modifies its input",
        )
    if dst.exists() and dst.is_dir():
        raise InputError(f"the output {dst} is a folder", "give a file name such as film_color.mkv")
