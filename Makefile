# AI Model Terms: the commands. `make help` lists them.
SHELL := /bin/bash
# everyone's dependencies, and the instructors' and developers' (the learner release has requirements.txt only)
REQUIREMENTS := requirements.txt requirements-dev.txt
TORCH_INDEX :=   # the CPU wheel comes from pip's configuration here (a local find-links)
SUBMISSIONS ?= submitted
EXERCISE ?= 16-beam-search
JOBS ?= 2
# make models: where to write (checkpoints/ holds the released models; replacing them needs FORCE=1)
OUT ?= _build/models
FORCE ?=

.PHONY: help setup models book check test release learner-release grade adjust bench lock sysdeps clean

help:  ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

include setup.mk

setup: $(STAMP) $(MATHJAX)  ## create .venv with the pinned dependencies and vendor MathJax

models: setup  ## retrain the course's models into OUT (default _build/models; OUT=checkpoints FORCE=1 replaces the released ones)
	$(BIN)/python -m aiterms.pipeline --out $(OUT) $(if $(FORCE),--force)

book: setup  ## set everything up and build the site into _build/html (from the released checkpoints: no training)
	$(BIN)/jupyter-book build . --warningiserror --keep-going

check: setup  ## run an exercise's visible tests: make check EXERCISE=16-beam-search (nbgrader validate)
	$(BIN)/nbgrader validate exercises/$(EXERCISE)/$(EXERCISE).ipynb

test: setup  ## run every test (library, notebooks, nbgrader round trips, the built site)
	# one torch thread per process: the JOBS workers (and the kernels they start) share the cores
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadfile --nbval-lax tests solutions

release: setup  ## regenerate exercises/ from solutions/ (nbgrader generate_assignment)
	$(BIN)/python tools/release.py

learner-release: setup  ## write the learners' repository into OUT=<folder>: book, exercises, library, models; no solutions or grading tools
	$(BIN)/python tools/learner_release.py $(if $(filter command line environment,$(origin OUT)),$(OUT),_build/learner-release)

grade: setup  ## autograde SUBMISSIONS=<folder>/<student>/<assignment>/*.ipynb into a gradebook, feedback and grades.csv
	$(BIN)/python -m aiterms.grading $(SUBMISSIONS) $(if $(BUDGET),--budget $(BUDGET))

adjust: setup  ## set a task's score by hand: STUDENT= ASSIGNMENT= TASK= SCORE= [COMMENT=] (CLEAR=1 removes it); kept by later grading while the submission is unchanged
	$(BIN)/python -m aiterms.grading.adjust "$(STUDENT)" "$(ASSIGNMENT)" "$(TASK)" $(SCORE) $(if $(COMMENT),--comment "$(COMMENT)") $(if $(CLEAR),--clear)

bench: setup  ## time notebooks, book build, grading, trainings, peer comparisons (BENCH="--only ppo"); table + _build/bench.json
	$(BIN)/python tools/bench.py $(BENCH)

lock:  ## rewrite constraints.txt from the current .venv
	echo '# The lock: exact versions of every package in .venv (pip freeze). Regenerate with make lock.' > constraints.txt
	$(BIN)/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/' >> constraints.txt

sysdeps:  ## install the Debian packages: bubblewrap (the grading sandbox), chromium + chromedriver (the browser test), postgresql (the shared-gradebook test); needs root
	(command -v bwrap && command -v chromedriver && ls /usr/lib/postgresql/*/bin/initdb) >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap chromium chromium-driver postgresql)

clean:  ## remove generated files (build, grading runs, caches); keeps .venv
	rm -rf _build _grading submitted autograded feedback gradebook.db grades.csv grading-log.csv similarity similarity.csv .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
