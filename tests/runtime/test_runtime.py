"""Runtime on real zoo models and real files: luminance kept, chroma from the model, alpha untouched."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from scipy.special import softmax
from skimage.color import gray2rgb, rgb2lab

from colorrt.errors import BackendError, InputError
from colorrt.io.images import read_image, write_image
from colorrt.runtime import Runtime
from tests import zoo

RNG = np.random.default_rng(2)


def _photo(height: int = 96, width: int = 128) -> np.ndarray:
    """A smooth colourful uint8 RGB image covering dark to bright, plus grain."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([0.5 + 0.5 * np.sin(6 * x), y, 0.5 + 0.5 * np.cos(5 * x * y)], axis=-1)
    rgb += RNG.normal(0, 0.03, rgb.shape)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def _lightness(image: np.ndarray) -> np.ndarray:
    """CIE L by scikit-image, from a uint8/uint16 grey or RGB(A) array."""
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    rgb = image[..., :3] if image.ndim == 3 else gray2rgb(image)
    return rgb2lab(rgb / scale)[..., 0]


def _psnr_l(before: np.ndarray, after: np.ndarray) -> float:
    mse = np.mean((_lightness(before) - _lightness(after)) ** 2)
    return float(10 * np.log10(100.0**2 / mse))


@pytest.fixture(scope="module")
def runtime(zoo_models):
    with Runtime(zoo_models["ab"], batch_size=3) as rt:
        yield rt


@pytest.mark.parametrize("model", ["ab", "rgb"])
def test_rgb_input_keeps_size_and_luminance(zoo_models, model):
    image = _photo(101, 77)
    with Runtime(zoo_models[model]) as rt:
        out = rt.colorize(image)
    assert out.shape == (101, 77, 3) and out.dtype == np.uint8
    assert _psnr_l(image, out) >= 40
    assert np.abs(rgb2lab(out / 255.0)[..., 1:]).mean() > 2  # chroma really came from the model


def test_chroma_is_the_models(runtime):
    grey = np.full((40, 60), 140, np.uint8)
    lab = rgb2lab(runtime.colorize(grey) / 255.0)
    lightness = _lightness(grey)[0, 0]
    np.testing.assert_allclose(lab[..., 1:].mean(axis=(0, 1)), zoo.expected_ab(lightness), atol=0.6)
    assert lab[..., 1:].std(axis=(0, 1)).max() < 0.5


def test_rgb_output_model_chroma(zoo_models):
    grey = np.full((24, 24), 90, np.uint8)
    with Runtime(zoo_models["rgb"]) as rt:
        out = rt.colorize(grey)
    x = 2 * (grey[0, 0] / 255.0) - 1  # the model's input, grey in [-1, 1]
    model_rgb = (x + np.array(zoo.TINT) * (1 - x**2)) * 0.5 + 0.5
    expected_ab = rgb2lab(model_rgb[None, None])[0, 0, 1:]
    np.testing.assert_allclose(rgb2lab(out / 255.0)[..., 1:].mean(axis=(0, 1)), expected_ab, atol=0.6)


def test_ab_bins_model_decodes_annealed_mean(zoo_models):
    grey = np.full((20, 30), 150, np.uint8)  # L ~ 62: the decoded colour is inside the sRGB gamut
    lightness = _lightness(grey)[0, 0]
    logits = np.array([0.0, 6.0, 1.0, -6.0]) * ((lightness - 50) / 100)
    expected = softmax(logits / 0.38) @ np.array(zoo.BIN_CENTERS)
    with Runtime(zoo_models["bins"]) as rt:
        out = rt.colorize(grey)
    np.testing.assert_allclose(rgb2lab(out / 255.0)[..., 1:].mean(axis=(0, 1)), expected, atol=0.6)


def test_hints_steer_the_colour(zoo_models):
    grey = np.full((64, 64), 128, np.uint8)
    hints = np.zeros((64, 64, 3), np.float32)
    hints[8:24, 8:24] = (20.0, -10.0, 1.0)  # a, b, mask
    with Runtime(zoo_models["hints"]) as rt:
        plain, hinted = rt.colorize(grey), rt.colorize(grey, hints=hints)
    lab_hinted = rgb2lab(hinted / 255.0)
    expected = 110 * np.tanh(zoo.HINT_GAIN * np.array([20.0, -10.0]) / 110)
    np.testing.assert_allclose(lab_hinted[16, 16, 1:], expected, atol=1.0)
    assert np.abs(lab_hinted[50, 50, 1:]).max() < 1.0
    assert np.abs(rgb2lab(plain / 255.0)[..., 1:]).max() < 1.0


@pytest.mark.parametrize("shape", [(1, 1), (3, 517), (333, 77)])
def test_any_size_grey(runtime, shape):
    grey = RNG.integers(0, 256, shape, dtype=np.uint8)
    out = runtime.colorize(grey)
    assert out.shape == (*shape, 3)
    if min(shape) > 1:
        assert _psnr_l(grey, out) >= 40


def test_rgba_alpha_is_untouched(runtime):
    image = np.dstack([_photo(), RNG.integers(0, 256, (96, 128), dtype=np.uint8)])
    out = runtime.colorize(image)
    assert out.shape == (96, 128, 4)
    np.testing.assert_array_equal(out[..., 3], image[..., 3])
    assert _psnr_l(image, out) >= 40


def test_16bit_grey_input_comes_out_16bit(runtime):
    deep = (np.linspace(0, 65535, 80 * 90).reshape(80, 90)).astype(np.uint16)
    out = runtime.colorize(deep)
    assert out.shape == (80, 90, 3) and out.dtype == np.uint16
    assert _psnr_l(deep, out) >= 80  # 16-bit L kept (an 8-bit result gets about 53 dB here)
    assert len(np.unique(out[..., 1])) > 4096  # far more levels than 8 bits hold
    eight = runtime.colorize((deep // 257).astype(np.uint8))
    assert np.abs((out.astype(np.int64) * 255 + 32767) // 65535 - eight).max() <= 2  # same colours


def test_16bit_rgba_keeps_its_16bit_alpha(runtime):
    rgb = _photo().astype(np.uint16) * 257
    alpha = RNG.integers(0, 65536, rgb.shape[:2], dtype=np.uint16)
    out = runtime.colorize(np.dstack([rgb, alpha]))
    assert out.dtype == np.uint16 and out.shape == (96, 128, 4)
    np.testing.assert_array_equal(out[..., 3], alpha)


def test_float_input(runtime):
    image = _photo()
    np.testing.assert_allclose(
        runtime.colorize(image / 255.0).astype(int), runtime.colorize(image).astype(int), atol=1
    )


def test_pil_in_pil_out(runtime):
    image = _photo()
    for mode, out_mode in [("RGB", "RGB"), ("L", "RGB"), ("P", "RGB"), ("RGBA", "RGBA"), ("LA", "RGBA")]:
        pil = Image.fromarray(image).convert(mode)
        out = runtime.colorize(pil)
        assert isinstance(out, Image.Image) and out.mode == out_mode and out.size == pil.size
    deep = Image.fromarray(image[..., 0].astype(np.uint16) * 257)  # I;16: Pillow has no 16-bit RGB
    assert deep.mode.startswith("I;16") and runtime.colorize(deep).mode == "RGB"
    rgba = Image.fromarray(np.dstack([image, np.full(image.shape[:2], 77, np.uint8)]))
    assert np.all(np.asarray(runtime.colorize(rgba))[..., 3] == 77)


def test_batch_keeps_order_across_sizes(zoo_models):
    images = [
        _photo(96, 128),
        _photo(40, 40),
        RNG.integers(0, 256, (96, 128), dtype=np.uint8),
        _photo(40, 40),
    ]
    images += [_photo(50, 200), _photo(96, 128)]
    with Runtime(zoo_models["ab"], batch_size=2) as rt:
        batched = rt.colorize_batch(images)
        single = [rt.colorize(image) for image in images]
    assert [b.shape[:2] for b in batched] == [i.shape[:2] for i in images]
    for b, s in zip(batched, single, strict=True):
        assert np.abs(b.astype(int) - s).max() <= 1


def test_bad_arrays_are_refused(runtime):
    with pytest.raises(InputError, match="int32"):
        runtime.colorize(np.zeros((4, 4), np.int32))
    with pytest.raises(InputError, match="shaped"):
        runtime.colorize(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match="str"):
        runtime.colorize("image.png")
    with pytest.raises(InputError, match="hint"):
        runtime.colorize_batch([np.zeros((4, 4), np.uint8)], hints=[])
    with pytest.raises(InputError, match="batch_size"):
        Runtime(runtime.engine, batch_size=0)


def test_closed_runtime_refuses_work(zoo_models):
    rt = Runtime(zoo_models["ab"])
    with rt:
        rt.colorize(np.zeros((8, 8), np.uint8))
    with pytest.raises(BackendError, match="closed"):
        rt.colorize(np.zeros((8, 8), np.uint8))


def test_contract_override_for_bare_model(zoo_models):
    with Runtime(zoo_models["bare"], contract="pix2pix-colorization") as rt:
        assert rt.contract.name == "pix2pix-colorization"
        assert rt.colorize(np.zeros((10, 10), np.uint8)).shape == (10, 10, 3)


def test_colorize_file_exif_rotated_jpeg(runtime, tmp_path):
    image = Image.fromarray(_photo(60, 100))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = runtime.colorize_file(tmp_path / "rotated.jpg", tmp_path / "out.png")
    colour = read_image(out)
    assert colour.shape == (100, 60, 3)
    assert _psnr_l(read_image(tmp_path / "rotated.jpg"), colour) >= 40


def test_colorize_file_refusals_leave_nothing(runtime, tmp_path):
    src = write_image(tmp_path / "in.png", _photo())
    before = src.read_bytes()
    with pytest.raises(InputError, match="input itself"):
        runtime.colorize_file(src, src)
    with pytest.raises(InputError, match="no such file"):
        runtime.colorize_file(tmp_path / "missing.png", tmp_path / "o.png")
    with pytest.raises(InputError, match=r"\.xyz"):
        runtime.colorize_file(src, tmp_path / "o.xyz")
    rgba = write_image(tmp_path / "rgba.png", np.dstack([_photo(), _photo()[..., 0]]))
    with pytest.raises(InputError, match="alpha"):
        runtime.colorize_file(rgba, tmp_path / "o.jpg")
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "rgba.png"]


def test_colorize_folder_continues_past_bad_files(runtime, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    write_image(src / "a.png", _photo())
    write_image(src / "sub" / "b.jpg", _photo(50, 70))
    write_image(src / "sub" / "c.png", np.dstack([_photo(), np.full((96, 128), 9, np.uint8)]))
    write_image(src / "d16.png", np.linspace(0, 65535, 40 * 30).reshape(40, 30).astype(np.uint16))
    (src / "fake.png").write_text("not an image")
    Image.fromarray(_photo()).save(src / "cut.jpg")
    (src / "cut.jpg").write_bytes((src / "cut.jpg").read_bytes()[:500])
    inputs = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}

    report = runtime.colorize_folder(src, dst, progress=False)

    assert report.done == 4 and report.total == 6 and not report.ok
    assert sorted(p.name for p, _ in report.failed) == ["cut.jpg", "fake.png"]
    assert all("cut.jpg" in m or "fake.png" in m for _, m in report.failed)
    written = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert written == ["a.png", "d16.png", "sub/b.jpg", "sub/c.png"]
    assert read_image(dst / "sub" / "c.png").shape == (96, 128, 4)
    assert _psnr_l(read_image(src / "sub" / "b.jpg"), read_image(dst / "sub" / "b.jpg")) >= 35  # JPEG out
    assert all(p.read_bytes() == data for p, data in inputs.items())


def test_colorize_folder_lists_an_unreadable_file_and_goes_on(runtime, tmp_path):
    src = tmp_path / "in"
    write_image(src / "a.png", _photo(20, 20))
    locked = write_image(src / "locked.png", _photo(20, 20))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("this process may read any file (root with CAP_DAC_OVERRIDE)")
        report = runtime.colorize_folder(src, tmp_path / "out", progress=False)
    finally:
        locked.chmod(0o644)
    assert report.done == 1 and [p.name for p, _ in report.failed] == ["locked.png"]
    assert "cannot read" in report.failed[0][1]


def test_colorize_folder_skips_nested_output_and_empty(runtime, tmp_path):
    write_image(tmp_path / "a.png", _photo(20, 20))
    first = runtime.colorize_folder(tmp_path, tmp_path / "colour", progress=False)
    second = runtime.colorize_folder(tmp_path, tmp_path / "colour", progress=False)
    assert first.done == second.done == 1
    assert sorted(p.name for p in (tmp_path / "colour").iterdir()) == ["a.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        runtime.colorize_folder(tmp_path / "empty", tmp_path / "x", progress=False)


def _saved(kind: str, path):
    photo = _photo(70, 90)
    images = {
        "grey": Image.fromarray(photo).convert("L"),
        "rgb": Image.fromarray(photo),
        "rgba": Image.fromarray(np.dstack([photo, RNG.integers(0, 256, (70, 90), dtype=np.uint8)])),
        "palette": Image.fromarray(photo).quantize(colors=64),
        "16bit": Image.fromarray(np.linspace(0, 65535, 70 * 90).reshape(70, 90).astype(np.uint16)),
    }
    images[kind].save(path)
    return path


@pytest.mark.parametrize("kind", ["grey", "rgb", "rgba", "palette", "16bit"])
def test_colorize_file_each_kind(runtime, tmp_path, kind):
    src = _saved(kind, tmp_path / f"{kind}.png")
    dst = runtime.colorize_file(src, tmp_path / "out" / f"{kind}.png")
    original, colour = read_image(src), read_image(dst)
    assert colour.shape[:2] == original.shape[:2] == (70, 90)
    assert colour.shape[2] == (4 if kind == "rgba" else 3)
    assert colour.dtype == (np.uint16 if kind == "16bit" else np.uint8)  # 16 bits in, 16 bits out
    if kind == "rgba":
        np.testing.assert_array_equal(colour[..., 3], original[..., 3])
    assert _psnr_l(original, colour) >= 40


def test_colorize_folder_never_overwrites_inputs(runtime, tmp_path):
    src = tmp_path / "out" / "in"
    write_image(src / "x.png", _photo(20, 20))
    write_image(src / "in" / "x.png", _photo(20, 30))  # its output name would be out/in/x.png, an input
    before = (src / "x.png").read_bytes()
    report = runtime.colorize_folder(src, tmp_path / "out", progress=False)
    assert report.done == 1 and [p.as_posix() for p, _ in report.failed] == [
        (src / "in" / "x.png").as_posix()
    ]
    assert "overwrite an input" in report.failed[0][1]
    assert (src / "x.png").read_bytes() == before
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(InputError, match="is a file"):
        runtime.colorize_folder(src, tmp_path / "file.png", progress=False)


def test_runtime_passes_engine_options_to_torch_checkpoints(tmp_path):
    """A torch .pth needs arch=: Runtime forwards engine options to the backend."""
    torch = pytest.importorskip("torch")
    from colorrt.models.registry import build_model

    model = build_model("cyclegan-resnet6", random_init=True, seed=0, options={"ngf": 8})
    weights = tmp_path / "latest_net_G.pth"
    torch.save(model.state_dict(), weights)
    with Runtime(weights, arch="cyclegan-resnet6", options={"ngf": 8}) as rt:
        out = rt.colorize(np.full((40, 52), 128, np.uint8))
    assert out.shape == (40, 52, 3) and out.dtype == np.uint8


def test_16bit_colour_tiff_file_comes_out_16bit(runtime, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    photo = _photo(60, 80).astype(np.uint16) * 257 + RNG.integers(0, 257, (60, 80, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", photo, photometric="rgb")
    runtime.colorize_file(tmp_path / "scan.tif", tmp_path / "colour.tif")
    colour = tifffile.imread(tmp_path / "colour.tif")
    assert colour.dtype == np.uint16 and colour.shape == (60, 80, 3)
    eight = runtime.colorize((photo // 257).astype(np.uint8))
    assert _psnr_l(photo, colour) > _psnr_l(photo, eight) + 3  # the 16-bit L is kept more closely


def _animated_gif(path, count: int = 3):
    grey = [Image.fromarray(_photo(48, 64)[..., k % 3]).convert("P") for k in range(count)]
    grey[0].save(path, save_all=True, append_images=grey[1:], duration=[30, 60, 90][:count], loop=0)
    return path


def test_animated_gif_is_colorized_frame_by_frame_keeping_its_timing(runtime, tmp_path):
    from colorrt.io.animation import read_animation

    src = _animated_gif(tmp_path / "anim.gif")
    before = read_animation(src)
    runtime.colorize_file(src, tmp_path / "out.gif")  # before: one still frame came out
    after = read_animation(tmp_path / "out.gif")
    assert len(after.frames) == 3 and after.durations == [30, 60, 90] and after.loop == 0
    for grey, colour in zip(before.frames, after.frames, strict=True):
        assert np.abs(rgb2lab(colour / 255.0)[..., 1:]).mean() > 2  # every frame has colour
        assert np.abs(_lightness(grey) - _lightness(colour)).mean() < 3  # its own lightness (GIF palette)
    with pytest.raises(InputError, match=r"animated \(3 frames\)"):
        runtime.colorize_file(src, tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


def test_animated_gif_in_a_folder_keeps_every_frame(runtime, tmp_path):
    from colorrt.io.animation import read_animation

    write_image(tmp_path / "in" / "still.png", _photo(20, 20))
    _animated_gif(tmp_path / "in" / "anim.gif")
    report = runtime.colorize_folder(tmp_path / "in", tmp_path / "out", progress=False)
    assert report.done == 2 and not report.failed
    assert len(read_animation(tmp_path / "out" / "anim.gif").frames) == 3
