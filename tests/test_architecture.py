"""The tree is the architecture: the pure core imports no I/O, and tests mirror the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "anyllm_cli"
IO_MODULES = {
    "httpx",
    "anyio",
    "starlette",
    "hypercorn",
    "sqlite3",
    "typer",
    "rich",
    "asyncio",
    "socket",
}
PURE = ["translate", "models"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PURE)
def test_pure_core_imports_no_io(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & IO_MODULES)
        for path in (PACKAGE / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_pure_core_imports_nothing_above_it() -> None:
    allowed = {"anyllm_cli.models", "anyllm_cli.translate", "anyllm_cli.errors"}
    for package in PURE:
        for path in (PACKAGE / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and node.module.startswith("anyllm_cli")
                ):
                    assert any(node.module.startswith(a) for a in allowed), (path, node.module)


def test_tests_mirror_the_source_tree() -> None:
    """Every test module names a source module that exists (tests/x/test_y.py -> anyllm_cli/x/y.py)."""
    exempt = {"test_architecture.py", "test_readme.py"}
    for test in (ROOT / "tests").rglob("test_*.py"):
        if test.name in exempt or {"bench", "e2e", "fuzz"} & set(test.parts):
            continue
        rel = test.relative_to(ROOT / "tests")
        stem = rel.name.removeprefix("test_")
        candidates = [
            PACKAGE / rel.parent / stem,
            PACKAGE / rel.parent / stem.removesuffix(".py") / "__init__.py",
        ]
        assert any(c.exists() for c in candidates), f"{rel} mirrors no module under anyllm_cli/"
