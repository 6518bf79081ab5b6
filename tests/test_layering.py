"""The dependency rules of shared/DESIGN.md, checked on the source (AST), so a wrong import fails here.

Layers, top to bottom: cli -> runtime / pages / distributed / serve / export / calibration -> engines,
io, kernels, models -> contract, modelfile, atomic, gpu, errors, _version. Each package may import
only what its row in ALLOWED lists; LAZY_ONLY lists edges allowed inside functions only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colorrt"
BOTTOM = frozenset({"_version", "errors", "atomic", "modelfile", "gpu", "contract", "progress", "digest"})
MIDDLE = frozenset({"engines", "io", "kernels"})
ALLOWED: dict[str, frozenset[str]] = {
    "_version": frozenset(),
    "errors": frozenset(),
    "atomic": frozenset({"errors"}),
    "modelfile": frozenset({"errors", "atomic"}),
    "gpu": frozenset({"errors"}),
    "progress": frozenset(),
    "digest": frozenset(),
    "contract": frozenset({"errors", "modelfile"}),
    "kernels": BOTTOM,  # kernels import no engine, runtime or io
    "io": BOTTOM | {"kernels"},  # io knows no model
    "engines": BOTTOM | {"kernels", "calibration", "models"},
    "models": BOTTOM,  # torch generators: used by export and training only
    "export": BOTTOM | MIDDLE | {"models", "calibration"},
    "calibration": BOTTOM | MIDDLE,  # pictures through io, never through pages
    "pages": BOTTOM | MIDDLE,  # beside runtime, never on top of it
    "runtime": BOTTOM | MIDDLE | {"pages"},  # never models/ (torch model code)
    "distributed": BOTTOM | MIDDLE | {"runtime", "pages"},
    "serve": BOTTOM | MIDDLE | {"runtime", "distributed"},
    "cli": BOTTOM | MIDDLE | {"runtime", "pages", "distributed", "serve", "export", "calibration", "models"},
}
# (importer, imported) pairs allowed only inside a function: Runtime hands pages over lazily,
# engines reach calibration only when a TensorRT build needs FP16/INT8 first, and the torch engine
# builds its network from models/ only when a checkpoint is loaded.
LAZY_ONLY = {("runtime", "pages"), ("engines", "calibration"), ("engines", "models")}
HEAVY = ("torch", "cupy", "cupyx", "nvidia.dali", "tensorrt", "ray")


def _package_of(path: Path, root: Path = PACKAGE) -> str:
    relative = path.relative_to(root)
    return relative.parts[0].removesuffix(".py") if relative.parts else ""


def _imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in ``tree``."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module == "colorrt":  # from colorrt import x: x is a subpackage or a root name
                    found.extend((_from_root(alias.name), child.lineno, in_function) for alias in child.names)
                else:
                    found.append((child.module, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _from_root(name: str) -> str:
    is_module = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()
    return f"colorrt.{name}" if is_module else "colorrt"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (never executed, so they do not count)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    return lines


def layering_violations(root: Path = PACKAGE) -> list[str]:
    """Every import under ``root`` that breaks the rules, as 'file:line: importer imports target (why)'."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        importer = _package_of(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_lines(tree)
        for module, line, lazy in _imports(tree):
            if line in skipped or not (module == "colorrt" or module.startswith("colorrt.")):
                continue
            where = f"{path.relative_to(root.parent)}:{line}: colorrt.{importer} imports {module}"
            target = module.split(".")[1] if "." in module else ""
            if not target:
                problems.append(f"{where} (the package root is the public face; use colorrt._version etc.)")
            elif target == importer or importer == "__init__" or importer == "__main__":
                continue
            elif target not in ALLOWED.get(importer, frozenset()):
                problems.append(
                    f"{where} (colorrt.{importer} may import {sorted(ALLOWED.get(importer, ()))})"
                )
            elif (importer, target) in LAZY_ONLY and not lazy:
                problems.append(f"{where} (allowed only inside a function, imported lazily)")
    return problems


def test_every_package_has_a_rule() -> None:
    packages = {_package_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__"}
    assert packages <= set(ALLOWED), f"add a layering rule for: {sorted(packages - set(ALLOWED))}"


def test_imports_follow_the_layers() -> None:
    problems = layering_violations()
    assert not problems, "imports that break shared/DESIGN.md's layering:\n" + "\n".join(problems)


def test_the_check_bites(tmp_path: Path) -> None:
    """A planted bad import (an engine importing the CLI, a kernel importing the root) is named."""
    fake = tmp_path / "colorrt"
    (fake / "engines").mkdir(parents=True)
    (fake / "kernels").mkdir()
    (fake / "engines" / "bad.py").write_text("def f():\n    from colorrt.cli import main\n")
    (fake / "kernels" / "bad.py").write_text("import colorrt\nfrom colorrt.errors import InputError\n")
    problems = layering_violations(fake)
    assert len(problems) == 2
    assert "colorrt/engines/bad.py:2: colorrt.engines imports colorrt.cli" in problems[0]
    assert "colorrt/kernels/bad.py:1: colorrt.kernels imports colorrt" in problems[1]


@pytest.mark.parametrize("module", ["colorrt", "colorrt.cli"])
def test_import_pulls_in_no_heavy_package(module: str) -> None:
    code = (
        f"import sys, {module}; heavy = {HEAVY!r}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('nvidia.dali')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", f"import {module} loaded heavy modules: {loaded.stdout}"
