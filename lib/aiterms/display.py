"""Tables in notebooks: the chapters show small results as Markdown tables (rendered in Jupyter and in the book)."""
from __future__ import annotations

import html
from typing import Any, Iterable, Sequence


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], escape_html: bool = False) -> str:
    """A Markdown table. A ``|`` inside a cell is escaped (``\\|``, which also works inside `code`); with
    ``escape_html`` every cell is HTML-escaped too, so text such as ``<eos>`` shows as itself (``|`` then becomes
    ``&#124;``; use it for plain text, not for cells with `code`)."""
    def cell(x: Any) -> str:
        return html.escape(str(x), quote=False).replace("|", "&#124;") if escape_html else str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], escape_html: bool = False) -> None:
    """Display :func:`markdown_table` in the notebook."""
    from IPython.display import Markdown, display
    display(Markdown(markdown_table(header, rows, escape_html)))
