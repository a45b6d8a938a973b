# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lab install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# A loopback Databricks workspace, the quick-start notebook executed headlessly, its links.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Everything: unit, integration, the example notebooks (nbval) and the panel in Chromium.
test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest

# JupyterLab on 127.0.0.1 with the example notebooks and a loopback workspace.
lab: $(STAMP)
	$(BIN)/python scripts/lab.py

clean:
	rm -rf $(VENV) build .pytest_cache
