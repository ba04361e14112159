# `make test` and friends create and reuse .venv themselves; nothing to install by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: test test-pythons lint typecheck pytest bench clean demo demo-screenshot docs

FRAMEWORK ?= fastapi
DEMO_ARGS ?=
BENCH_ARGS ?=

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed. The groups are pyproject.toml's
# [dependency-groups] (pip 25.1 installs them); dev includes demo and docs.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group demo
	touch $(DEMO_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The suite on the other supported Pythons present here (pyenv's too), each in .nox/:
# noxfile.py. An absent one is reported as skipped. CI runs it after `make test`.
OTHER_PYTHONS ?= 3.10 3.12 3.13
test-pythons: $(STAMP)
	$(BIN)/nox -s tests -p $(OTHER_PYTHONS)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e . --group bench
	touch $(BENCH_STAMP)

# The whole benchmark suite (about 5 minutes on 2 cores): a table, bench/results/latest.{json,md}
# and docs/bench.png. `make bench BENCH_ARGS=--quick` for a fast smoke run.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The demo: `make demo`, `make demo FRAMEWORK=flask`; more options in DEMO_ARGS.
demo: $(DEMO_STAMP)
	$(BIN)/python -m demo_app --framework $(FRAMEWORK) $(DEMO_ARGS)

# The docs site (mkdocs.yml, docs/) into site/; --strict makes every warning an error. The
# docs group comes with dev. NO_MKDOCS_2_WARNING quiets Material's end-of-life notice.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Retakes docs/demo.png and docs/demo-phone.png from the real page (needs Debian's chromium).
demo-screenshot: $(STAMP)
	$(BIN)/python -m tests.demo.screenshot docs/demo.png

clean:
	rm -rf $(VENV) .nox .mypy_cache .ruff_cache .pytest_cache site
