"""The course's timing budgets, measured: `make bench` prints a table and writes _build/bench.json.

Rows:
* the training pipeline (`make models`) end to end, with its accuracy by problem size (budget: under 5 minutes);
* every notebook (chapter pages in book/, solution notebooks in solutions/) in a fresh kernel: wall time and the
  kernel's peak memory (budget: under 60 s and 2 GB each);
* the book build, cold (empty execution cache, new output folder) and cached (the same again);
* the README's two commands in a fresh clone: `make book` (budget 5 min) and `make test` (pytest budget 15 min;
  both together, i.e. `.ci/run`, 25 min);
* robustness (tools/bench_robustness.py): the pipeline for seeds 0-2 under two CPU kernels, every metric the book
  relies on against the band it states;
* grading: a synthetic class of 60 chapter-14 submissions (correct, wrong, faulty and cheating ones) through
  `make grade` end to end, judge and sandbox included: submissions per minute (target: at least 30 on 2 cores);
* beam search against transformers' `generate(num_beams=k)` on the same tiny random GPT-2: time and identical output;
* every chapter benchmark `tools/bench_<name>.py` (its `rows()`): trainings that take minutes and comparisons with
  peer libraries (e.g. our PPO against Stable-Baselines3's). Each can also run alone: `python tools/bench_<name>.py`.

Budgets come from the course design notes; nothing here asserts them: read the table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, ROOT, tool_env

RUN_NOTEBOOK = """
import resource, sys, time, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def notebooks() -> list[Path]:
    return sorted(ROOT.glob("book/*.ipynb")) + sorted(ROOT.glob("solutions/*/*.ipynb"))


def time_notebook(path: Path) -> dict:
    """Run one notebook in a fresh kernel (its own process, so peak memory is its own)."""
    out = subprocess.run([sys.executable, "-c", RUN_NOTEBOOK, str(path), str(path.parent)], env=tool_env(),
                         capture_output=True, text=True, check=True)
    seconds, peak_mb = map(float, out.stdout.split()[-2:])
    return {"what": f"notebook {path.relative_to(ROOT)}", "seconds": seconds, "peak_mb": peak_mb,
            "budget": "< 60 s, < 2048 MB"}


def time_book() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for kind in ("cold", "cached"):
            start = time.perf_counter()
            subprocess.run([str(BIN / "jupyter-book"), "build", str(ROOT), "--path-output", out, "--warningiserror",
                            "--quiet"], env=tool_env(), check=True, capture_output=True)
            rows.append({"what": f"book build ({kind})", "seconds": time.perf_counter() - start,
                         "budget": "cold < 5 min (with setup, see fresh clone)"})
    return rows


def synthetic_class(inbox: Path, course: Path, size: int = 60) -> dict[str, str]:
    """A class of chapter 16 mixing correct (1/3), wrong (1/3) and faulty or cheating (1/3) submissions."""
    sys.path.insert(0, str(ROOT / "tests"))
    import nbformat
    from nbtools import answer_cells, fill, read
    from test_grading_class import hostile
    from wrong.ex16_beam_search import WRONG

    name = "16-beam-search"
    release, solution = read(ROOT / "exercises" / name / f"{name}.ipynb"), answer_cells(
        read(ROOT / "solutions" / name / f"{name}.ipynb"))
    wrong = [{task: src} for task, variants in WRONG.items() for src in variants.values()]
    bad = [answers for kind, (answers, _) in hostile(solution, course, inbox).items() if answers]
    kinds = {}
    for i in range(size):
        group, j = i % 3, i // 3
        answers = [{}, wrong[j % len(wrong)], bad[j % len(bad)]][group]
        kinds[f"student{i:02d}"] = ["correct", "wrong", "faulty-or-cheating"][group]
        path = inbox / f"student{i:02d}" / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(fill(release, {**solution, **answers}), path)
    return kinds


def time_grading(size: int = 60) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from aiterms.grading.grade import grade
    from nbtools import make_course

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = make_course(tmp)
        synthetic_class(tmp / "inbox", course, size)
        start = time.perf_counter()
        grade(tmp / "inbox", course, jobs=os.cpu_count() or 2)
        seconds = time.perf_counter() - start
    return {"what": f"make grade: class of {size} (1/3 correct, 1/3 wrong, 1/3 faulty or cheating)",
            "seconds": seconds, "per_submission_s": seconds / size, "submissions_per_minute": 60 * size / seconds,
            "cores": os.cpu_count(), "budget": ">= 30 per minute on 2 cores"}


def time_pipeline() -> dict:
    """`python -m aiterms.pipeline` end to end into a temporary folder, with its headline metrics (the robustness
    benchmark, tools/bench_robustness.py, runs it for three seeds and two CPU kernels)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aiterms.pipeline", "--out", out], env=tool_env(), check=True,
                       capture_output=True)
        seconds = time.perf_counter() - start
        m = json.loads((Path(out) / "metrics.json").read_text())
    fmt = lambda d: " ".join(f"{k}d:{v:.0%}" for k, v in d.items())  # noqa: E731
    k = m["config"]["pass_k"]
    return {"what": "training pipeline (make models), end to end", "seconds": seconds,
            "stages": " ".join(f"{name}:{sec:.0f}" for name, sec in m["seconds"].items()),
            "cot_accuracy": fmt(m["cot_accuracy_by_digits"]), "direct_accuracy": fmt(m["direct_accuracy_by_digits"]),
            "hard_set": f"{m['hard']['digits']}-digit greedy {m['hard']['greedy_pass@1']:.1%} -> "
                        f"{m['hard_rl']['greedy_pass@1']:.1%} after GRPO ({100 * m['rl_gain']['gain']:+.1f} "
                        f"+- {100 * m['rl_gain']['se']:.1f}), pass@{k} {m['hard'][f'sampled_pass@{k}']:.0%}",
            "budget": "< 5 min on an idle 2-core machine"}


def time_fresh_clone() -> list[dict]:
    """The README's two commands in a fresh clone of the committed HEAD (pip's cache warm, as on a CI runner that
    keeps it; nothing else carried over): `make book` (setup and the book from the released checkpoints), then
    `make test` (its pytest part timed from pytest's own summary). Together they are what `.ci/run` does after
    `make sysdeps`."""
    import re
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "AITERMS_CHECKPOINTS")}
        for target, budget in (("book", "< 5 min"), ("test", "pytest < 15 min; with make book < 25 min")):
            start = time.perf_counter()
            out = subprocess.run(["make", target], cwd=clone, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            row = {"what": f"fresh clone: make {target}", "seconds": seconds, "ok": out.returncode == 0,
                   "budget": budget}
            summary = re.findall(r"=+ (.*) in ([\d.]+)s", out.stdout)
            if summary:
                row["pytest"] = f"{summary[-1][0]} in {float(summary[-1][1]):.0f} s"
            rows.append(row)
    rows.append({"what": "fresh clone: make book + make test (.ci/run without sysdeps)",
                 "seconds": sum(r["seconds"] for r in rows), "budget": "< 25 min"})
    return rows


def time_beam_search() -> list[dict]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from aiterms.beam_search import beam_search

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                                       initializer_range=0.3, bos_token_id=0, eos_token_id=1)).eval()
    prompt, k, new, eos = list(range(2, 10)), 4, 32, 1
    lm = lambda ids: model(ids).logits[:, -1, :]  # noqa: E731
    rows, outputs = [], {}
    for label, fn in [
        ("aiterms.beam_search (recomputes the prefix each step)",
         lambda: [h.tokens for h in beam_search(lm, prompt, k, new, eos_token_id=eos)]),
        *[(f"transformers generate, use_cache={cache}", lambda cache=cache: hf(model, prompt, k, new, eos, cache))
          for cache in (False, True)]]:
        fn()  # warm up
        start = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            outputs[label] = fn()
        rows.append({"what": f"beam k={k}, {new} new tokens: {label}", "seconds": (time.perf_counter() - start) / repeats})
    ours = outputs[rows[0]["what"].split(": ", 1)[1]]
    for row in rows:
        label = row["what"].split(": ", 1)[1]
        row["same_output"] = outputs[label] == ours
        row["ratio_to_aiterms"] = row["seconds"] / rows[0]["seconds"]
    return rows


def hf(model, prompt, k, new, eos, use_cache):
    import torch
    from transformers import GenerationConfig
    ids = torch.tensor([prompt])
    config = GenerationConfig(num_beams=k, num_return_sequences=k, max_new_tokens=new, do_sample=False,
                              eos_token_id=eos, pad_token_id=eos, use_cache=use_cache)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    result = []
    for seq in out[:, len(prompt):].tolist():
        result.append(seq[:seq.index(eos) + 1] if eos in seq else seq)
    return result


def chapter_benchmarks() -> dict[str, Path]:
    """name -> tools/bench_<name>.py, each with a ``rows() -> list[dict]``."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(Path(__file__).parent.glob("bench_*.py"))}


def print_table(rows: list[dict]) -> None:
    print(f"\n{'what':<78}{'seconds':>9}  details")
    for row in rows:
        details = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items() if k not in ("what", "seconds"))
        print(f"{row['what']:<78}{row['seconds']:>9.2f}  {details}")


def main() -> None:
    import importlib
    parser = argparse.ArgumentParser(description="Measure the course's time and memory budgets.")
    extra = chapter_benchmarks()
    parts = ["pipeline", "notebooks", "book", "fresh", "grading", "beam", *extra]
    parser.add_argument("--skip", nargs="*", default=[], choices=parts, help="parts to leave out")
    parser.add_argument("--only", nargs="*", default=None, choices=parts, help="run only these parts")
    args = parser.parse_args()
    if args.only is not None:
        args.skip = [p for p in parts if p not in args.only]
    rows: list[dict] = []
    if "pipeline" not in args.skip:
        print("running the training pipeline ...", flush=True)
        rows.append(time_pipeline())
    if "notebooks" not in args.skip:
        for nb in notebooks():
            print(f"running {nb.relative_to(ROOT)} ...", flush=True)
            rows.append(time_notebook(nb))
    if "book" not in args.skip:
        print("building the book twice (cold, cached) ...", flush=True)
        rows += time_book()
    if "fresh" not in args.skip:
        print("a fresh clone: make book, make test ...", flush=True)
        rows += time_fresh_clone()
    if "grading" not in args.skip:
        print("grading a class of 60 ...", flush=True)
        rows.append(time_grading())
    if "beam" not in args.skip:
        print("beam search against transformers ...", flush=True)
        rows += time_beam_search()
    for name, path in extra.items():
        if name not in args.skip:
            print(f"running {path.name} ...", flush=True)
            rows += importlib.import_module(path.stem).rows()

    print_table(rows)
    out = ROOT / "_build" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
