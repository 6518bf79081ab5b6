"""GPU video decoding with NVIDIA DALI (``decoder="dali"``): NVDEC decodes, frames stay on the GPU.

DALI's ``fn.experimental.inputs.video`` (device ``"mixed"``: demuxing on the CPU, decoding on NVDEC)
is fed the encoded file once and returns consecutive sequences of RGB frames (F, H, W, 3) uint8 on
the GPU. Each frame is handed on as a CuPy array (a device-to-device copy: DALI reuses its output
buffers at the next run), never through host memory. DALI reports no timestamps for this operator,
so the presentation timestamps come from PyAV demuxing the same file (packets only; for AVI, which
stores no pts, the first few packets are decoded to find the decoder's delay).
DALI takes the encoded file as one buffer: it is memory-mapped here, and DALI copies it (the film's
compressed size in memory).

Status: written against the documented DALI API (``nvidia.dali.fn.experimental.inputs.video``,
``Pipeline.feed_input``, ``TensorGPU.__cuda_array_interface__``) and not yet run on a GPU; its test
is skipped where DALI or a CUDA device is missing.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.errors import InputError, require
from colorrt.io.video import DecodedFrame, FrameClock, VideoDamageWarning, open_reader_input, probe

SEQUENCE_LENGTH = 16  # frames DALI decodes per run
NVDEC_CODECS = ("h264", "hevc", "vp8", "vp9", "mjpeg", "av1", "mpeg4")  # what DALI's video decoders accept


class DaliVideoReader:
    """Decodes a video on the GPU; yields :class:`~colorrt.io.video.DecodedFrame` with CuPy images.

    Args:
        path: the video file (read-only).
        start_pts: first frame to return (resuming); earlier frames are decoded and dropped.
        start_index: index given to that first frame.
        device_id: CUDA device to decode on.
        sequence_length: frames per DALI run.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        start_pts: int | None = None,
        start_index: int = 0,
        device_id: int = 0,
        sequence_length: int = SEQUENCE_LENGTH,
    ) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        if self.info.codec not in NVDEC_CODECS:
            raise InputError(
                f"DALI cannot decode {self.info.codec} video ({self.path.name})",
                f"use decoder='pyav'; DALI decodes {', '.join(NVDEC_CODECS)}",
            )
        self.start_pts = start_pts
        self.start_index = start_index
        self.device_id = device_id
        self.sequence_length = sequence_length
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[DecodedFrame]:
        require("nvidia.dali", "gpu", "GPU video decoding (decoder='dali')")
        cupy = require("cupy", "gpu", "GPU video decoding (decoder='dali')")
        timestamps = presentation_timestamps(self.path)
        pipe = self._pipeline()
        pipe.feed_input("video", [np.memmap(self.path, dtype=np.uint8, mode="r")])
        time_base = self.info.time_base
        index, position = self.start_index, 0
        skip = self.start_pts is not None
        with cupy.cuda.Device(self.device_id):
            for _ in range(math.ceil(len(timestamps) / self.sequence_length)):
                (sequences,) = pipe.run()  # host-synchronous: the frames are decoded
                frames = cupy.array(cupy.asarray(sequences[0]), copy=True)
                # DALI may reuse the output's memory once the next run starts, on its own stream.
                cupy.cuda.get_current_stream().synchronize()
                for frame in frames:
                    if position >= len(timestamps):
                        self._warn(f"DALI decoded more frames than the container lists ({len(timestamps)})")
                        return
                    pts = timestamps[position]
                    position += 1
                    if skip and pts < self.start_pts:
                        continue
                    yield DecodedFrame(index, pts, float(pts * time_base), frame)
                    index += 1
                if len(frames) < self.sequence_length:  # the last (partial) sequence: running
                    break  # again with no video left is an error in DALI
        if position < len(timestamps):
            self._warn(
                f"DALI decoded {position} of {len(timestamps)} frames; the video is cut short at "
                f"{float(timestamps[position] * time_base):.3f} s"
            )

    def _pipeline(self) -> Any:
        from nvidia.dali import fn, pipeline_def

        @pipeline_def(batch_size=1, num_threads=2, device_id=self.device_id, prefetch_queue_depth=1)
        def video_pipeline():
            return fn.experimental.inputs.video(
                name="video",
                sequence_length=self.sequence_length,
                device="mixed",
                last_sequence_policy="partial",
                blocking=False,
            )

        pipe = video_pipeline()
        pipe.build()
        return pipe

    def _warn(self, message: str) -> None:
        text = f"{self.path.name}: {message}"
        self.warnings.append(text)
        warnings.warn(text, VideoDamageWarning, stacklevel=2)


def presentation_timestamps(path: Path) -> list[int]:
    """The pts of every video frame in presentation order, as :class:`VideoReader` gives them.

    Read by demuxing where the container stores pts. AVI stores none (its demuxer fills in only the
    B-frames', which are shown as they are decoded): the n-th frame shown comes out of the decoder
    with the packet ``delay`` packets later and takes its dts (the reader's best-effort pts); only
    the first packets are decoded, to find that delay.
    """
    clock = FrameClock(probe(path).frame_duration)
    pts, dts, first = [], [], None
    with open_reader_input(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if not packet.size:
                continue
            pts.append(packet.pts)
            dts.append(packet.dts)
            if first is None:
                first = _first_frame_pts(packet, clock)
    if None not in pts:
        return sorted(pts)
    return _released_pts([d for d in dts if d is not None], first, clock.step)


def _first_frame_pts(packet: Any, clock: FrameClock) -> int | None:
    import av

    try:
        return next((clock(frame) for frame in packet.decode()), None)
    except av.error.FFmpegError:
        return None  # damaged: the next packets tell the delay


def _released_pts(dts: list[int], first: int | None, step: int) -> list[int]:
    """Frame n takes the dts of the packet n after the one that released the first frame; the frames
    left when the decoder drains (no packet releases them) count on by ``step``, as in the reader."""
    shown = dts[dts.index(first) :] if first in dts else [] if first is None else [first]
    while len(shown) < len(dts):
        shown.append(shown[-1] + step if shown else 0)
    return shown
