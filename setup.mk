# The environment (.venv, from the pinned dependencies) and the vendored MathJax: shared by the course's Makefile
# and the learners' (make learner-release copies this file). Set REQUIREMENTS (and TORCH_INDEX) before including it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := _vendor/mathjax/tex-chtml.js

$(STAMP): $(REQUIREMENTS) constraints.txt pyproject.toml setup.mk
	$(PYTHON) -m venv $(VENV)
	# torch first, alone: the CPU build, never the CUDA one (TORCH_INDEX: where to find it, if not in pip's configuration)
	$(BIN)/pip install torch==2.13.0 $(TORCH_INDEX)
	$(BIN)/pip install $(addprefix -r ,$(REQUIREMENTS)) -c constraints.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

$(MATHJAX):  # MathJax served from the site itself: no CDN (npm registry at install time only)
	rm -rf _vendor/mathjax _vendor/tmp && mkdir -p _vendor/tmp
	cd _vendor/tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-$(MATHJAX_VERSION).tgz
	mv _vendor/tmp/package/es5 _vendor/mathjax && rm -rf _vendor/tmp
