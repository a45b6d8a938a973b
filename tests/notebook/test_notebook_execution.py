"""Notebooks executed by nbclient in a real kernel: failures stop them, live views are saved."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[2]


def notebook(folder: Path, *sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


@pytest.fixture
def project(tmp_path, mlflow_server):
    folder = tmp_path / "quickstart"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", folder,
                    ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    return folder


def execute(nb, folder, timeout=120):
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    return client.execute()


def test_a_failing_cell_stops_the_notebook(project, mlflow_server):
    nb = notebook(project, "%load_ext mlrun_magic",
                  f"%config ProjectRun.tracking_uri = {mlflow_server.url!r}",
                  "%project_run -P epochs=oops",
                  "print('this must not run')")
    with pytest.raises(CellExecutionError) as info:
        execute(nb, project)
    assert info.value.ename == "MLprojectError"
    assert "MLproject error: " in str(info.value)
    assert "'oops' is not a whole number" in str(info.value)
    assert nb.cells[3].get("outputs") == []
    error = next(o for o in nb.cells[2]["outputs"] if o["output_type"] == "error")
    assert error["ename"] == "MLprojectError"
    # The traceback is our short message, not a Python traceback from our code.
    assert not any("File " in line for line in error["traceback"])


def test_a_failed_waited_run_fails_its_cell(project, mlflow_server):
    (project / "MLproject").write_text(
        "name: broken\nentry_points:\n  main:\n    command: \"exit 3\"\n")
    nb = notebook(project, "%load_ext mlrun_magic",
                  f"%config ProjectRun.tracking_uri = {mlflow_server.url!r}",
                  "%project_run --wait", "print('not reached')")
    with pytest.raises(CellExecutionError, match="Run failed: run [0-9a-f]+ ended FAILED"):
        execute(nb, project)


def test_saved_notebook_holds_the_final_status(project, mlflow_server):
    nb = notebook(project, "%load_ext mlrun_magic",
                  f"%config ProjectRun.tracking_uri = {mlflow_server.url!r}",
                  "%project_run -P epochs=3 --wait --run-name saved")
    execute(nb, project)
    outputs = nb.cells[2]["outputs"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert 'data-status="FINISHED"' in html
    assert f'href="{mlflow_server.url}/#/experiments/' in html
    # One view, updated in place: the update replaced the first render.
    assert sum("mlrun-magic-run" in o.get("data", {}).get("text/html", "") for o in outputs) == 1
