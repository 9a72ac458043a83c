"""Dependencies point one way (STYLE.md): a module never imports one further down the list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nnframe"

# lower levels may be imported by higher ones, never the other way round
LEVELS = {
    "backend": 0, "threads": 0, "random": 0, "errors": 0, "atomic": 0, "safetensors_io": 0, "checkpoint_schema": 0,
    "blas_env": 0, "allocator": 0,
    "initializer": 1, "functional": 1, "parameter": 1,
    "layer": 2,
    "net": 3, "graph": 3,
    "loss": 4, "optimizer": 4, "schedule": 4, "gradcheck": 4,
    "data": 5, "metrics": 5, "callbacks": 5, "io": 5, "plot": 5, "distributed": 5,
    "model": 6, "trainer": 6, "summary": 6,
    "cli": 7, "cli_paths": 7, "cli_types": 7, "cli_common": 7, "cli_train": 7, "cli_checkpoint": 7, "__main__": 7,
    "interop": 7, "onnx": 7, "torch": 7, "serve": 7,
    "generation": 7,
    "__init__": 8,
}


def _top(module: str) -> str:
    return module.split(".")[1] if module.startswith("nnframe.") else ""


def _imports(path: Path) -> set[str]:
    """Top-level nnframe modules imported by ``path``, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnframe"):
            if node.module == "nnframe":
                found.update(alias.name for alias in node.names)
            else:
                found.add(_top(node.module))
        elif isinstance(node, ast.Import):
            found.update(_top(alias.name) for alias in node.names if alias.name.startswith("nnframe."))
    return found


def _level(path: Path) -> tuple[str, int]:
    rel = path.relative_to(PACKAGE)
    name = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    return name, LEVELS[name]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] in LEVELS
                 or p.stem in LEVELS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_stack(path: Path):
    name, level = _level(path)
    upward = sorted(m for m in _imports(path) if m in LEVELS and LEVELS[m] > level)
    assert not upward, f"{name} (level {level}) imports higher modules {upward}"


def test_every_module_has_a_level():
    unknown = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if (p.relative_to(PACKAGE).parts[0] if len(p.relative_to(PACKAGE).parts) > 1 else p.stem)
                     not in LEVELS)
    assert not unknown, f"add these modules to LEVELS: {unknown}"
