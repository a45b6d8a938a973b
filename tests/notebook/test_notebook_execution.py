"""Notebooks executed by nbclient in a real kernel: failures stop them, live views are saved."""

from __future__ import annotations

import re
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


def test_an_html_export_shows_the_panels_form_and_latest_run(project, mlflow_server):
    """issue 12 #9: nbconvert shows a widget through its saved state and a script from a CDN,
    so an export read offline showed no panel at all. The snapshot after it is plain HTML."""
    from nbconvert import HTMLExporter

    nb = notebook(project, "%load_ext mlrun_magic",
                  f"%config ProjectRun.tracking_uri = {mlflow_server.url!r}",
                  "%project_run -P epochs=3 --wait --run-name before-the-panel",
                  "import mlrun_magic\npanel = mlrun_magic.panel()\npanel",
                  "panel.fields['label'].widget.value = 'as <exported>'")
    execute(nb, project)
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata["widgets"]
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert 'type="application/vnd.jupyter.widget-view+json"' in body  # the widget is kept
    snapshots = re.findall(r"<div class=.mlrun-magic-panel-fallback.*?</table>", body, re.S)
    assert len(snapshots) == 1
    rows = dict(re.findall(r"<tr[^>]*><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td></tr>",
                           snapshots[0]))
    assert {k: rows[k] for k in ("Project", "Entry point", "epochs", "label", "Backend")} == {
        "Project": "quickstart", "Entry point": "main", "epochs": "200",
        "label": "as &lt;exported&gt;", "Backend": "local"}
    latest = rows["Latest run"]
    assert "data-status='FINISHED'" in latest or 'data-status="FINISHED"' in latest
    assert re.search(rf"href=.{re.escape(mlflow_server.url)}/#/experiments/\d+/runs/[0-9a-f]{{32}}",
                     latest), latest
