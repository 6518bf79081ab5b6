"""Tiny synthetic videos and frame sequences for the video, streaming and temporal tests.

Scenes are smooth random textures that pan slowly, with film grain and a little exposure flicker
(like old film); a new scene starts with a different texture and brightness at known frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 48000  # Hz


def scene_frames(
    count: int,
    size: tuple[int, int] = (48, 64),
    cuts: Sequence[int] = (),
    *,
    seed: int = 0,
    grain: float = 3.0,
    flicker: float = 0.02,
    pan: int = 1,
    colour: bool = False,
) -> Iterator[np.ndarray]:
    """``count`` uint8 frames (H, W) grey, or (H, W, 3) when ``colour``; a new scene starts at each cut."""
    rng = np.random.default_rng(seed)
    height, width = size
    scene = _scene(rng, height, width + pan * count, colour)
    starts = set(cuts)
    offset = 0
    for index in range(count):
        if index in starts:
            scene, offset = _scene(rng, height, width + pan * count, colour), 0
        view = scene[:, offset : offset + width]
        gain = 1.0 + flicker * rng.standard_normal()
        noisy = view * gain + grain * rng.standard_normal(view.shape)
        yield np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        offset += pan


def _scene(rng: np.random.Generator, height: int, width: int, colour: bool) -> np.ndarray:
    """A smooth random texture with its own brightness and contrast."""
    coarse = rng.standard_normal((height // 8 + 2, width // 8 + 2) + ((3,) if colour else ()))
    texture = np.kron(coarse, np.ones((8, 8) + ((1,) if colour else ())))[:height, :width]
    texture = _blur(texture)
    texture = (texture - texture.mean()) / (texture.std() + 1e-6)
    return np.clip(rng.uniform(60, 190) + rng.uniform(25, 55) * texture, 0, 255)


def _blur(a: np.ndarray) -> np.ndarray:
    for axis in (0, 1):
        a = (np.roll(a, 1, axis) + 2 * a + np.roll(a, -1, axis)) / 4
        a = (np.roll(a, 2, axis) + 2 * a + np.roll(a, -2, axis)) / 4
    return a


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: str | None = "aac",
    subtitles: bool = False,
    chapters: bool = False,
    vfr: bool = False,
    time_base: Fraction = Fraction(1, 15360),
    metadata: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> list[int]:
    """Encode frames (grey or RGB uint8) into ``path``; returns the video pts written.

    ``vfr`` makes every third frame last longer; ``audio`` is an encoder name (``aac``,
    ``libopus``) or None; subtitles (SubRip, Matroska only) and chapters are optional.
    """
    frames = list(frames)
    height, width = frames[0].shape[:2]
    out = av.open(str(path), "w")
    video = out.add_stream(
        codec, rate=fps, options=options or ({"preset": "ultrafast"} if "264" in codec else {})
    )
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    video.time_base = video.codec_context.time_base = time_base
    sound = _add_audio(out, audio) if audio else None
    subs = _add_subtitles(out) if subtitles else None
    out.metadata.update(metadata or {"title": "synthetic film", "comment": "colorrt test"})
    if chapters:
        out.set_chapters(
            [
                {
                    "id": 1,
                    "start": 0,
                    "end": 500,
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": "One"},
                },
                {
                    "id": 2,
                    "start": 500,
                    "end": 1000,
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": "Two"},
                },
            ]
        )
    pts_list, pts = [], 0
    for index, image in enumerate(frames):
        layout = "gray" if image.ndim == 2 else "rgb24"
        frame = av.VideoFrame.from_ndarray(image, format=layout)
        frame.pts, frame.time_base = pts, time_base
        pts_list.append(pts)
        out.mux(video.encode(frame))
        step = Fraction(1, fps) * (Fraction(3, 2) if vfr and index % 3 == 0 else 1)
        pts += int(step / time_base)
    out.mux(video.encode(None))
    duration = pts * time_base
    if sound is not None:
        _write_audio(out, sound, duration)
    if subs is not None:
        _write_subtitles(out, subs, duration)
    out.close()
    return pts_list


def write_audio_only(path: Path, codec: str = "aac", seconds: float = 0.5) -> Path:
    """A file with one audio stream and no video (a tone; the container from the suffix)."""
    with av.open(str(path), "w") as out:
        _write_audio(out, _add_audio(out, codec), Fraction(seconds).limit_denominator(1000))
    return path


def _add_audio(out: av.container.OutputContainer, codec: str) -> av.audio.stream.AudioStream:
    stream = out.add_stream(codec, rate=AUDIO_RATE)
    stream.layout = "stereo"
    stream.metadata["language"] = "eng"
    return stream


def _write_audio(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, duration: Fraction
) -> None:
    samples, chunk = 0, AUDIO_RATE // 2  # PyAV cuts frames to the encoder's frame size
    total = int(duration * AUDIO_RATE)
    while samples < total:
        t = np.arange(samples, samples + chunk) / AUDIO_RATE
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, samples, Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(frame))
        samples += chunk
    out.mux(stream.encode(None))


def _add_subtitles(out: av.container.OutputContainer) -> av.stream.Stream:
    stream = out.add_mux_stream("subrip")
    stream.time_base = Fraction(1, 1000)
    stream.metadata["language"] = "fra"
    return stream


def _write_subtitles(out: av.container.OutputContainer, stream: av.stream.Stream, duration: Fraction) -> None:
    for ms in range(0, int(duration * 1000), 500):
        packet = av.Packet(f"line at {ms} ms".encode())
        packet.stream, packet.time_base = stream, Fraction(1, 1000)
        packet.pts = packet.dts = ms
        packet.duration = 400
        out.mux(packet)


def read_frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """All frames (RGB uint8) and their times in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * stream.time_base))
    return frames, times


def packet_bytes(path: Path, kind: str) -> list[tuple[bytes, float]]:
    """(bytes, time in seconds) of every packet of the first stream of ``kind`` ("audio", "subtitle")."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [
            (bytes(p), float(p.pts * stream.time_base))
            for p in container.demux(stream)
            if p.size and p.pts is not None
        ]


# AVI with B-frames: AVI stores no pts, only each chunk's index; old films digitized to DivX/Xvid
# store their B-frames "packed" (a P-VOP and the B-VOP shown before it in one chunk, then an N-VOP).

AVI_FRAMES = 30  # at 24 fps, a keyframe every 12


def _vop_type(data: bytes) -> str:
    start = data.find(b"\x00\x00\x01\xb6")  # MPEG-4 Part 2 VOP start code
    return "IPBS"[data[start + 4] >> 6]  # vop_coding_type: the VOP header's first 2 bits


def _n_vop(time_increment_bits: int) -> bytes:
    """A not-coded P-VOP (Xvid's placeholder): type, modulo_time_base, marker, increment, marker, coded=0."""
    bits = "01" + "0" + "1" + "0" * time_increment_bits + "1" + "0"
    bits += "0" + "1" * (-(len(bits) + 1) % 8)  # MPEG-4 stuffing: a 0 then 1s to the byte boundary
    return b"\x00\x00\x01\xb6" + int(bits, 2).to_bytes(len(bits) // 8, "big")


def _pack_b_frames(packets: list[bytes], keys: list[bool]) -> list[tuple[bytes, bool]]:
    """DivX packed bitstream: each reference VOP carries its first B-VOP; an N-VOP ends each B run."""
    chunks, k = [], 0
    while k < len(packets):
        data = packets[k]
        if keys[k]:  # DivX's user data; its final "p" tells decoders the B-frames are packed
            vop = data.find(b"\x00\x00\x01\xb6")
            data = data[:vop] + b"\x00\x00\x01\xb2DivX503b1393p" + data[vop:]
        run = k + 1
        while run < len(packets) and _vop_type(packets[run]) == "B":
            run += 1
        if run == k + 1:
            chunks.append((data, keys[k]))
        else:
            chunks.append((data + packets[k + 1], keys[k]))
            chunks += [(b, False) for b in packets[k + 2 : run]]
            chunks.append((_n_vop(5), False))  # 5 bits count 0..23: the encoder's 1/24 time base
        k = run
    return chunks


def write_b_framed_avi(path: Path, codec: str, *, packed: bool = False) -> int:
    """30 frames at 24 fps with runs of two B-frames, in AVI; returns the encoder's decode delay.

    The AVI muxer shifts the encoder's first (negative) dts to frame 0, so FFmpeg shows display
    frame k at pts k + delay (time base 1/24): the truth these tests hold the reader to.
    """
    options = {"g": "12", "bf": "2"}
    if codec == "libx264":
        options.update(preset="ultrafast", **{"x264-params": "bframes=2"})  # ultrafast alone has none
    time_base = Fraction(1, 24)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24, options=options)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        packets = []
        for index, image in enumerate(scene_frames(AVI_FRAMES, seed=11)):
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            frame.pts, frame.time_base = index, time_base
            packets += stream.encode(frame)
        packets += stream.encode(None)
        delay = -min(p.dts for p in packets)
        assert delay > 0 and any(p.pts < p.dts + delay for p in packets)  # really B-framed
        if not packed:
            out.mux(packets)
            return delay
        chunks = _pack_b_frames([bytes(p) for p in packets], [p.is_keyframe for p in packets])
        assert len(chunks) == AVI_FRAMES
        for index, (data, key) in enumerate(chunks):
            chunk = av.Packet(data)
            chunk.stream, chunk.time_base = stream, time_base
            chunk.pts = chunk.dts = index
            chunk.is_keyframe = key
            out.mux(chunk)
    return delay


# name: (encoder, B-frames packed DivX style) for write_b_framed_avi
AVI_KINDS = {"h264": ("libx264", False), "mpeg4": ("mpeg4", False), "packed": ("mpeg4", True)}
