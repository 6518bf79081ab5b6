"""A video job's resumable work: the folder of segments and states, and the encoder filling it."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorrt.io.video import SegmentWriter
from colorrt.runtime.stages import ColorizedFrame
from colorrt.runtime.temporal import TemporalState

if TYPE_CHECKING:
    from colorrt.runtime.video_job import VideoJob


@dataclass(frozen=True)
class FrameTag:
    """Where a frame sits in the film: its index and its timestamp (in the stream's time base)."""

    index: int
    pts: int


@dataclass
class SegmentRecord:
    """A finished segment as the manifest records it."""

    file: str
    first_index: int
    frames: int
    first_pts: int
    last_pts: int
    state: str | None  # .npz with the temporal state after the segment's last frame

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class WorkDir:
    """The folder holding a job's segments, temporal states and manifest."""

    def __init__(self, dst: Path) -> None:
        self.path = dst.parent / f".{dst.name}.colorrt"
        self.manifest_path = self.path / "manifest.json"
        self.suffix = dst.suffix

    def load(self) -> dict[str, Any] | None:
        """The manifest, or None when there is no (readable) one."""
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, manifest: dict[str, Any]) -> None:
        """Write the manifest atomically."""
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.manifest_path)

    def reset(self) -> None:
        """Empty the folder (a fresh start)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)

    def segment_path(self, number: int) -> Path:
        return self.path / f"segment_{number:05d}{self.suffix}"

    def state_path(self, number: int) -> Path:
        return self.path / f"state_{number:05d}.npz"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class SegmentEncoder:
    """Writes colorized frames into numbered segments and records each finished one in the manifest."""

    def __init__(self, job: VideoJob, manifest: dict[str, Any], segments: list[SegmentRecord]) -> None:
        self.job = job
        self.manifest = manifest
        self.segments = segments
        self.writer: SegmentWriter | None = None
        self.current: SegmentRecord | None = None
        self.last_state: TemporalState | None = None

    def write(self, frame: ColorizedFrame) -> None:
        tag: FrameTag = frame.tag
        if self.writer is None:
            number = len(self.segments)
            path = self.job.work.segment_path(number)
            self.writer = SegmentWriter(path, self.job.settings, self.job.info, tag.pts)
            self.current = SegmentRecord(path.name, tag.index, 0, tag.pts, tag.pts, None)
        self.writer.write(frame.image, tag.pts)
        self.current.frames += 1
        self.current.last_pts = tag.pts
        self.last_state = frame.state
        if self.current.frames >= self.job.segment_frames:
            self.close()

    def close(self) -> None:
        """Finish the running segment (if any) and record it."""
        if self.writer is None:
            return
        self.writer.close()
        number = len(self.segments)
        if self.last_state is not None:
            state_path = self.job.work.state_path(number)
            np.savez(state_path, **self.last_state.to_arrays())
            self.current.state = state_path.name
        self.segments.append(self.current)
        self.manifest["segments"] = [s.to_dict() for s in self.segments]
        self.job.work.save(self.manifest)
        self.writer, self.current = None, None

    def abort(self) -> None:
        """Drop the running segment (after an error its last frames may be missing)."""
        if self.writer is not None:
            self.writer.abort()
            self.job.work.segment_path(len(self.segments)).unlink(missing_ok=True)
            self.writer, self.current = None, None
