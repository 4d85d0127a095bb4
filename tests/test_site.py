"""The built site: builds offline with -W, leaks no solution, has no broken link, loads nothing from the network.

The book is built once per test session (module fixture) into `_build/html`, with the notebook execution cache
emptied first: every chapter notebook runs against the current library (a cached run would not notice a library
change), and an error in any of them fails the -W build. This is the suite's only run of the chapter notebooks
(nbval runs the solution notebooks); the build leaves the cache filled, so a later `make book` is quick. With pytest-xdist every test here runs on one worker
(`--dist loadfile`, or xdist_group "book" under `--dist loadgroup`), so the book is built once. Another test that
reads _build/html must not run at the same time on another worker: this fixture deletes and rebuilds it.

The browser test needs Debian's chromium + chromedriver (`make sysdeps`): skipped without them, except on CI
(environment variable CI set), where it fails instead.
"""

from __future__ import annotations

import html
import http.server
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import threading
import zlib
from functools import partial
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
SCREENSHOTS = BUILD / "screenshots"
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
MATHJAX = ROOT / "_vendor" / "mathjax" / "tex-chtml.js"

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

CHAPTER_PAGE = "book/16-beam-search.html"
EXERCISE_PAGE = "exercises/16-beam-search/16-beam-search.html"

# Strings that only appear in nbgrader sources (solutions/): none may reach the site.
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "solutions/")
# Pages that document the grading workflow may *name* the markers and the solutions/ folder in their prose
# (docname -> the files generated from it). Everything else, the search index included, must not.
DOCS_ABOUT_GRADING = {
    "book/instructor-guide": ("book/instructor-guide.html", "_sources/book/instructor-guide.md"),
}

# Every term of the seed glossary (and the key steps of the pipeline and of post-training): each must be a glossary
# entry, with exactly this name (chapters link to them with {term}`...`).
SEED_TERMS = [
    "Large-scale reinforcement learning",
    "Reinforcement learning",
    "Agent",
    "Environment",
    "Reward",
    "Policy",
    "Supervised fine-tuning (SFT)",
    "Supervised training data",
    "Artificial general intelligence (AGI)",
    "Narrow AI",
    "Full training pipeline",
    "Data collection",
    "Data processing",
    "Pretraining",
    "Fine-tuning",
    "Evaluation",
    "Deployment",
    "Post-training",
    "Safety filtering",
    "Alignment tuning",
    "Quantization",
    "Deployment readiness testing",
    "RLHF",
    "RLAIF",
    "Inference-time scaling",
    "Chain-of-thought reasoning",
    "Effective test-time scaling",
    "Process reward model (PRM)",
    "Outcome reward model (ORM)",
    "Monte Carlo tree search (MCTS)",
    "Beam search",
    "Greedy decoding",
    "Length penalty",
    "PPO",
    "Critic",
    "GRPO",
    "Rejection sampling",
]

# Folders that must never be rendered, indexed or copied into the site.
NEVER_RENDERED = ["solutions", "submitted", "autograded", "feedback", "_grading", "_vendor", ".venv", "tests",
                  "tools", "lib"]

pytestmark = pytest.mark.xdist_group("book")


# --------------------------------------------------------------------------- helpers


class _Page(HTMLParser):
    """Collects the tags (with their attributes), the element ids and the text of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self._dt_depth = 0
        self._dt_text: list[str] = []
        self.dts: list[str] = []
        self._skip = 0  # inside <a class="headerlink">

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        self.tags.append((tag, a))
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "dt":
            self._dt_depth += 1
            self._dt_text = []
        if tag == "a" and "headerlink" in a.get("class", "").split():
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "dt" and self._dt_depth:
            self._dt_depth -= 1
            self.dts.append(" ".join("".join(self._dt_text).split()))
        if tag == "a" and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._dt_depth and not self._skip:
            self._dt_text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    page.close()
    return page


def _html_pages() -> list[Path]:
    """The site's pages (not the theme's Jinja macro files that land in _static/, nor MathJax's)."""
    return sorted(p for p in HTML.rglob("*.html") if _rel(p).split("/")[0] not in {"_static", "mathjax"})


def _rel(path: Path) -> str:
    return path.relative_to(HTML).as_posix()


def _is_external(url: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url) or url.startswith("//"))


def _resolve(page: Path, url: str) -> tuple[PurePosixPath | None, str]:
    """Target file (relative to the site root, None if outside it) and fragment of an internal URL on a page."""
    parts = urlsplit(url)
    base = posixpath.dirname(_rel(page))
    target = posixpath.normpath(posixpath.join(base, unquote(parts.path))) if parts.path else _rel(page)
    if target.startswith("..") or target.startswith("/"):
        return None, parts.fragment
    if url.split("?")[0].split("#")[0].endswith("/") or (HTML / target).is_dir():
        target = posixpath.join(target, "index.html")
    return PurePosixPath(target), unquote(parts.fragment)


def _internal_urls(page: _Page) -> list[tuple[str, str, str]]:
    """(tag, attribute, url) of every internal reference of a page (links, scripts, styles, images, refresh)."""
    out = []
    for tag, a in page.tags:
        for attr in ("href", "src"):
            url = a.get(attr, "").strip()
            if url and not _is_external(url):
                out.append((tag, attr, url))
        if a.get("srcset"):
            for candidate in a["srcset"].split(","):
                url = candidate.strip().split(" ")[0]
                if url and not _is_external(url):
                    out.append((tag, "srcset", url))
        if tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = re.search(r"url=(.+)$", a.get("content", ""), re.I)
            if m and not _is_external(m.group(1).strip()):
                out.append((tag, "content", m.group(1).strip()))
    return out


def _file_text(path: Path) -> str:
    """Searchable text of a built file: tags stripped from HTML (inline code is split into one span per word),
    objects.inv decompressed, everything else as is."""
    data = path.read_bytes()
    if path.name == "objects.inv":
        header_end = 0
        for _ in range(4):
            header_end = data.index(b"\n", header_end) + 1
        data = data[:header_end] + zlib.decompress(data[header_end:])
    text = data.decode("utf-8", errors="replace")
    if path.suffix == ".html":
        stripped = html.unescape(re.sub(r"<[^>]+>", "", text))
        return text + "\n" + stripped
    return text


# --------------------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess:
    """Build the book once: a fresh _build/html (no stale pages), every notebook executed (cache emptied)."""
    if not JUPYTER_BOOK.exists():
        pytest.fail(f"{JUPYTER_BOOK} not found: run `make setup`")
    if not MATHJAX.exists():
        pytest.fail(f"{MATHJAX.relative_to(ROOT)} missing: run `make setup` (vendors MathJax, served by the site)")
    shutil.rmtree(HTML, ignore_errors=True)
    shutil.rmtree(BUILD / ".doctrees", ignore_errors=True)
    shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", ".", "--warningiserror", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if not (HTML / "index.html").exists():
        pytest.fail("the book did not build:\n" + (result.stdout + result.stderr)[-6000:])
    return result


@pytest.mark.slow
def test_build_passes_with_warnings_as_errors(build):
    out = build.stdout + build.stderr
    warnings = [line for line in out.splitlines() if "WARNING" in line or "ERROR" in line]
    assert build.returncode == 0, "jupyter-book build -W failed:\n" + "\n".join(warnings) + "\n" + out[-4000:]
    for page in ["book/intro.html", "book/learner-guide.html", "book/instructor-guide.html", CHAPTER_PAGE,
                 EXERCISE_PAGE, "book/glossary.html", "book/bibliography.html", "index.html", "search.html",
                 "searchindex.js", "mathjax/tex-chtml.js"]:
        assert (HTML / page).is_file(), f"{page} missing from the site"


@pytest.mark.slow
def test_no_solution_or_hidden_test_leaks_into_the_site(build):
    for path in HTML.rglob("*"):
        rel = _rel(path)
        if rel.startswith("mathjax/"):
            continue  # the vendored MathJax, published on purpose (html_extra_path)
        parts = PurePosixPath(rel).parts
        for folder in NEVER_RENDERED:
            assert folder not in parts[:-1], f"{rel}: something from {folder}/ was rendered or copied into the site"
        assert "solution" not in rel.lower(), f"{rel}: a file named after solutions is in the site"
    allowed = {f for files in DOCS_ABOUT_GRADING.values() for f in files}
    for path in HTML.rglob("*"):
        if not path.is_file() or path.suffix in {".png", ".jpg", ".svg", ".woff", ".woff2", ".ttf", ".eot", ".ico"}:
            continue
        rel = _rel(path)
        if rel in allowed or rel.startswith("mathjax/"):
            continue
        text = _file_text(path)
        for marker in LEAK_MARKERS:
            assert marker not in text, f"{rel} contains {marker!r}: nbgrader source material reached the site"
    # and no page links into the instructors' folders
    for page_path in _html_pages():
        for tag, attr, url in _internal_urls(_parse(page_path)):
            target, _ = _resolve(page_path, url)
            assert target is None or target.parts[0] not in {"solutions", "_grading", "submitted", "feedback",
                                                               "autograded"}, f"{_rel(page_path)} links to {url}"


@pytest.mark.slow
def test_every_internal_link_resolves(build):
    broken, missing_anchor = [], []
    ids: dict[PurePosixPath, set[str]] = {}
    pages = {PurePosixPath(_rel(p)): _parse(p) for p in _html_pages()}
    for rel, page in pages.items():
        ids[rel] = page.ids
    for rel, page in pages.items():
        for tag, attr, url in _internal_urls(page):
            if url.startswith("#") and len(url) == 1:
                continue
            target, fragment = _resolve(HTML / rel, url)
            if target is None or not (HTML / target).is_file():
                broken.append(f"{rel}: <{tag} {attr}={url!r}>")
                continue
            if fragment and target.suffix == ".html" and tag == "a" and target in ids:
                if fragment not in ids[target]:
                    missing_anchor.append(f"{rel}: {url!r} (no id {fragment!r} in {target})")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])
    assert not missing_anchor, "links to missing anchors:\n" + "\n".join(missing_anchor[:50])


@pytest.mark.slow
def test_no_asset_from_the_network(build):
    """Scripts, styles, images, fonts and frames all come from the site itself (it must work offline)."""
    remote = []
    for page_path in _html_pages():
        for tag, a in _parse(page_path).tags:
            rel = a.get("rel", "").lower().split()
            urls = []
            if tag in {"script", "img", "iframe", "source", "audio", "video", "embed", "track", "input"}:
                urls.append(a.get("src", ""))
            if tag == "link" and set(rel) & {"stylesheet", "preload", "modulepreload", "icon", "shortcut",
                                              "apple-touch-icon", "manifest", "prefetch", "preconnect"}:
                urls.append(a.get("href", ""))
            if tag == "object":
                urls.append(a.get("data", ""))
            if a.get("srcset"):
                urls += [c.strip().split(" ")[0] for c in a["srcset"].split(",")]
            remote += [f"{_rel(page_path)}: <{tag}> {u}" for u in urls if _is_external(u.strip())
                       and not u.strip().startswith("data:")]
    for css in HTML.rglob("*.css"):
        for m in re.finditer(r"(?:url\(\s*['\"]?|@import\s+['\"])(https?:)?//[^)'\"]+", css.read_text(errors="replace")):
            remote.append(f"{_rel(css)}: {m.group(0)}")
    assert not remote, "assets loaded from the network:\n" + "\n".join(sorted(set(remote))[:50])
    chapter = (HTML / CHAPTER_PAGE).read_text(encoding="utf-8")
    assert "mathjax/tex-chtml.js" in chapter, "MathJax is not loaded from the vendored copy"
    for cdn in ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "require.min.js", "googletagmanager", "plausible.io"):
        assert cdn not in chapter, f"{CHAPTER_PAGE} refers to {cdn}"
    # the root index.html is a bare redirect with no icon link: a browser opening it asks for /favicon.ico
    icon = HTML / "favicon.ico"
    assert icon.is_file() and icon.read_bytes()[:4] == b"\x00\x00\x01\x00", "no icon at the site root"


@pytest.mark.slow
def test_exercises_are_rendered_not_executed(build):
    page = (HTML / EXERCISE_PAGE).read_text(encoding="utf-8")
    assert "NotImplementedError" in page, "the exercise page should show its stubs"
    assert "Traceback (most recent call last)" not in page and 'class="cell_output' not in page, \
        "the release exercise was executed"
    chapter = (HTML / CHAPTER_PAGE).read_text(encoding="utf-8")
    assert 'class="cell_output' in chapter, "the chapter notebook was not executed"


@pytest.mark.slow
def test_glossary_has_every_seed_term(build):
    terms = set(_parse(HTML / "book/glossary.html").dts)
    missing = [t for t in SEED_TERMS if t not in terms]
    assert not missing, f"glossary entries missing: {missing}"


@pytest.mark.slow
def test_bibliography_lists_the_references(build):
    text = _file_text(HTML / "book/bibliography.html").lower()
    for needle in ("Proximal Policy Optimization Algorithms", "DeepSeekMath", "Let's Verify Step by Step",
                   "Six Challenges for Neural Machine Translation", "If Beam Search is the Answer"):
        assert needle.lower() in text, f"bibliography is missing {needle!r}"


@pytest.mark.slow
def test_api_reference_documents_the_library_and_links_both_ways(build):
    """One page per module with every public function (autodoc ran: signatures, not the directive's text); chapter
    15 links to aiterms.mcts.search, and the module page links back to the chapter."""
    mcts = _file_text(HTML / "book/api/aiterms.mcts.html")
    for name in ("search", "select_ucb", "backup", "ucb_score", "puct_score", "root_parallel", "MCTSConfig"):
        assert f'id="aiterms.mcts.{name}"' in mcts, f"the API page of aiterms.mcts does not document {name}"
    assert "automodule" not in mcts and "{cite}" not in mcts and ":cite:" not in mcts, "a directive or role leaked"
    assert 'href="../15-mcts.html"' in mcts, "the module page does not link back to chapter 15"
    chapter = _file_text(HTML / "book/15-mcts.html")
    assert 'href="api/aiterms.mcts.html#aiterms.mcts.search"' in chapter, "chapter 15 does not link to search()"
    for module in sorted(p.stem for p in (ROOT / "lib/aiterms").glob("*.py") if p.stem != "__init__"):
        assert (HTML / f"book/api/aiterms.{module}.html").is_file(), f"no API page for aiterms.{module}"


# --------------------------------------------------------------------------- config (no build needed)


def test_config_excludes_instructor_and_generated_folders():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    for folder in NEVER_RENDERED:
        assert f"{folder}/**" in config["exclude_patterns"], f"{folder}/** not excluded"
    execute = config["execute"]
    assert execute["execute_notebooks"] == "cache" and execute["allow_errors"] is False
    assert execute["timeout"] > 0
    release = PurePosixPath(ROOT.as_posix()) / "exercises/16-beam-search/16-beam-search.ipynb"
    assert any(release.match(p) for p in execute["exclude_patterns"]), "release notebooks would be executed"
    assert not any((PurePosixPath(ROOT.as_posix()) / CHAPTER_PAGE.replace(".html", ".ipynb")).match(p)
                   for p in execute["exclude_patterns"]), "chapter notebooks would not be executed"
    sphinx = config["sphinx"]["config"]
    assert not sphinx.get("intersphinx_mapping"), "intersphinx fetches inventories from the network"
    assert "://" not in sphinx["mathjax_path"]
    assert config["launch_buttons"].get("thebe") is False


def test_every_glossary_term_links_to_its_chapter():
    """Two glossary blocks: the seed glossary's terms in its order, then the others from A to Z; every entry links
    to its chapter."""
    text = (ROOT / "book" / "glossary.md").read_text()
    blocks = [part.split("\n```", 1)[0] for part in text.split("```{glossary}")[1:]]
    assert len(blocks) == 2 and ":sorted:" not in blocks[0] and ":sorted:" in blocks[1]
    body = "\n\n".join(b.replace(":sorted:", "") for b in blocks)
    entries = [e for b in blocks for e in re.split(r"\n\n(?=[A-Z])", b.replace(":sorted:", "").strip()) if e.strip()]
    seed_order = [e.splitlines()[0] for e in re.split(r"\n\n(?=[A-Z])", blocks[0].strip())]
    assert seed_order[:3] == ["Large-scale reinforcement learning", "Supervised fine-tuning (SFT)",
                              "Artificial general intelligence (AGI)"] and seed_order[-1] == "Supervised training data"
    assert len(entries) > 40
    unlinked = [e.splitlines()[0] for e in entries if not re.search(r"\*Chapters?:\* \{doc\}`[^`]+<\d\d-[a-z-]+>`", e)]
    assert not unlinked, f"glossary terms without a chapter link: {unlinked}"
    chapters = {p.stem for p in (ROOT / "book").glob("[0-9][0-9]-*.ipynb")}
    assert set(re.findall(r"<(\d\d-[a-z-]+)>`", body)) <= chapters, "a glossary link to a chapter that does not exist"


def test_claim_checks_are_hidden_from_readers():
    """The cells that assert the text's claims (id ending in "-check", or starting "# checks") run at every build
    and never show on the page (tag remove-cell)."""
    shown = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and (cell.get("id", "").endswith("-check") or source.startswith("# checks")):
                if "remove-cell" not in cell["metadata"].get("tags", []):
                    shown.append(f"{path.name}:{cell.get('id')}")
    assert not shown, f"claim checks shown on the page: {shown}"


def test_toc_lists_only_existing_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    for f in files:
        assert not f.startswith(("solutions/", "submitted/", "autograded/", "feedback/")), f
        assert any((ROOT / f"{f}{ext}").is_file() for ext in (".md", ".ipynb")), f"_toc.yml lists {f}: no such page"



def test_one_chapter_order_everywhere():
    """Titles, file names, the sidebar, the intro's table, the exercises and the assignment ids follow one order:
    chapter N is book/NN-topic.ipynb, titled "N. ...", listed N-th in the sidebar and the intro, with
    exercises/NN-topic/NN-topic.ipynb titled "Exercise N: ..." and assignment NN-topic."""
    sys.path.insert(0, str(ROOT / "lib"))
    from aiterms.grading.course import ASSIGNMENTS

    pages = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]-*.ipynb"))
    assert [int(p[:2]) for p in pages] == list(range(1, len(pages) + 1)), pages
    assert ASSIGNMENTS == pages, "assignment ids and chapter files differ"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    in_toc = [c["file"].removeprefix("book/") for part in toc["parts"] for c in part["chapters"]
              if re.fullmatch(r"book/\d\d-.*", c["file"])]
    assert in_toc == pages, "the sidebar does not list the chapters in their order"
    intro = re.findall(r"^\| (\d+) \| \*\*\{doc\}`[^<]*<(\d\d-[^>]+)>`", (ROOT / "book/intro.md").read_text(), re.M)
    assert [(int(n), stem) for n, stem in intro] == [(int(p[:2]), p) for p in pages], "the intro's table"
    for page in pages:
        n = int(page[:2])
        for path, title in ((ROOT / "book" / f"{page}.ipynb", f"# {n}. "),
                            (ROOT / "exercises" / page / f"{page}.ipynb", f"# Exercise {n}: "),
                            (ROOT / "solutions" / page / f"{page}.ipynb", f"# Exercise {n}: ")):
            cells = json.loads(path.read_text())["cells"]
            heads = [line for c in cells if c["cell_type"] == "markdown"
                     for line in "".join(c["source"]).splitlines() if line.startswith("# ")]
            assert heads and heads[0].startswith(title), f"{path.relative_to(ROOT)}: {heads[:1]} (expected {title!r})"


# --------------------------------------------------------------------------- in a browser


def _chromium_or_skip():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"browser test needs {', '.join(missing)} (make sysdeps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url(build):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    _chromium_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, url: str) -> None:
    driver.get_log("browser")  # drop entries of earlier pages
    driver.get_log("performance")
    driver.get(url)


def _network_problems(driver, site_url: str) -> list[str]:
    """Requests that left the local server, and requests that failed."""
    problems = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((site_url, "data:", "blob:", "about:")):
                problems.append(f"request to {url}")
        elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"failed request {params.get('requestId')}: {params.get('errorText')}")
        elif message["method"] == "Network.responseReceived":
            status = params["response"]["status"]
            if status >= 400:
                problems.append(f"HTTP {status} for {params['response']['url']}")
    return problems


@pytest.mark.slow
@pytest.mark.browser
def test_intro_page_in_chromium(build, site_url, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, f"{site_url}/index.html")  # redirects to book/intro.html
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("book/intro.html")
                                     and d.execute_script("return document.readyState") == "complete")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "intro.png"))
    assert "AI Model Terms" in browser.title
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"console errors: {severe}"
    assert not _network_problems(browser, site_url)


@pytest.mark.slow
@pytest.mark.browser
def test_chapter_page_renders_math_and_images_offline(build, site_url, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, f"{site_url}/{CHAPTER_PAGE}")
    wait = WebDriverWait(browser, 60, poll_frequency=0.25)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    # MathJax 3 (vendored) typesets every math element of the page
    wait.until(lambda d: d.execute_script(
        "return !!(window.MathJax && MathJax.startup && MathJax.startup.document"
        " && document.querySelectorAll('mjx-container').length > 0"
        " && [...document.querySelectorAll('.math')].every(e => e.querySelector('mjx-container')))"))
    assert browser.execute_script("return document.querySelectorAll('mjx-merror, .MathJax_Error').length") == 0, \
        "MathJax reported a TeX error"
    # every image loaded, and the page has at least one (the executed notebook's plots)
    wait.until(lambda d: d.execute_script(
        "return [...document.images].every(i => i.complete)"))
    images = browser.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth, !!i.closest('article')])")
    assert any(in_article for _, _, in_article in images), "the chapter page shows no image"
    broken = [src for src, width, _ in images if not width]
    assert not broken, f"images that did not load: {broken}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "16-beam-search.png"))
    # and the first displayed equation and the first figure, to look at
    for name, selector in (("math", "mjx-container[display='true'], mjx-container"), ("figure", "article img")):
        if browser.execute_script(
                f"const e = document.querySelector({selector!r}); if (e) e.scrollIntoView({{block: 'center'}});"
                " return !!e"):
            browser.save_screenshot(str(SCREENSHOTS / f"16-beam-search-{name}.png"))
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"console errors: {severe}"
    problems = _network_problems(browser, site_url)
    assert not problems, "network problems:\n" + "\n".join(problems)
