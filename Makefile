# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
UI_STAMP := $(VENV)/.mlflow-ui-stamp

.PHONY: demo test bench lab install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# MLflow's web UI, for `make demo` and `make lab` only (`make test` needs none). Its static build
# ships only in the full `mlflow` wheel, whose dependencies (pandas, scipy, scikit-learn,
# matplotlib, pyarrow, docker...) are hundreds of MB that a tracking server never imports. In
# MLflow 3 that wheel is mlflow-skinny's files, byte for byte, plus the UI build: so we install
# `mlflow==<the pinned mlflow-skinny version>` with --no-deps, and graphene, which the UI's run
# page needs from the server (/graphql). See mlrun_magic/testing/mlflow_ui.py. Once per .venv.
$(UI_STAMP): $(STAMP)
	$(BIN)/python -m mlrun_magic.testing.mlflow_ui
	touch $(UI_STAMP)

# A loopback Databricks workspace, the quick-start notebook executed headlessly, its links.
demo: $(UI_STAMP)
	$(BIN)/python scripts/demo.py

# Everything: unit, integration, the example notebooks (nbval) and the panel in Chromium.
# Two pytest-xdist workers, each taking whole files (module fixtures, a notebook's cells stay
# together), the slowest files first (tests/conftest.py HEAVY_FIRST); the 15 slowest tests are
# listed at the end. Most of the suite waits on servers, drivers and kernels, so two workers
# overlap those waits even on two cores. `make test WORKERS=0` runs it in one process.
WORKERS ?= 2
test: $(STAMP)
	bash scripts/ensure_chromium.sh
	MLRUN_MAGIC_SUITE_RECORD=build/suite.json \
		$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

# Every performance claim next to its anchor (MLflow, tar|gzip -1), measured here: a table,
# and build/bench.json. Not part of `make test`; about 45 minutes (BENCH="--runs 3" etc.).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH)

# JupyterLab on 127.0.0.1 with a loopback workspace, on DIR (default: the example notebooks).
lab: $(UI_STAMP)
	$(BIN)/python scripts/lab.py $(if $(DIR),"$(DIR)")

clean:
	rm -rf $(VENV) build .pytest_cache
