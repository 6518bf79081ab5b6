"""A video job's resumable work: the folder of segments and states, and the encoder filling it."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.atomic import replaced_when_done, temporary_name
from colorrt.io.video import EncodeSettings, SegmentWriter, VideoInfo
from colorrt.runtime.stages import ColorizedFrame
from colorrt.runtime.temporal import TemporalState


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
        """Write the manifest atomically (not fsynced: a segment costs a rename, not a disk flush)."""
        with replaced_when_done(self.manifest_path) as temp:
            temp.write_text(json.dumps(manifest, indent=1))

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
    """Writes colorized frames into numbered segments and records each finished one in the manifest.

    A segment is encoded under a temporary name and renamed when it is closed, so the work folder
    holds only whole segments under their own names.

    Args:
        work: the job's work folder.
        settings: the output's encoding.
        info: the source video's facts.
        segment_frames: frames per segment.
        manifest: the manifest to update (its ``segments`` are rewritten after each segment).
        segments: the segments finished so far (appended to).
    """

    def __init__(
        self,
        work: WorkDir,
        settings: EncodeSettings,
        info: VideoInfo,
        segment_frames: int,
        manifest: dict[str, Any],
        segments: list[SegmentRecord],
    ) -> None:
        self.work, self.settings, self.info = work, settings, info
        self.segment_frames = segment_frames
        self.manifest = manifest
        self.segments = segments
        self.writer: SegmentWriter | None = None
        self.temp: Path | None = None
        self.current: SegmentRecord | None = None
        self.last_state: TemporalState | None = None

    def write(self, frame: ColorizedFrame) -> None:
        """Encode one frame, starting a segment first and closing it when it is full."""
        tag: FrameTag = frame.tag
        if self.writer is None:
            path = self.work.segment_path(len(self.segments))
            self.temp = temporary_name(path, path.suffix)
            self.writer = SegmentWriter(self.temp, self.settings, self.info, tag.pts)
            self.current = SegmentRecord(path.name, tag.index, 0, tag.pts, tag.pts, None)
        self.writer.write(frame.image, tag.pts)
        self.current.frames += 1
        self.current.last_pts = tag.pts
        self.last_state = frame.state
        if self.current.frames >= self.segment_frames:
            self.close()

    def close(self) -> None:
        """Finish the running segment (if any) and record it."""
        if self.writer is None:
            return
        self.writer.close()
        number = len(self.segments)
        os.replace(self.temp, self.work.segment_path(number))
        if self.last_state is not None:
            state_path = self.work.state_path(number)
            with replaced_when_done(state_path, ".npz") as temp:  # np.savez adds .npz to other names
                np.savez(temp, **self.last_state.to_arrays())
            self.current.state = state_path.name
        self.segments.append(self.current)
        self.manifest["segments"] = [s.to_dict() for s in self.segments]
        self.work.save(self.manifest)
        self.writer, self.temp, self.current = None, None, None

    def abort(self) -> None:
        """Drop the running segment (after an error its last frames may be missing)."""
        if self.writer is not None:
            self.writer.abort()
            self.temp.unlink(missing_ok=True)
            self.writer, self.temp, self.current = None, None, None
