"""Make the sample inputs in ``examples/`` and ``tests/data/`` from held-out photos (never trained on).

* ``examples/old_photo.jpg``: a held-out photo turned grey (CIE L only), lightly aged.
* ``examples/old_film.mp4``: about 4 s of grey "old film" at 24 fps, 432x288, H.264 + AAC audio:
  three shots (slow pan, slow zoom, slow pan) of held-out photos with hard cuts between them,
  film grain, gate weave and exposure flicker; the audio is a short generated tune with crackle.
* ``tests/data/default_model/<id>.png``: two held-out photos at 256 px for the model's quality test.

Everything is seeded, so re-running gives the same pixels (the H.264/AAC encoders are deterministic
for the same input and settings). Run: ``python -m training.make_examples``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from colorrt.kernels.color import l_to_gray
from colorrt.kernels.pipeline import luminance
from training import data

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TEST_DATA = REPO / "tests" / "data" / "default_model"
PHOTO_ID = "lomiri-seeding_by_Clements_Engelhardt"  # CC0
TEST_IDS = ("skimage-coffee", "lomiri-seeding_by_Clements_Engelhardt")  # both CC0, both held out
FPS = 24
SIZE = (432, 288)  # pixels: width, height of the film
# (photo id, seconds, start box, end box); boxes are (x0, y0, width) fractions of the photo, 3:2 aspect
SHOTS = (
    ("lomiri-picosdeeuropa_by_Aitzol_Berasategi", 1.5, (0.0, 0.08, 0.80), (0.20, 0.08, 0.80)),
    ("skimage-coffee", 1.25, (0.05, 0.02, 0.92), (0.22, 0.18, 0.62)),
    ("lomiri-seeding_by_Clements_Engelhardt", 1.25, (0.30, 0.05, 0.55), (0.12, 0.05, 0.55)),
)
SAMPLE_RATE = 48000  # Hz


def grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 grey image holding exactly the photo's CIE lightness (what a B&W print records)."""
    return np.round(l_to_gray(luminance(rgb)) * 255).astype(np.uint8)


def make_photo(path: Path) -> None:
    """The grey sample photo: 640 px, mild vignette and grain, JPEG."""
    rng = np.random.default_rng(1)
    g = grey(data.load_rgb(PHOTO_ID, 640)).astype(np.float32)
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    g = g * (1 - 0.18 * r2) + rng.normal(0, 4, g.shape)
    Image.fromarray(np.clip(g, 0, 255).astype(np.uint8)).save(path, quality=88, optimize=True)


def shot_frames(
    ident: str, seconds: float, start: tuple, end: tuple, rng: np.random.Generator
) -> list[np.ndarray]:
    """Grey frames of one shot: the crop box moves/zooms linearly from ``start`` to ``end``."""
    photo = Image.fromarray(grey(data.load_rgb(ident)))
    count = round(seconds * FPS)
    frames = []
    for k in range(count):
        t = k / max(1, count - 1)
        x0, y0, wf = (a + (b - a) * t for a, b in zip(start, end, strict=True))
        width = wf * photo.width
        height = width * SIZE[1] / SIZE[0]
        left, top = x0 * photo.width, y0 * photo.height
        weave = rng.normal(0, 0.6, 2)  # pixels of gate weave
        box = (left + weave[0], top + weave[1], left + weave[0] + width, top + weave[1] + height)
        frame = np.asarray(photo.resize(SIZE, Image.Resampling.BICUBIC, box=box), np.float32)
        frames.append(_age(frame, rng))
    return frames


def _age(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flicker = 1 + rng.normal(0, 0.03)
    out = frame * flicker + rng.normal(0, 5, frame.shape)
    if rng.random() < 0.3:  # a vertical scratch
        x = rng.integers(frame.shape[1])
        out[:, x : x + 1] += 60
    return np.clip(out, 0, 255).astype(np.uint8)


def tune(seconds: float) -> np.ndarray:
    """A short generated melody with soft envelopes and record crackle (float32 mono, -1..1)."""
    rng = np.random.default_rng(2)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    notes = [0, 4, 7, 12, 7, 4, 0, 5, 9, 12, 9, 5, 0, 4, 7, 0]  # semitones above A3 (220 Hz)
    step = seconds / len(notes)
    audio = np.zeros_like(t)
    for k, semi in enumerate(notes):
        on = (t >= k * step) & (t < (k + 1) * step)
        local = t[on] - k * step
        freq = 220.0 * 2 ** (semi / 12)
        env = np.minimum(1, local / 0.02) * np.exp(-3 * local)
        audio[on] += env * (np.sin(2 * np.pi * freq * local) + 0.3 * np.sin(4 * np.pi * freq * local))
    crackle = (rng.random(t.shape) < 0.002) * rng.normal(0, 0.5, t.shape) + rng.normal(0, 0.01, t.shape)
    return (0.3 * audio + crackle).clip(-1, 1).astype(np.float32)


def make_film(path: Path) -> None:
    """The grey old-film clip with an AAC audio track."""
    rng = np.random.default_rng(3)
    frames = [f for shot in SHOTS for f in shot_frames(*shot, rng)]
    seconds = len(frames) / FPS
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        video.options = {"crf": "30", "preset": "veryslow", "tune": "grain", "threads": "1"}
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.bit_rate = 48000
        audio.layout = "mono"
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.repeat(image[:, :, None], 3, axis=2), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        samples = tune(seconds)
        block = 1024
        for start in range(0, len(samples), block):
            chunk = samples[None, start : start + block]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            frame.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode())


def make_test_images() -> None:
    """Two held-out colour photos at 256 px (lossless PNG) for the quality test."""
    TEST_DATA.mkdir(parents=True, exist_ok=True)
    for ident in TEST_IDS:
        Image.fromarray(data.load_rgb(ident, 256)).save(TEST_DATA / f"{ident}.png", optimize=True)


def main() -> None:
    split = data.load_split()
    used = {PHOTO_ID, *TEST_IDS, *(s[0] for s in SHOTS)}
    leaked = used - data.never_trained_on(split)
    if leaked:
        raise SystemExit(
            f"examples must come from held-out photos; not in test or heldout_*: {sorted(leaked)}"
        )
    EXAMPLES.mkdir(exist_ok=True)
    make_photo(EXAMPLES / "old_photo.jpg")
    make_film(EXAMPLES / "old_film.mp4")
    make_test_images()
    for path in (*EXAMPLES.iterdir(), *TEST_DATA.iterdir()):
        print(f"{path.relative_to(REPO)}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
