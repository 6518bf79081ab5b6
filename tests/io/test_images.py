"""read_image / write_image / list_images on real files of every common mode."""

from __future__ import annotations

import io
import os
import stat
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage.color import lab2rgb

from colorrt.errors import InputError
from colorrt.io.images import LargeImageWarning, list_images, read_image, write_image

RNG = np.random.default_rng(0)


def _quadrants(height: int = 64, width: int = 96) -> np.ndarray:
    """Four flat colour blocks: survive JPEG and show any rotation or flip."""
    image = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w], image[:h, w:] = (220, 30, 30), (30, 200, 40)
    image[h:, :w], image[h:, w:] = (30, 40, 210), (230, 220, 40)
    return image


def test_grey_png_reads_as_2d_uint8(tmp_path):
    grey = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30)
    np.testing.assert_array_equal(out, grey)


def test_rgb_and_rgba_png_round_trip(tmp_path):
    rgb = RNG.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (17, 23, 4), dtype=np.uint8)
    write_image(tmp_path / "rgb.png", rgb)
    write_image(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba)


def test_palette_png_becomes_rgb_and_transparent_palette_rgba(tmp_path):
    rgb = _quadrants()
    palette = Image.fromarray(rgb).quantize(colors=4)
    palette.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (64, 96, 3)
    np.testing.assert_array_equal(out, np.asarray(palette.convert("RGB")))

    palette.info["transparency"] = 0
    palette.save(tmp_path / "pt.png", transparency=0)
    out = read_image(tmp_path / "pt.png")
    assert out.shape == (64, 96, 4)
    index = np.asarray(palette)
    np.testing.assert_array_equal(out[..., 3] == 0, index == 0)


def test_la_becomes_rgba_with_grey_replicated(tmp_path):
    grey = RNG.integers(0, 256, (10, 12), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (10, 12), dtype=np.uint8)
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert out.shape == (10, 12, 4)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)
    np.testing.assert_array_equal(out[..., 3], alpha)


def test_16bit_png_keeps_16_bits(tmp_path):
    deep = RNG.integers(0, 65536, (15, 19), dtype=np.uint16)
    write_image(tmp_path / "d.png", deep)
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, deep)


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    rgb = _quadrants()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (64, 96, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 6


def test_exif_orientation_6_is_applied(tmp_path):
    rgb = _quadrants()
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: the stored image must be rotated 90 degrees clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (96, 64, 3)
    assert np.abs(out.astype(int) - np.rot90(rgb, k=-1)).mean() < 4


def test_cielab_tiff_is_converted_not_reinterpreted(tmp_path):
    # Pillow's convert("RGB") copies the L, a, b bytes into R, G, B; and "A" in "LAB" is not alpha
    lightness = np.linspace(5, 95, 10)
    lab = np.zeros((2, 10, 3), np.uint8)
    lab[0, :, 0] = lab[1, :, 0] = np.rint(lightness * 255 / 100)
    lab[1, :, 1], lab[1, :, 2] = 60, 40  # a, b are signed bytes (0: neutral grey); a = 60, b = 40: red
    Image.fromarray(lab, "LAB").save(tmp_path / "lab.tif")
    out = read_image(tmp_path / "lab.tif")
    assert out.shape == (2, 10, 3) and out.dtype == np.uint8
    grey = lab2rgb(np.stack([lightness, 0 * lightness, 0 * lightness], -1)[None])[0]
    assert np.abs(out[0].astype(int) - np.rint(grey * 255)).max() <= 2
    red, green, blue = out[1, 5].astype(int)
    assert red > green + 40 and red > blue + 40


def test_image_over_the_pixel_limit_says_so(tmp_path, monkeypatch):
    write_image(tmp_path / "wide.png", np.zeros((40, 60), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 2x this is where Pillow refuses to decode
    with pytest.raises(InputError, match="MAX_IMAGE_PIXELS") as caught:
        read_image(tmp_path / "wide.png")
    assert "wide.png" in str(caught.value) and "corrupt" not in str(caught.value)


def test_image_between_the_pixel_limit_and_twice_it_warns_as_colorrt(tmp_path, monkeypatch):
    write_image(tmp_path / "big.png", np.zeros((40, 60), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 2400 pixels: Pillow warns, still decodes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # every time, not once per place (Python's default for warnings)
            assert read_image(tmp_path / "big.png").shape == (40, 60)
    assert [w.category for w in caught] == [LargeImageWarning, LargeImageWarning]
    message = str(caught[0].message)
    assert "big.png: 60 x 40 = 2,400 pixels" in message and "2,000" in message and "\n" not in message
    assert LargeImageWarning.noun


def test_bilevel_image_reads_as_grey(tmp_path):
    bits = RNG.integers(0, 2, (9, 16)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out, bits * np.uint8(255))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="not a file"):
        read_image(tmp_path)


def test_text_file_named_png(tmp_path):
    (tmp_path / "fake.png").write_text("this is not an image\n")
    with pytest.raises(InputError, match=r"not an image.*fake\.png"):
        read_image(tmp_path / "fake.png")


def test_unsupported_format_variant_is_a_clear_error(tmp_path):
    # Pillow raises NotImplementedError for variants it cannot decode (here a DDS pixel format)
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4)).save(buffer, format="DDS")
    data = bytearray(buffer.getvalue())
    data[80:84] = (0x2000).to_bytes(4, "little")  # DDS_PIXELFORMAT.dwFlags: a flag Pillow does not know
    (tmp_path / "texture.dds").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"texture\.dds.*pixel format"):
        read_image(tmp_path / "texture.dds")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_names_the_file(tmp_path, suffix):
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(
        buffer, format="JPEG" if suffix == ".jpg" else "PNG"
    )
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match=f"cut\\{suffix}"):
        read_image(path)


def test_write_jpeg_round_trip_and_parent_folders(tmp_path):
    rgb = _quadrants()
    out = write_image(tmp_path / "a" / "b" / "x.jpg", rgb)
    assert out.is_file()
    assert Image.open(out).format == "JPEG"
    assert np.abs(read_image(out).astype(int) - rgb).mean() < 3


def test_write_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "p.png", _quadrants())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_unknown_suffix_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match=r"\.xyz"):
        write_image(tmp_path / "x.xyz", _quadrants())
    assert list(tmp_path.iterdir()) == []


def test_write_alpha_to_jpeg_is_refused(tmp_path):
    with pytest.raises(InputError, match="alpha"):
        write_image(tmp_path / "x.jpg", np.zeros((4, 4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = write_image(tmp_path / "keep.png", _quadrants())
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(InputError, match="disk full"):
        write_image(path, np.zeros((8, 8, 3), np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_list_images_recursive_sorted_relative(tmp_path):
    for name in [
        "b.png",
        "a.JPG",
        "sub/c.tif",
        "sub/deeper/d.webp",
        "notes.txt",
        ".hidden.png",
        ".cache/e.png",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.as_posix() for p in list_images(tmp_path)]
    assert found == ["a.JPG", "b.png", "sub/c.tif", "sub/deeper/d.webp"]


def test_list_images_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        list_images(tmp_path / "missing")


# --- 16-bit colour: Pillow reads it as 8 bits and cannot write it; FFmpeg's codecs keep it ---------


def _png16(array: np.ndarray) -> bytes:
    """A minimal 16-bit RGB / RGBA PNG written here with zlib (no library in between)."""
    height, width, channels = array.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (
        width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, {3: 2, 4: 6}[channels], 0, 0, 0])
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _deep(channels: int, height: int = 21, width: int = 34) -> np.ndarray:
    return RNG.integers(0, 65536, (height, width, channels), dtype=np.uint16)


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_and_tiff_are_read_exactly(tmp_path, channels):
    tifffile = pytest.importorskip("tifffile")
    image = _deep(channels)
    (tmp_path / "deep.png").write_bytes(_png16(image))
    tifffile.imwrite(tmp_path / "deep.tif", image, photometric="rgb", compression="zlib")
    for name in ("deep.png", "deep.tif"):
        assert Image.open(tmp_path / name).mode in ("RGB", "RGBA")  # what Pillow alone would give: 8 bits
        np.testing.assert_array_equal(read_image(tmp_path / name), image)


def test_16bit_colour_orientation_is_applied(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    image = _deep(3, 5, 8)
    tifffile.imwrite(tmp_path / "turned.tif", image, photometric="rgb", extratags=[(274, "H", 1, 6, False)])
    np.testing.assert_array_equal(read_image(tmp_path / "turned.tif"), np.rot90(image, -1))  # 6: 90 deg cw


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_is_written_as_16bit_png_and_tiff(tmp_path, channels):
    tifffile = pytest.importorskip("tifffile")
    image = _deep(channels)
    write_image(tmp_path / "out.png", image)
    write_image(tmp_path / "out.tif", image)
    np.testing.assert_array_equal(read_image(tmp_path / "out.png"), image)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), image)  # another reader agrees
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "out.tif"]  # no temporaries


def test_16bit_colour_into_8bit_formats_is_rounded_to_8_bits(tmp_path):
    image = _deep(3)
    image[0, 0] = (0, 257, 65535)
    write_image(tmp_path / "out.webp", np.ascontiguousarray(image))  # lossy: only the range is checked
    write_image(tmp_path / "out.bmp", image)
    eight = read_image(tmp_path / "out.bmp")
    assert eight.dtype == np.uint8 and tuple(eight[0, 0]) == (0, 1, 255)
    np.testing.assert_array_equal(eight, (image.astype(np.uint32) * 255 + 32767) // 65535)
