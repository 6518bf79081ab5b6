"""docs/models.md holds the table the registry and the contracts generate (it cannot drift)."""

from __future__ import annotations

from pathlib import Path

from colorrt.models import ARCHITECTURES
from colorrt.models.table import END, START, contract_of, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_the_documented_table_is_the_generated_one():
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert documented == markdown_table(), "run: python -m colorrt.models.table docs/models.md"


def test_every_architecture_has_a_row_with_its_merge_files_and_licence():
    rows = {line.split("|")[1].strip(" `"): line for line in markdown_table().splitlines()[2:]}
    assert set(rows) == set(ARCHITECTURES)
    for name, spec in ARCHITECTURES.items():
        contract = contract_of(spec)
        assert (contract.merge in rows[name]) and spec.official in rows[name] and spec.licence in rows[name]
    assert (
        "CC BY-NC-SA 4.0" in rows["iizuka2016"] and "wholesale, multiply line art" in rows["cyclegan-sketch"]
    )
    assert "`palette`: reference palette (216 values)" in rows["comicolorization"]
    assert "NHWC" in rows["chromagan"] and "`classes` ignored" in rows["chromagan"]
