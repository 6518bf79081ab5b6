"""Animated GIF / APNG / WebP (colorrt.io.animation): every frame read, timing and looping written back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from colorrt.errors import InputError
from colorrt.io.animation import Animation, is_animated, read_animation, write_animation
from colorrt.io.images import write_image

RNG = np.random.default_rng(5)


def _frames(count: int = 4, alpha: bool = False) -> list[np.ndarray]:
    frames = []
    for k in range(count):
        rgb = np.zeros((24, 32, 3), np.uint8)
        rgb[:, :, k % 3] = 60 * (k + 1)  # one flat colour per frame: survives GIF quantization exactly
        if alpha:
            rgb = np.dstack([rgb, np.where(np.arange(32) < 16, 255, 0).astype(np.uint8)[None].repeat(24, 0)])
        frames.append(rgb)
    return frames


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_frames_durations_and_loop_round_trip(tmp_path, suffix):
    frames = _frames()
    like = Animation(frames, [40, 80, 120, 160], 2)
    write_animation(tmp_path / f"a{suffix}", frames, like)
    back = read_animation(tmp_path / f"a{suffix}")
    assert is_animated(tmp_path / f"a{suffix}") and len(back.frames) == 4
    assert back.durations == [40, 80, 120, 160] and back.loop == 2
    for got, want in zip(back.frames, frames, strict=True):
        tolerance = 8 if suffix == ".webp" else 0  # WebP is lossy (and subsamples chroma)
        assert got.shape == (24, 32, 3) and np.abs(got.astype(int) - want).max() <= tolerance
    assert [p.name for p in tmp_path.iterdir()] == [f"a{suffix}"]  # written atomically: no temporary


def test_transparent_gif_frames_keep_their_alpha(tmp_path):
    frames = _frames(3, alpha=True)
    write_animation(tmp_path / "t.gif", frames, Animation(frames, [50] * 3, 0))
    back = read_animation(tmp_path / "t.gif")
    assert all(f.shape == (24, 32, 4) for f in back.frames) and back.loop == 0
    assert np.all(back.frames[1][:, :16, 3] == 255) and np.all(back.frames[1][:, 16:, 3] == 0)


def test_a_gif_without_a_loop_count_plays_once_in_other_formats_too(tmp_path):
    frames = _frames(2)
    Image.fromarray(frames[0]).save(
        tmp_path / "once.gif", save_all=True, append_images=[Image.fromarray(frames[1])], duration=70
    )
    once = read_animation(tmp_path / "once.gif")
    assert once.loop is None and once.durations == [70, 70]
    write_animation(tmp_path / "once.png", once.frames, once)
    assert Image.open(tmp_path / "once.png").info["loop"] == 1  # APNG: one play


def test_stills_are_not_animated_and_still_formats_are_refused(tmp_path):
    write_image(tmp_path / "still.gif", _frames(1)[0])
    assert not is_animated(tmp_path / "still.gif") and not is_animated(tmp_path / "missing.gif")
    frames = _frames(2)
    with pytest.raises(
        InputError, match=r"animated \(2 frames\).*\.jpg[\s\S]*\.gif, \.png \(APNG\) or \.webp"
    ):
        write_animation(tmp_path / "a.jpg", frames, Animation(frames, [10, 10], 0))


def test_a_grey_gif_reads_every_frame(tmp_path):
    y, x = np.mgrid[0:48, 0:64] / 64
    smooth = np.stack([0.5 + 0.5 * np.sin(6 * x), y, 0.5 + 0.5 * np.cos(5 * x * y)], axis=-1)
    smooth += np.random.default_rng(0).normal(0, 0.03, smooth.shape)
    channels = (np.clip(smooth, 0, 1) * 255).round().astype(np.uint8)
    grey = [Image.fromarray(channels[..., k]).convert("P") for k in range(3)]
    grey[0].save(tmp_path / "grey.gif", save_all=True, append_images=grey[1:], duration=50)
    assert Image.open(tmp_path / "grey.gif").mode == "L"  # Pillow's view of its grey palette
    back = read_animation(tmp_path / "grey.gif")  # before frame.load(): "No packer found from P to L"
    assert [f.shape for f in back.frames] == [(48, 64, 3)] * 3
    for got, k in zip(back.frames, range(3), strict=True):
        assert np.abs(got[..., 1].astype(int) - channels[..., k]).max() <= 8  # GIF's 256-grey palette


def test_a_large_still_png_warns_once_through_the_animation_check(tmp_path, monkeypatch):
    """is_animated only peeks at the header: the file's real read is the one that warns."""
    import warnings

    from PIL import Image

    from colorrt.io.animation import is_animated
    from colorrt.io.images import LargeImageWarning, read_image, write_image

    write_image(tmp_path / "big.png", np.zeros((40, 60), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not is_animated(tmp_path / "big.png")
        read_image(tmp_path / "big.png")
    assert [w.category for w in caught] == [LargeImageWarning]
