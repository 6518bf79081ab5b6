"""Chapters in and out: CBZ, folders and single pages keep names, order, structure and formats;
undecodable pages are copied unchanged and reported; outputs appear atomically."""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorrt.errors import BackendError, InputError
from colorrt.io.archive import ArchiveNameWarning
from colorrt.io.images import decode_image, read_image
from colorrt.io.zipmembers import read_raw_member
from colorrt.pages import PageCopiedWarning, colorize_pages
from tests import synth_pages

COMIC_INFO = b"<?xml version='1.0'?><ComicInfo><Title>Test</Title></ComicInfo>"


def _encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pages() -> list[np.ndarray]:
    return [synth_pages.make_page(40 + i, (320, 230), ("grid", "slanted")[i % 2]).image for i in range(4)]


@pytest.fixture(scope="module")
def colour_page() -> np.ndarray:
    return synth_pages.make_color_page(7, (320, 230))


@pytest.fixture()
def cbz(tmp_path: Path, pages, colour_page) -> Path:
    """ComicInfo, a folder entry, JPEG / PNG / palette / CMYK pages, a corrupt page, a colour page."""
    path = tmp_path / "chapter.cbz"
    palette_png = _encode(np.asarray(Image.fromarray(pages[2]).convert("P")), "PNG")
    cmyk = io.BytesIO()
    Image.fromarray(pages[3]).convert("CMYK").save(cmyk, "JPEG", quality=92)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ComicInfo.xml", COMIC_INFO, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("chapter 1/", b"")
        archive.writestr("chapter 1/p01.jpg", _encode(pages[0], "JPEG", quality=90))
        archive.writestr("chapter 1/p02.png", _encode(pages[1], "PNG"))
        archive.writestr("chapter 1/p03.png", palette_png)
        archive.writestr("chapter 1/p04.jpg", cmyk.getvalue())
        archive.writestr("chapter 1/p05.png", b"\x89PNG\r\n\x1a\n truncated")
        archive.writestr("chapter 1/p06.png", _encode(colour_page, "PNG"))
    return path


def test_cbz_to_cbz_keeps_names_order_formats_and_other_members(runtime, cbz: Path, tmp_path: Path) -> None:
    out = tmp_path / "chapter_color.cbz"
    with pytest.warns(PageCopiedWarning, match="p05.png: cannot decode.*copied unchanged"):
        report = colorize_pages(runtime, cbz, out, rtl=True, progress=False)
    assert report.colorized == [
        f"chapter 1/p0{i}.{s}" for i, s in ((1, "jpg"), (2, "png"), (3, "png"), (4, "jpg"))
    ]
    assert report.passed_through == ["chapter 1/p06.png"]
    # the truncated page cannot be decoded: copied unchanged and reported, the chapter keeps its pages
    assert [name for name, _ in report.unchanged] == ["chapter 1/p05.png"] and not report.failed
    assert "copied unchanged" in report.summary() and report.pages == 6
    assert report.copied == 2 and report.panels >= 4 and not report.ok
    with zipfile.ZipFile(cbz) as src, zipfile.ZipFile(out) as dst:
        assert dst.namelist() == src.namelist()
        assert dst.read("chapter 1/p05.png") == src.read("chapter 1/p05.png")
        assert dst.read("ComicInfo.xml") == COMIC_INFO
        assert dst.getinfo("ComicInfo.xml").compress_type == zipfile.ZIP_DEFLATED
        assert dst.read("chapter 1/p06.png") == src.read("chapter 1/p06.png")  # byte for byte
        for name in report.colorized:
            data = dst.read(name)
            image = Image.open(io.BytesIO(data))
            assert image.format == ("JPEG" if name.endswith(".jpg") else "PNG")
            assert image.size == (230, 320) and image.mode == "RGB"
            assert np.ptp(decode_image(data, name).astype(int), axis=2).max() > 10  # it has colour now
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cbz_to_folder_with_a_format_and_folder_to_cbz(runtime, cbz: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pages_out"
    with pytest.warns(PageCopiedWarning, match="p05.png"):
        report = colorize_pages(runtime, cbz, folder, format="png", progress=False)
    assert len(report.colorized) == 4 and len(report.passed_through) == 1 and len(report.unchanged) == 1
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert written == ["ComicInfo.xml"] + [f"chapter 1/p0{i}.png" for i in range(1, 7)]
    assert (folder / "chapter 1/p05.png").read_bytes() == b"\x89PNG\r\n\x1a\n truncated"  # as it was
    assert read_image(folder / "chapter 1/p01.png").shape == (320, 230, 3)


def test_folder_to_cbz_keeps_the_relative_names(runtime, pages, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    (folder / "vol 1").mkdir(parents=True)
    for i, page in enumerate(pages[:3]):
        Image.fromarray(page).save(folder / "vol 1" / f"{i:03d}.png")
    Image.fromarray(pages[3]).save(folder / "cover.tif")
    (folder / "notes.txt").write_text("not a page")
    packed = tmp_path / "packed.cbz"
    report = colorize_pages(runtime, folder, packed, progress=False)
    assert report.ok and report.pages == 4
    with zipfile.ZipFile(packed) as archive:
        assert archive.namelist() == ["cover.tif", "vol 1/000.png", "vol 1/001.png", "vol 1/002.png"]
        assert Image.open(io.BytesIO(archive.read("cover.tif"))).format == "TIFF"


def test_single_page_to_file_and_to_folder(runtime, pages, tmp_path: Path) -> None:
    src = tmp_path / "page.png"
    Image.fromarray(pages[0]).save(src)
    report = colorize_pages(runtime, src, tmp_path / "page_color.jpg", progress=False)
    assert report.colorized == ["page.png"]
    assert Image.open(tmp_path / "page_color.jpg").format == "JPEG"
    colorize_pages(runtime, src, tmp_path / "out", progress=False)
    assert read_image(tmp_path / "out" / "page.png").shape == (320, 230, 3)


def test_a_reference_file_is_used(runtime, pages, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(pages[1]).save(src / "a.png")
    Image.fromarray(synth_pages.character_reference(128)).save(tmp_path / "ref.png")
    plain = colorize_pages(runtime, src, tmp_path / "plain", progress=False)
    referenced = colorize_pages(
        runtime, src, tmp_path / "ref_out", reference=tmp_path / "ref.png", progress=False
    )
    assert plain.ok and referenced.ok
    a, b = read_image(tmp_path / "plain/a.png"), read_image(tmp_path / "ref_out/a.png")
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0


def test_a_failing_run_leaves_no_output_and_keeps_the_old_one(model_path, cbz: Path, tmp_path: Path) -> None:
    from colorrt.runtime.runtime import Runtime

    out = tmp_path / "chapter_color.cbz"
    out.write_bytes(b"previous output")
    runtime = Runtime(model_path)
    runtime.close()  # every inference now fails: the whole run must fail cleanly
    with pytest.raises(BackendError):
        colorize_pages(runtime, cbz, out, progress=False)
    assert out.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chapter.cbz", "chapter_color.cbz"]


def test_bad_arguments_are_refused_before_any_work(runtime, cbz: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input itself"):
        colorize_pages(runtime, cbz, cbz, progress=False)
    with pytest.raises(InputError, match="cannot write image format"):
        colorize_pages(runtime, cbz, tmp_path / "o.cbz", format="xyz", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files|no pages"):
        colorize_pages(runtime, empty, tmp_path / "o", progress=False)
    with pytest.raises(InputError, match="one image file"):
        colorize_pages(runtime, cbz, tmp_path / "o.png", progress=False)
    assert not (tmp_path / "o.cbz").exists() and not (tmp_path / "o").exists()


def test_archive_members_cannot_escape_the_output_folder(runtime, pages, tmp_path: Path) -> None:
    evil = tmp_path / "evil.cbz"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escaped.png", _encode(pages[0], "PNG"))
        archive.writestr("ok.png", _encode(pages[1], "PNG"))
    with pytest.warns(ArchiveNameWarning, match=r"'\.\./escaped\.png' written as 'escaped\.png'"):
        report = colorize_pages(runtime, evil, tmp_path / "out", progress=False)
    assert report.colorized == ["escaped.png", "ok.png"] and not report.failed
    assert report.renamed == [("../escaped.png", "escaped.png")]
    assert not (tmp_path / "escaped.png").exists() and (tmp_path / "out" / "escaped.png").is_file()


def test_unsafe_member_names_are_rewritten_in_the_output_archive(runtime, pages, tmp_path: Path) -> None:
    src = tmp_path / "evil.cbz"
    stored = ["../../evil.png", "/abs/path.png", "C:\\x.png", "sub/../../x.png", "ok.png"]
    with zipfile.ZipFile(src, "w") as archive:
        for k, name in enumerate(stored):
            archive.writestr(name, _encode(pages[k % len(pages)], "PNG"))
    with pytest.warns(ArchiveNameWarning) as caught:
        report = colorize_pages(runtime, src, tmp_path / "out.cbz", progress=False)
    safe = ["evil.png", "abs/path.png", "x.png", "x (2).png", "ok.png"]
    assert report.renamed == list(zip(stored[:4], safe[:4], strict=True)) and len(caught) == 4
    assert report.colorized == safe and "4 unsafe member names rewritten" in report.summary()
    with zipfile.ZipFile(tmp_path / "out.cbz") as archive:
        assert archive.namelist() == safe


def _corrupt_member(path: Path, name: str) -> None:
    """Scramble a member's compressed bytes in place (its header stays valid)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 16, start + min(info.compress_size, 64)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _set_header_field(path: Path, name: str, local_offset: int, value: int) -> None:
    """Overwrite a 2-byte field of a member's local header and the same field of its central record
    (central = local + 2: the central record has "version made by" first)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    central = data.rindex(name.encode()) - 46  # the name's last copy is in its central record
    assert data[local : local + 4] == b"PK\x03\x04" and data[central : central + 4] == b"PK\x01\x02"
    for at in (local + local_offset, central + local_offset + 2):
        data[at : at + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))


def test_damaged_or_unreadable_members_are_reported_and_the_rest_complete(
    runtime, pages, tmp_path: Path
) -> None:
    """Nested folders, non-page members, a page whose deflate stream is damaged, an encrypted page
    and one with a compression method zipfile cannot read: those three cannot be read. Into an
    archive they are copied as stored (the chapter keeps its pages); into a folder they fail."""
    src = tmp_path / "nested.cbz"
    with zipfile.ZipFile(src, "w") as archive:
        archive.writestr("ComicInfo.xml", COMIC_INFO, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("vol 1/ch 01/p01.png", _encode(pages[0], "PNG"))
        archive.writestr(
            "vol 1/ch 01/notes.txt", b"translator notes " * 20, compress_type=zipfile.ZIP_DEFLATED
        )
        archive.writestr("vol 1/ch 02/p01.png", _encode(pages[1], "PNG"))
        archive.writestr("vol 1/ch 02/p02.bmp", _encode(pages[2], "BMP"), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("vol 1/ch 02/p03.png", _encode(pages[3], "PNG"))
        archive.writestr("vol 1/ch 02/p04.png", _encode(pages[3], "PNG"))
    _corrupt_member(src, "vol 1/ch 02/p02.bmp")
    _set_header_field(src, "vol 1/ch 02/p03.png", 6, 0x1)  # flags: encrypted
    _set_header_field(src, "vol 1/ch 02/p04.png", 8, 9)  # compression method 9: Deflate64

    unreadable = ["vol 1/ch 02/p02.bmp", "vol 1/ch 02/p03.png", "vol 1/ch 02/p04.png"]
    for out in (tmp_path / "out.cbz", tmp_path / "out"):
        with pytest.warns(UserWarning) if out.suffix else contextlib.nullcontext():
            report = colorize_pages(runtime, src, out, progress=False)
        assert report.colorized == ["vol 1/ch 01/p01.png", "vol 1/ch 02/p01.png"]
        why = dict(report.unchanged if out.suffix else report.failed)
        assert sorted(why) == unreadable and not (report.failed if out.suffix else report.unchanged)
        assert all("cannot read" in reason for reason in why.values()), why
        assert "encrypted" in why["vol 1/ch 02/p03.png"]
        assert report.copied == 2  # ComicInfo.xml and the notes, byte for byte
    assert (tmp_path / "out" / "vol 1" / "ch 01" / "notes.txt").read_bytes() == b"translator notes " * 20
    with zipfile.ZipFile(src) as before, zipfile.ZipFile(tmp_path / "out.cbz") as after:
        assert after.namelist() == before.namelist()
        for name in unreadable:  # the stored bytes and the directory record, unchanged
            old, new = before.getinfo(name), after.getinfo(name)
            fields = ("compress_type", "CRC", "compress_size", "file_size", "flag_bits")
            assert [getattr(new, f) for f in fields] == [getattr(old, f) for f in fields]
            assert read_raw_member(tmp_path / "out.cbz", new) == read_raw_member(src, old)
        assert after.read("vol 1/ch 01/notes.txt") == b"translator notes " * 20
        for name in set(after.namelist()) - set(unreadable):  # the directory after the copies is sound
            after.read(name)


def test_an_engine_can_stand_in_for_the_runtime(engine, pages, tmp_path: Path) -> None:
    """colorize_pages documents ``runtime`` as a Runtime or an Engine (dynamic batch: batch_size None)."""
    src = tmp_path / "page.png"
    Image.fromarray(pages[0]).save(src)
    assert engine.batch_size is None
    report = colorize_pages(engine, src, tmp_path / "out", progress=False)
    assert report.colorized == ["page.png"]
    assert read_image(tmp_path / "out" / "page.png").shape == (320, 230, 3)


def test_is_page_job() -> None:
    from colorrt.pages import is_page_job

    assert is_page_job("chapter.cbz", "out.cbz") and is_page_job("pages", "out.zip")
    assert is_page_job("pages", "out", reference="ref.png") and is_page_job("pages", "out", rtl=True)
    assert is_page_job("pages", "out", pages=True)
    assert not is_page_job("photos", "out", reference=None, rtl=False, force=False)


def test_a_16bit_page_stays_16bit(runtime, pages, tmp_path: Path) -> None:
    fine = np.linspace(0, 256, pages[0].size).reshape(pages[0].shape).astype(np.uint16)  # below 8 bits
    deep = np.minimum(pages[0].astype(np.uint32) * 257 + fine, 65535).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "scan.png")  # a 16-bit grey PNG
    report = colorize_pages(runtime, tmp_path / "scan.png", tmp_path / "out", progress=False)
    out = read_image(tmp_path / "out" / "scan.png")
    assert report.colorized == ["scan.png"] and out.dtype == np.uint16 and out.shape == (*deep.shape, 3)
    assert len(np.unique(out)) > 1024  # the levels between 8-bit steps are still there
