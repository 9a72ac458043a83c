"""MkDocs hooks for nnframe's documentation site (``hooks:`` in mkdocs.yml).

``<!-- nnframe-cli-help -->`` in a page is replaced by the ``--help`` text of the
``nnframe`` command and of every sub-command, taken from :func:`nnframe.cli.build_parser`
at build time, so the CLI reference always lists the options the code has.
"""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- nnframe-cli-help -->"


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
    """Replace the CLI marker with the generated reference."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    return markdown
