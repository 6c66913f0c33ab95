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
# Top imports bottom only (ARCHITECTURE.md). Modules at the package root sit in a layer too.
LAYERS: list[set[str]] = [
    {"__main__", "__init__"},
    {"cli"},
    {"server"},
    {"batch", "replay"},
    {"pipeline"},
    {"keys", "routing"},
    {"backends", "stores"},
    {"translate", "tokens"},
    {"models"},
    {"config"},
    {"errors"},
]
# The seams are the pipeline's contract: the policies below it implement them with its types.
SEAMS = "anyllm_cli.pipeline.seams"


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


def _rank(package: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if package in layer:
            return rank
    raise AssertionError(f"anyllm_cli/{package} is in no layer of tests/test_architecture.py")


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _anyllm_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n.startswith("anyllm_cli.") and n.count(".") <= 2)
            if node.module.startswith("anyllm_cli"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("anyllm_cli"))
    return found


def test_nothing_imports_upward() -> None:
    """cli -> server -> batch, replay -> pipeline -> keys, routing -> backends, stores -> translate
    -> models -> config -> errors; a package imports only itself and the layers below it."""
    offenders: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py")
        for module in _anyllm_imports(path):
            other = _package_of(module)
            if (
                module == "anyllm_cli"
                or other == own
                or (not (PACKAGE / other).exists() and not (PACKAGE / f"{other}.py").exists())
            ):
                continue
            if module.startswith(SEAMS) and _rank(own) > _rank("pipeline"):
                continue
            if _rank(own) >= _rank(other):
                offenders.append(f"{rel} imports {module}")
    assert sorted(set(offenders)) == []


def _defines_something(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for node in tree.body
    )


def test_every_module_has_its_test_module() -> None:
    """The mirror the other way: anyllm_cli/x/y.py has tests/x/test_y.py. Private modules (`_y.py`)
    are tested through the public module that uses them; a package `__init__.py` that defines
    nothing (a docstring, re-exports) needs no test of its own."""
    missing: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__main__.py" or (rel.name.startswith("_") and rel.name != "__init__.py"):
            continue
        if rel.name == "__init__.py" and not _defines_something(path):
            continue
        if not (ROOT / "tests" / rel.parent / f"test_{rel.name}").exists():
            missing.append(str(rel))
    assert sorted(missing) == []
