"""Sphinx extension for the API reference (book/api/): the library's docstrings cite papers with MyST's
``{cite}`key``` (the same text reads well in a notebook's help()), which autodoc would pass to reStructuredText
verbatim. Rewrite MyST roles into reStructuredText roles before autodoc parses them."""
from __future__ import annotations

import re

_MYST_ROLE = re.compile(r"\{(cite|cite:p|cite:t|term|doc|func|class|mod)\}`")


def _rst_roles(app, what, name, obj, options, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        lines[i] = _MYST_ROLE.sub(lambda m: f":{'cite:p' if m.group(1) == 'cite' else m.group(1)}:`", line)


def setup(app):
    app.connect("autodoc-process-docstring", _rst_roles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
