"""The README and the documentation site: every Python block runs, the set-up commands agree
with CI, and the site builds with ``mkdocs build --strict``.

Python blocks of one page run in order in one namespace (a page reads like a notebook), in
a temporary directory. A block preceded by ``<!-- docs-test: tiny -->`` needs real data or
a long run: it runs with ``$NNFRAME_DATA`` pointing at tiny stand-in data sets (random
images of the real shapes and dtypes) and with ``Model.fit`` limited to one epoch. See
docs/index.md ("About these pages").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_MARK = "<!-- docs-test: tiny -->"
_FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)[^\n]*$")


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    tiny: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)} block at line {self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with its language and whether it is marked tiny."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start = len(match["indent"]), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(Block(path, start + 1, match["lang"].lower(), "\n".join(body) + "\n",
                            previous == TINY_MARK))
        i += 1
    return blocks


def doc_files() -> list[Path]:
    """README.md and every page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _write_tiny_datasets(root: Path) -> None:
    """Tiny MNIST and Fashion-MNIST (IDX files) under ``root/<name>``: 256 train, 64 test images."""
    from nnframe.data import write_idx

    rng = np.random.default_rng(0)
    for name in ("mnist", "fashion-mnist"):
        folder = root / name
        folder.mkdir(parents=True)
        for prefix, n in (("train", 256), ("t10k", 64)):
            labels = rng.integers(0, 10, size=n).astype(np.uint8)
            images = rng.integers(0, 120, size=(n, 28, 28), dtype=np.uint8)
            images[np.arange(n), labels * 2 + 4, 4:24] = 255  # a learnable stripe per class
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.fixture
def tiny_runs(monkeypatch, tmp_path_factory):
    """Tiny data sets on ``$NNFRAME_DATA`` and ``Model.fit`` limited to one epoch."""
    from nnframe.model import Model

    data_root = tmp_path_factory.mktemp("tiny-data")
    _write_tiny_datasets(data_root)
    real_fit = Model.fit

    def short_fit(self, x, y, epochs=1, *args, initial_epoch=0, **kwargs):
        return real_fit(self, x, y, min(epochs, initial_epoch + 1), *args, initial_epoch=initial_epoch, **kwargs)

    def apply(on: bool) -> None:
        if on:
            monkeypatch.setenv("NNFRAME_DATA", str(data_root))
            monkeypatch.setattr(Model, "fit", short_fit)
        else:
            monkeypatch.delenv("NNFRAME_DATA", raising=False)
            monkeypatch.setattr(Model, "fit", real_fit)

    return apply


PAGES = [p for p in doc_files() if any(b.lang == "python" for b in code_blocks(p))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(page, tmp_path, monkeypatch, tiny_runs):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import nnframe

    state = nnframe.random.get_state()
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    try:
        for block in code_blocks(page):
            if block.lang != "python":
                continue
            tiny_runs(block.tiny)
            failure = None
            try:
                exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102 - our own docs
            except BaseException:  # noqa: BLE001 - report which block failed, whatever it raised
                failure = f"{block.where} failed:\n{block.code}\n{traceback.format_exc()}"
            if failure is not None:
                pytest.fail(failure, pytrace=False)
    finally:
        nnframe.random.set_state(state)


def test_code_blocks_finds_fences_languages_and_tiny_marks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\na = 1\n```\n\n<!-- docs-test: tiny -->\n```python\nb = 2\n```\n"
                    "```bash\nls\n```\n  ```python\n  c = 3\n  ```\n")
    blocks = code_blocks(page)
    assert [(b.line, b.lang, b.code, b.tiny) for b in blocks] == [
        (3, "python", "a = 1\n", False), (8, "python", "b = 2\n", True), (11, "bash", "ls\n", False),
        (14, "python", "c = 3\n", False)]


def test_a_failing_block_is_named_by_file_and_line(tmp_path, monkeypatch, tiny_runs):
    page = ROOT / "docs" / "broken-example.md"  # never written: only its name is used in the message
    block = Block(page, 7, "python", "x = 1\nraise RuntimeError('boom')\n", False)
    monkeypatch.setattr(sys.modules[__name__], "code_blocks", lambda path: [block])
    with pytest.raises(pytest.fail.Exception) as info:
        test_every_python_block_runs(page, tmp_path, monkeypatch, tiny_runs)
    assert "docs/broken-example.md block at line 7 failed" in str(info.value)
    assert "RuntimeError: boom" in str(info.value)


def _readme_test_line() -> str:
    lines = [line.strip() for b in code_blocks(ROOT / "README.md") if b.lang == "bash"
             for line in b.code.splitlines() if "-m pytest" in line and not line.strip().startswith("#")]
    assert lines, "README.md: no bash line runs pytest"
    assert len(set(lines)) == 1, f"README.md: the test command differs between places: {sorted(set(lines))}"
    return lines[0]


def test_readme_test_command_installs_what_the_tests_need():
    line = _readme_test_line()
    # a fresh clone: the test extra (pytest, hypothesis) must be installed by the command itself
    assert re.match(r"^pip install -e '\.\[test[],]", line), line
    assert line.endswith("&& python -m pytest -q"), line


def test_ci_runs_the_readme_test_command_verbatim_after_its_installs():
    line = _readme_test_line()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert line in [c.strip() for c in ci], f".ci/run does not run the README's test line {line!r}"
    position = [c.strip() for c in ci].index(line)
    installs = [i for i, c in enumerate(ci) if "pip install" in c and c.strip() != line]
    assert installs and max(installs) < position, ".ci/run must install its extras before the README's line"


def test_readme_names_the_two_setup_commands_together():
    blocks = [b for b in code_blocks(ROOT / "README.md") if b.lang == "bash"]
    two = [b for b in blocks if "nnframe train" in b.code and "pytest" in b.code]
    assert two, "README.md: the two set-up commands (train, then tests) must sit in one block"
    assert len([c for c in two[0].code.splitlines() if c.strip()]) == 2


@pytest.mark.slow
def test_the_documentation_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    cli_page = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "--epochs" in cli_page and "nnframe-cli-help" not in cli_page  # the generated reference


def test_every_public_module_is_in_the_api_reference():
    # a module without a page of its own gets an entry on reference/other.md when the site is built
    sys.path.insert(0, str(ROOT))
    try:
        import mkdocs_hooks
    finally:
        sys.path.remove(str(ROOT))
    modules = mkdocs_hooks.public_modules()
    assert {"nnframe.model", "nnframe.layer.dense", "nnframe"} <= set(modules)
    assert "nnframe.__main__" not in modules and "nnframe.layer" not in modules  # re-exports only
    undocumented = mkdocs_hooks.undocumented_modules()
    assert set(undocumented) <= set(modules)
    assert "nnframe.model" not in undocumented  # it has its own page
    page = mkdocs_hooks.on_page_markdown("# Other\n\n" + mkdocs_hooks.OTHER_MARKER)
    assert all(f"::: {module}" in page for module in undocumented)
    assert mkdocs_hooks.OTHER_MARKER not in page


def test_a_module_without_a_page_gets_an_entry(monkeypatch):
    sys.path.insert(0, str(ROOT))
    try:
        import mkdocs_hooks
    finally:
        sys.path.remove(str(ROOT))
    documented = mkdocs_hooks.documented_modules() - {"nnframe.loss"}
    monkeypatch.setattr(mkdocs_hooks, "documented_modules", lambda: documented)
    assert "nnframe.loss" in mkdocs_hooks.undocumented_modules()
    assert "::: nnframe.loss" in mkdocs_hooks.on_page_markdown(mkdocs_hooks.OTHER_MARKER)
