"""The MLflow UI that `make demo` and `make lab` add: served by the real server, at the routes
our links use. Skipped where only mlflow-skinny is installed (`make test` needs no UI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mlrun_magic.testing.mlflow_ui import (UI_MISSING, graphene_requirement, install_commands,
                                           mlflow_requirement, ui_index, ui_ready)
from mlrun_magic.tracking.rest import RestTracking

REPO = Path(__file__).resolve().parents[2]
needs_ui = pytest.mark.skipif(not ui_ready(), reason=UI_MISSING)


@needs_ui
def test_the_server_serves_the_ui_at_the_routes_our_links_use(mlflow_server):
    index = ui_index()
    home = requests.get(mlflow_server.url + "/", timeout=30)
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    assert home.text == index.read_text()
    assert "Unable to display MLflow UI" not in home.text

    # The SPA reads the fragment: the page behind a run link is that index, and its bundle
    # routes exactly the path our links put after "#".
    tracking = RestTracking(mlflow_server.url)
    experiment = tracking.create_experiment(f"ui-{id(index)}").experiment_id
    run_id = requests.post(mlflow_server.url + "/api/2.0/mlflow/runs/create", timeout=30,
                           json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
    link = tracking.run_url(experiment, run_id)
    page, fragment = link.split("#", 1)
    assert fragment == f"/experiments/{experiment}/runs/{run_id}"
    assert tracking.experiment_url(experiment).split("#", 1)[1] == f"/experiments/{experiment}"
    assert requests.get(page, timeout=30).text == index.read_text()
    main_js = re.search(r'src="\.?/?(static-files/static/js/main\.[^"]+)"', home.text)[1]
    bundle = requests.get(f"{mlflow_server.url}/{main_js}", timeout=30)
    assert bundle.status_code == 200
    assert "createHashRouter" in bundle.text
    assert '"/experiments/:experimentId/runs/:runUuid"' in bundle.text
    assert '"/experiments/:experimentId"' in bundle.text

    # The run page asks /graphql: it must answer (not the 500 of a missing graphene).
    answer = requests.post(mlflow_server.url + "/graphql", timeout=30,
                           json={"query": "query { mlflowGetRun(input: {runId: \"%s\"}) "
                                          "{ run { info { runUuid } } } }" % run_id})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["mlflowGetRun"]["run"]["info"]["runUuid"] == run_id


def test_the_ui_install_is_the_skinny_version_without_dependencies():
    from importlib.metadata import version

    first, second = install_commands()
    assert first[:3] == [sys.executable, "-m", "pip"] and "--no-deps" in first
    assert first[-1] == mlflow_requirement() == f"mlflow=={version('mlflow-skinny')}"
    assert "--no-deps" not in second and second[-1] == graphene_requirement()
    assert re.fullmatch(r"graphene[<>=!~,.\d]*", graphene_requirement())


def dry_make(*args: str) -> str:
    """What ``make -n ARGS`` would run, as from a terminal: under ``make test`` the parent
    make's flags would otherwise add "Entering/Leaving directory" lines."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    return subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True).stdout


def test_demo_and_lab_install_the_ui_once_and_test_does_not():
    def plan(target: str) -> list[str]:
        return dry_make("-W", "pyproject.toml", target).splitlines()

    for target, script in (("demo", "scripts/demo.py"), ("lab", "scripts/lab.py")):
        steps = plan(target)
        ui = next(i for i, s in enumerate(steps) if "-m mlrun_magic.testing.mlflow_ui" in s)
        assert "touch .venv/.mlflow-ui-stamp" in steps[ui + 1]
        assert script in steps[-1] and ui < len(steps) - 1
    assert not any("mlflow_ui" in s for s in plan("test"))
    lab = dry_make("lab", "DIR=/tmp/my project")
    assert lab.splitlines()[-1].endswith('scripts/lab.py "/tmp/my project"')
