"""Write the site's API reference: one page per module of the course library, and in every chapter a last cell that
links to the library functions the chapter calls.

    .venv/bin/python tools/api_pages.py            # rewrite book/api/ and the chapters' "api-links" cells
    .venv/bin/python tools/api_pages.py --check    # exit 1 if anything would change (tests/test_api_pages.py)

What a chapter uses is read from its code cells (Python's ast): ``from aiterms.M import f``, ``from aiterms import M``
followed by ``M.f``, with aliases. Each module page shows the module's docstring and every public member (Sphinx
autodoc, book/_ext/api_docstrings.py turns the docstrings' MyST roles into reStructuredText), and lists the chapters
that use it. The grader (``aiterms.grading``) is an instructor's tool, not course material: it has no page.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK, API = ROOT / "book", ROOT / "book" / "api"
CELL_ID = "api-links"


def modules() -> list[str]:
    """The course library's modules (``aiterms.grading`` excluded), sorted."""
    return sorted(p.stem for p in (ROOT / "lib" / "aiterms").glob("*.py") if p.stem != "__init__")


def chapters() -> list[Path]:
    return sorted(BOOK.glob("[0-9][0-9]-*.ipynb"))


def chapter_title(nb: dict) -> str:
    first = "".join(nb["cells"][0]["source"]).lstrip()
    return first.splitlines()[0].lstrip("# ").strip()


def public(module: str, name: str) -> str | None:
    """The documented target ``aiterms.M.name`` of a name taken from ``aiterms.M`` (None: not public there)."""
    mod = importlib.import_module(f"aiterms.{module}")
    if name.startswith("_") or not hasattr(mod, name):
        return None
    exported = getattr(mod, "__all__", None)
    obj = getattr(mod, name)
    home = getattr(obj, "__module__", None)
    if isinstance(home, str) and home.startswith("aiterms.") and home != f"aiterms.{module}":
        home_mod = home.split(".")[1]
        return f"aiterms.{home_mod}.{name}" if home_mod in modules() and hasattr(
            importlib.import_module(home), name) else None
    if exported is not None and name not in exported:
        return None
    if isinstance(obj, type(sys)):  # a submodule, not a member
        return None
    return f"aiterms.{module}.{name}"


def uses(nb: dict) -> dict[str, list[str]]:
    """``{module: [documented targets]}`` that the chapter's code cells use."""
    found: dict[str, set[str]] = {}
    mods = set(modules())

    def add(module: str, name: str | None) -> None:
        if module not in mods:
            return
        found.setdefault(module, set())
        target = public(module, name) if name else None
        if target:
            found.setdefault(target.split(".")[1], set()).add(target)

    aliases: dict[str, str] = {}
    trees = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        src = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))  # no IPython magics
        trees.append(ast.parse(src))
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "aiterms":
                for a in node.names:
                    aliases[a.asname or a.name] = a.name
                    add(a.name, None)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiterms."):
                module = node.module.split(".")[1]
                for a in node.names:
                    add(module, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("aiterms.") and a.asname:
                        aliases[a.asname] = a.name.split(".")[1]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                add(aliases[node.value.id], node.attr)
    return {m: sorted(found[m]) for m in sorted(found)}


def links_cell(use: dict[str, list[str]]) -> str:
    lines = ["## The library on this page", "",
             "The course library's functions and classes that this page calls, in the "
             "{doc}`API reference <api/index>`:",
             ""]
    for module, targets in use.items():
        names = ", ".join(f"{{py:obj}}`~{t}`" for t in targets)
        lines.append(f"- {{doc}}`aiterms.{module} <api/aiterms.{module}>`" + (f": {names}" if names else ""))
    return "\n".join(lines)


def module_page(module: str, used_by: list[tuple[str, str]]) -> str:
    chapters_md = (", ".join(f"{{doc}}`{title} <../{stem}>`" for stem, title in used_by)
                   or "no chapter page (tools and tests)")
    return f"""# `aiterms.{module}`

Used in: {chapters_md}.

```{{eval-rst}}
.. automodule:: aiterms.{module}
   :members:
   :undoc-members:
```
"""


def index_page(mods: list[str], used_by: dict[str, list[tuple[str, str]]]) -> str:
    rows = []
    for m in mods:
        doc = (importlib.import_module(f"aiterms.{m}").__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        doc = doc.replace("|", "\\|").replace("{cite}", "").replace("`", "")
        rows.append(f"| {{doc}}`aiterms.{m} <aiterms.{m}>` | {doc} | {len(used_by[m])} |")
    return "\n".join([
        "# API reference", "",
        "The course library, `aiterms`, one page per module: what each function computes, its arguments and shapes,",
        "and the errors it raises, from the code's own docstrings. Every chapter ends with links to the functions it",
        "calls, and every module page lists the chapters that use it. (The grader, `aiterms.grading`, is documented in",
        "the {doc}`instructor guide <../instructor-guide>`.)", "",
        "| module | what it holds | chapters |", "|---|---|---|", *rows, ""])


def render() -> dict[Path, str]:
    """Every file this script writes, with its content."""
    sys.path.insert(0, str(ROOT / "lib"))
    mods = modules()
    used_by: dict[str, list[tuple[str, str]]] = {m: [] for m in mods}
    out: dict[Path, str] = {}
    for path in chapters():
        raw = path.read_text()
        nb = json.loads(raw)
        use = uses(nb)
        for m in use:
            used_by[m].append((path.stem, chapter_title(nb)))
        cells = [c for c in nb["cells"] if c.get("id") != CELL_ID]
        cells.append({"cell_type": "markdown", "id": CELL_ID, "metadata": {},
                      "source": links_cell(use).splitlines(True)})
        nb["cells"] = cells
        out[path] = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    for m in mods:
        out[API / f"aiterms.{m}.md"] = module_page(m, used_by[m])
    out[API / "index.md"] = index_page(mods, used_by)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page or a chapter's links are out of date")
    args = parser.parse_args()
    out = render()
    stale = [p for p, text in out.items() if not p.exists() or p.read_text() != text]
    extra = [p for p in API.glob("*.md") if p not in out]
    if args.check:
        for p in stale + extra:
            print(f"out of date: {p.relative_to(ROOT)} (run: .venv/bin/python tools/api_pages.py)")
        return 1 if stale or extra else 0
    API.mkdir(exist_ok=True)
    for p in extra:
        p.unlink()
    for p in stale:
        p.write_text(out[p])
    print(f"{len(stale)} file(s) written, {len(extra)} removed; {len(out)} in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
