# Quick start: `make run` (simulate the default scenario) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/default.yaml
OUT ?= results/default

.PHONY: run test test-slow lint bench notebooks clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/flowsim run $(SCENARIO) --out $(OUT) --report
	@echo "Results are in $(OUT)/; open $(OUT)/report.html in a browser"

test: $(VENV)/.installed-dev
	$(BIN)/ruff check flowsim tests benchmarks
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m slow

# JupyterLab is not in the quick start's install: it is large, and only the notebooks need it.
notebooks: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[notebooks]'
	$(BIN)/jupyter lab notebooks/

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) results .pytest_cache
