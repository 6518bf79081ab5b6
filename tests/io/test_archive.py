"""Page sources and sinks (colorrt.io.archive): names, atomic outputs, no escape from the output folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.io.archive import open_sink, open_source, output_name


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
