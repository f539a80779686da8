# Two commands for a newcomer: `make run` (the app on the built-in corpus) and `make test`.
# Both are idempotent: the virtual environment is built once and rebuilt when pyproject changes.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8501

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned to 2.13.0 in pyproject: the CPU build (any other version pulls CUDA).
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# A local lab: every run in the store is listed and a summarizer URL may be typed in the app
# (both off by default, for a hosted demo). Override either from the environment.
# deploy/serve.sh is the hosted demo's launcher too (it sets Streamlit's upload cap to lmcore's).
run: install
	LMCORE_SHARED_RUNS=$${LMCORE_SHARED_RUNS:-1} LMCORE_ALLOW_LLM_URL=$${LMCORE_ALLOW_LLM_URL:-1} \
	LMCORE_PROFILE=$${LMCORE_PROFILE:-local} PYTHON=$(PY) ADDRESS=127.0.0.1 PORT=$(PORT) \
	deploy/serve.sh serve

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	for b in bench/*.py; do echo "## $$b"; $(PY) $$b || exit 1; done

# KenLM's lmplz for bench/ngram.py (fit-time column and cross-check), built once into
# .bench-cache/kenlm from the PyPI kenlm sdist; apt-get installs Boost/Eigen/cmake if missing.
.PHONY: bench-kenlm
bench-kenlm: install
	$(PY) bench/ngram.py --build-kenlm

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache
