"""Page sources and sinks (colorrt.io.archive): names, atomic outputs, no escape from the output folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.io import zipmembers
from colorrt.io.archive import ArchiveNameWarning, open_sink, open_source, output_name
from colorrt.io.zipmembers import safe_names


def test_output_name() -> None:
    assert output_name("a/b/p1.jpg", None) == "a/b/p1.jpg"
    assert output_name("a/b/p1.jpg", "png") == "a/b/p1.png"
    assert output_name("p1.png", ".WEBP") == "p1.webp"


def test_archive_sink_appears_only_on_commit_and_leaves_nothing_on_abort(tmp_path: Path) -> None:
    src = tmp_path / "in.cbz"
    with zipfile.ZipFile(src, "w") as archive:
        archive.writestr("ComicInfo.xml", b"<ComicInfo/>")
        archive.writestr("p1.png", b"not decoded here")
    page = np.full((6, 5, 3), 90, np.uint8)
    with open_source(src) as source:
        for dst, finish in ((tmp_path / "kept.cbz", "commit"), (tmp_path / "dropped.cbz", "abort")):
            sink = open_sink(dst, source)
            sink.write_bytes("ComicInfo.xml", source.read_bytes("ComicInfo.xml"), "ComicInfo.xml")
            sink.write_image("p1.png", page, "p1.png")
            assert not dst.exists()  # written beside it under a hidden name until commit
            getattr(sink, finish)()
    with zipfile.ZipFile(tmp_path / "kept.cbz") as archive:
        assert archive.namelist() == ["ComicInfo.xml", "p1.png"]
        assert archive.read("ComicInfo.xml") == b"<ComicInfo/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.cbz", "kept.cbz"]


def test_folder_sink_writes_atomically_and_refuses_escaping_names(tmp_path: Path) -> None:
    with open_source(tmp_path) as source:  # an empty folder is a valid source here
        sink = open_sink(tmp_path / "out", source)
    sink.write_bytes("sub/info.txt", b"kept as is")
    assert (tmp_path / "out" / "sub" / "info.txt").read_bytes() == b"kept as is"
    assert [p.name for p in (tmp_path / "out" / "sub").iterdir()] == ["info.txt"]  # no temporary left
    with pytest.raises(InputError, match="outside the output folder"):
        sink.write_bytes("../evil.txt", b"x")


def test_safe_names_stay_inside_the_archive_and_do_not_collide() -> None:
    stored = [
        "../../evil.png",
        "/abs/path.png",
        "C:\\x.png",
        "sub/../../x.png",
        "x.png",
        "a/./b\\c.png",
        "../",
    ]
    assert safe_names(stored) == [
        "evil.png",
        "abs/path.png",
        "x (2).png",
        "x (3).png",
        "x.png",
        "a/b/c.png",
        "",
    ]
    assert safe_names(["p.png", "p.png", "dir/", "/dir/"]) == ["p.png", "p (2).png", "dir/", "dir (2)/"]


def test_archive_source_uses_safe_names_and_reports_them(tmp_path: Path) -> None:
    src = tmp_path / "in.cbz"
    with zipfile.ZipFile(src, "w") as archive:
        archive.writestr("/root/p1.png", b"one")
        archive.writestr("../p2.png", b"two")
        archive.writestr("p3.png", b"three")
    with pytest.warns(ArchiveNameWarning) as caught, open_source(src) as source:
        assert [e.name for e in source.entries] == ["root/p1.png", "p2.png", "p3.png"]
        assert source.renamed == [("/root/p1.png", "root/p1.png"), ("../p2.png", "p2.png")]
        assert source.read_bytes("p2.png") == b"two"
    assert len(caught) == 2 and ArchiveNameWarning.noun


def test_zip_bombs_are_refused_before_anything_is_read(tmp_path: Path, monkeypatch) -> None:
    many = tmp_path / "many.cbz"
    with zipfile.ZipFile(many, "w") as archive:
        for k in range(zipmembers.MAX_MEMBERS + 1):
            archive.writestr(f"p{k}.png", b"")
    with pytest.raises(InputError, match=r"10001 members \(limit 10000\).*zip bomb"):
        open_source(many)
    # a real 2 MiB member of zeros deflates ~1000x: with the size limits scaled down to 1 MiB it is
    # what a 16 GiB archive or a 256 MiB member at more than 200x would be at full scale
    bomb = tmp_path / "bomb.cbz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("page.png", bytes(2 * 2**20))
    monkeypatch.setattr(zipmembers, "BIG_MEMBER_BYTES", 2**20)
    with pytest.raises(InputError, match=r"unpacks \d+x to 2 MiB \(limit 200x.*zip bomb"):
        open_source(bomb)
    monkeypatch.setattr(zipmembers, "BIG_MEMBER_BYTES", 2**30)
    monkeypatch.setattr(zipmembers, "MAX_TOTAL_BYTES", 2**20)
    with pytest.raises(InputError, match=r"unpack to 0\.0 GiB.*zip bomb") as refused:
        open_source(bomb)
    assert "unpack it with a tool you trust" in str(refused.value)
