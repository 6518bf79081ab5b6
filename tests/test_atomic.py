"""colorrt.atomic: folder swap (the file helpers are exercised by every writer's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from colorrt.atomic import replace_folder


def test_replace_folder_swaps_whole_folders_and_rolls_back(tmp_path: Path):
    target, staged = tmp_path / "model", tmp_path / ".staged"
    target.mkdir()
    (target / "config").write_text("old")
    staged.mkdir()
    (staged / "config").write_text("new")
    replace_folder(staged, target)
    assert (target / "config").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # old folder removed, nothing aside
    with pytest.raises(FileNotFoundError):
        replace_folder(tmp_path / "missing", target)  # the swap fails after the old folder moved aside
    assert (target / "config").read_text() == "new"  # ... and it is put back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    fresh = tmp_path / ".fresh"
    fresh.mkdir()
    replace_folder(fresh, tmp_path / "other")  # no folder there yet
    assert (tmp_path / "other").is_dir() and not fresh.exists()
