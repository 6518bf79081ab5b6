"""Video decode and encode with PyAV: threaded decoding, encoded segments, stream-copied audio.

Colorized frames are encoded into *segments*: short files in the output's own container format, each
starting with a keyframe and holding the frames of a known range with timestamps shifted to start at
zero (so no container rounds a start offset). :func:`assemble` then stream-copies the segments' video
packets, with the offsets added back, together with the input's audio and subtitle packets
(bit-identical: never decoded), its metadata and chapters, into the final file. Every frame keeps
the pts of the input frame it came from, so frame count, frame rate, time base and variable frame
timing match the input (within the precision of the output container's time base: Matroska and
WebM store milliseconds).

Damaged input is decoded as far as possible: undecodable packets are reported with a warning naming
their timestamp, a frame lost to them is replaced by the nearest good one (held, counted once at the
end), and a stream that ends before its declared duration is reported as truncated.

Modules: :mod:`~colorrt.io.video.codecs` (output encoders and checked settings),
:mod:`~colorrt.io.video.info` (open and probe an input), :mod:`~colorrt.io.video.clock` (frame
timestamps), :mod:`~colorrt.io.video.reader` (decoding), :mod:`~colorrt.io.video.writer` (encoding
segments, output checks) and :mod:`~colorrt.io.video.segments` (assembling the final file).
"""

from __future__ import annotations

from colorrt.io.video.clock import FrameClock, FrameSlots, open_reader_input
from colorrt.io.video.codecs import (
    CODEC_ALIASES,
    CODECS,
    DEFAULT_CODEC,
    X26X_PRESETS,
    CodecSpec,
    EncodeSettings,
    encode_settings,
    parse_bitrate,
)
from colorrt.io.video.info import (
    PASSTHROUGH_TYPES,
    VIDEO_SUFFIXES,
    DamagedPacketWarning,
    HeldFramesWarning,
    VideoDamageWarning,
    VideoInfo,
    is_grey_format,
    open_input,
    probe,
)
from colorrt.io.video.reader import (
    TRUNCATION_SLACK_S,
    DecodedFrame,
    VideoReader,
    frame_to_array,
    seek_keyframe,
)
from colorrt.io.video.segments import MOV_MUXERS, SegmentPart, add_passthrough_streams, assemble
from colorrt.io.video.writer import SegmentWriter, check_output

__all__ = [
    "CODECS",
    "CODEC_ALIASES",
    "DEFAULT_CODEC",
    "MOV_MUXERS",
    "PASSTHROUGH_TYPES",
    "TRUNCATION_SLACK_S",
    "VIDEO_SUFFIXES",
    "X26X_PRESETS",
    "CodecSpec",
    "DamagedPacketWarning",
    "DecodedFrame",
    "EncodeSettings",
    "FrameClock",
    "FrameSlots",
    "HeldFramesWarning",
    "SegmentPart",
    "SegmentWriter",
    "VideoDamageWarning",
    "VideoInfo",
    "VideoReader",
    "add_passthrough_streams",
    "assemble",
    "check_output",
    "encode_settings",
    "frame_to_array",
    "is_grey_format",
    "open_input",
    "open_reader_input",
    "parse_bitrate",
    "probe",
    "seek_keyframe",
]
