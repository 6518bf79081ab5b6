"""Assembling encoded segments and the input's stream-copied audio/subtitles into the final file."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from colorrt.errors import InputError
from colorrt.io.video.info import PASSTHROUGH_TYPES, VideoInfo, open_input

MOV_MUXERS = {"mov", "mp4", "3gp", "3g2", "ipod", "psp", "ismv", "f4v"}  # FFmpeg's movenc formats


@dataclass(frozen=True)
class SegmentPart:
    """An encoded segment file and the pts offset to add back to its packets."""

    path: Path
    pts_offset: int  # in the input video's time base


def add_passthrough_streams(output: Any, source: Any) -> list[tuple[Any, Any]]:
    """Add a copy of each audio/subtitle stream of ``source`` to ``output``; (input, output) pairs."""
    pairs = []
    for stream in source.streams:
        if stream.type not in PASSTHROUGH_TYPES:
            continue
        try:
            copy = output.add_stream_from_template(stream)
        except ValueError as e:
            raise InputError(
                f"the {output.format.name} format cannot hold the input's {stream.type} stream "
                f"#{stream.index} ({stream.codec_context.name}) without re-encoding: {e}",
                "use an .mkv output, which holds any audio and subtitle codec",
            ) from e
        copy.metadata.update(_stream_metadata(stream))
        copy.disposition = stream.disposition
        pairs.append((stream, copy))
    return pairs


def assemble(parts: Sequence[SegmentPart], src: Path, dst: Path, info: VideoInfo) -> int:
    """Mux the segments' video and the source's audio/subtitles (stream copy) into ``dst``.

    Returns the number of video packets written. Metadata (container and streams) and chapters
    are copied from the source.
    """
    import av

    if not parts:
        raise InputError(f"no colorized frames to write to {dst}", "the input has no decodable frames")
    with open_input(src) as source, av.open(str(dst), "w") as output:
        output.metadata.update(_container_metadata(source))
        first = av.open(str(parts[0].path))
        try:
            video_out = output.add_stream_from_template(first.streams.video[0])
        finally:
            first.close()
        video_out.metadata.update(_stream_metadata(source.streams.video[0]))
        video_out.time_base = info.time_base
        if output.format.name in MOV_MUXERS:  # its edit lists time a late first frame in movie ticks
            output.container_options["movie_timescale"] = str(_mov_track_timescale(info.time_base))
        if info.rate:  # a copied stream has none; MOV/MP4 time a camera's timecode track with it
            video_out.codec_context.framerate = info.rate
        pairs = add_passthrough_streams(output, source)
        chapters = source.chapters()
        if chapters:
            output.set_chapters(chapters)
        packets = heapq.merge(
            _segment_packets(parts, video_out, info.time_base),
            _passthrough_packets(source, pairs),
            key=lambda item: item[0],
        )
        written = 0
        for _, packet in packets:
            output.mux(packet)
            written += packet.stream is video_out
        return written


def _mov_track_timescale(time_base: Fraction) -> int:
    """The timescale FFmpeg's MOV/MP4 muxer gives a video track of this time base.

    Used as the movie timescale too (default 1000), so an edit list that delays the first frame
    (an input starting after 0, such as an AVI with B-frames) is exact instead of cut to the ms.
    """
    scale = time_base.denominator
    while scale < 10000:  # movenc doubles small video timescales
        scale *= 2
    return scale


def _stream_metadata(stream: Any) -> dict[str, str]:
    drop = {"encoder", "duration"}  # the muxer writes its own (Matroska: per-stream DURATION tags)
    return {k: v for k, v in stream.metadata.items() if k.lower() not in drop}


def _container_metadata(source: Any) -> dict[str, str]:
    drop = {"encoder", "major_brand", "minor_version", "compatible_brands"}  # the muxer writes its own
    return {k: v for k, v in source.metadata.items() if k.lower() not in drop}


def _segment_packets(parts: Sequence[SegmentPart], out_stream: Any, time_base: Fraction) -> Iterator[tuple]:
    """Video packets of every segment in order, offsets added back, dts kept increasing."""
    import av

    last_dts: int | None = None
    for part in parts:
        with av.open(str(part.path)) as segment:
            stream = segment.streams.video[0]
            for packet in _with_dts(p for p in segment.demux(stream) if p.size):
                pts = _shifted(packet.pts, part.pts_offset, stream.time_base, time_base)
                packet.dts += pts - packet.pts  # moved with its pts: dts never passes pts
                packet.pts = pts
                if last_dts is not None and packet.dts <= last_dts:
                    packet.dts = last_dts + 1  # joints of variable-rate segments may touch
                last_dts = packet.dts
                packet.stream = out_stream
                yield _packet_time(packet, stream.time_base), packet


def _with_dts(packets: Iterator[Any]) -> Iterator[Any]:
    """Packets with pts and dts both set.

    Matroska stores no decoding timestamps: its demuxer leaves dts unset for the first packets of a
    stream with B-frames (until the reorder delay is known). Those get the dts just below the first
    known one, which is what a muxer needs (increasing, not after pts).
    """
    waiting: list[Any] = []
    for packet in packets:
        if packet.pts is None and packet.dts is None:
            raise InputError("an encoded segment has a packet without timestamps", "report this as a bug")
        if packet.pts is None:
            packet.pts = packet.dts
        if packet.dts is None:
            waiting.append(packet)
            continue
        for back, earlier in enumerate(reversed(waiting), start=1):
            earlier.dts = packet.dts - back
        yield from waiting
        waiting.clear()
        yield packet
    # No dts at all (intra-only streams, or a segment of a few B-framed packets): from the last packet
    # back, each dts is its pts or just below the next one, so dts increase and never pass pts.
    following = None
    for earlier in reversed(waiting):
        earlier.dts = earlier.pts if following is None else min(earlier.pts, following - 1)
        following = earlier.dts
    yield from waiting


def _passthrough_packets(source: Any, pairs: Sequence[tuple[Any, Any]]) -> Iterator[tuple]:
    if not pairs:
        return
    targets = {inp.index: out for inp, out in pairs}
    for packet in source.demux([inp for inp, _ in pairs]):
        if packet.size == 0 or (packet.dts is None and packet.pts is None):
            continue
        time_base = packet.stream.time_base
        packet.stream = targets[packet.stream.index]
        yield _packet_time(packet, time_base), packet


def _packet_time(packet: Any, time_base: Fraction) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * time_base


def _shifted(ts: int, offset: int, ts_base: Fraction, offset_base: Fraction) -> int:
    """A segment's timestamp ``ts`` moved by ``offset`` (in the input's time base), rounded once.

    The segment's timestamps are whole ticks of the input's time base: where the segment's own time
    base is finer they convert back exactly, and the sum is rounded once (rounding the offset and
    the timestamp apart puts Matroska frames a millisecond off).
    """
    if ts_base <= offset_base:
        return _rescale(_rescale(ts, ts_base, offset_base) + offset, offset_base, ts_base)
    return ts + _rescale(offset, offset_base, ts_base)


def _rescale(value: int, src: Fraction, dst: Fraction) -> int:
    return round(value * src / dst)
