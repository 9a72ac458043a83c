"""MkDocs hooks for nnframe's documentation site (``hooks:`` in mkdocs.yml).

``<!-- nnframe-cli-help -->`` in a page is replaced by the ``--help`` text of the
``nnframe`` command and of every sub-command, taken from :func:`nnframe.cli.build_parser`
at build time, so the CLI reference always lists the options the code has.

``<!-- nnframe-other-modules -->`` is replaced by a ``::: module`` entry for every public
module that no page of docs/ documents yet, so a new module is in the API reference the
moment it lands (give it a proper page when you can).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

MARKER = "<!-- nnframe-cli-help -->"
OTHER_MARKER = "<!-- nnframe-other-modules -->"
ROOT = Path(__file__).resolve().parent


def public_modules() -> list[str]:
    """Every public module of nnframe (subpackages' ``__init__`` re-exports and ``__main__`` excluded)."""
    modules = []
    for path in sorted((ROOT / "nnframe").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__" or (parts[-1] == "__init__" and len(parts) > 2):
            continue
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(part.startswith("_") for part in parts[1:]):
            modules.append(".".join(parts))
    return modules


def documented_modules() -> set[str]:
    """Modules named in a ``::: module`` line of some page under docs/."""
    found: set[str] = set()
    for page in (ROOT / "docs").rglob("*.md"):
        found |= set(re.findall(r"^:::\s+(nnframe[\w.]*)", page.read_text(encoding="utf-8"), flags=re.M))
    return found


def undocumented_modules() -> list[str]:
    """Public modules without a ``:::`` entry on any page."""
    documented = documented_modules()
    return [m for m in public_modules() if m not in documented]


def cli_reference() -> str:
    """Markdown: one section per sub-command with its ``--help`` text."""
    from nnframe.cli import build_parser

    os.environ["COLUMNS"] = "88"  # argparse wraps help text to the terminal width
    parser = build_parser()
    parts = ["### `nnframe --help`", "", "```text", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts += [f"### `nnframe {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    """Replace the markers with the generated CLI reference and the other modules' entries."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    if OTHER_MARKER in markdown:
        missing = undocumented_modules()
        entries = "\n\n".join(f"::: {module}" for module in missing) or "Every module has its own page."
        markdown = markdown.replace(OTHER_MARKER, entries)
    return markdown
