"""The launch panel, headless: real widgets, real clicks, real runs (local and loopback)."""

from __future__ import annotations

import json
import shutil
import time
import uuid

import pytest

import mlrun_magic
from mlrun_magic.tracking import RestTracking



@pytest.fixture
def guarded(ip, monkeypatch):
    """Fail the test if any widget callback exception reaches IPython's traceback display
    (ipywidgets catches callback errors and only shows them there)."""

    def fail(*args, **kwargs):
        raise AssertionError("a widget callback raised an exception")

    monkeypatch.setattr(ip, "showtraceback", fail)
    return ip


def wait_for(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_form_is_built_from_the_mlproject(guarded):
    panel = mlrun_magic.panel()
    assert panel.errors == []
    assert panel.entry.options == ("main",)
    assert list(panel.fields) == ["alpha", "epochs", "label", "pause"]
    assert panel.fields["alpha"].value == "0.5"
    assert panel.fields["label"].value == "quick start"
    assert "quickstart" in panel.source_html.value
    assert not panel.launch_button.disabled


def test_typed_fields_required_markers_and_inline_validation(guarded, tmp_path):
    project = tmp_path / "text_stats"
    shutil.copytree(_examples() / "text_stats", project)
    panel = mlrun_magic.panel(str(project))
    panel.entry.value = "score"
    assert panel.fields["data"].description == "data *"
    assert "required" in panel.field_notes["data"].value
    assert panel.launch_button.disabled
    panel.fields["data"].value = "data/sample.txt"
    panel.fields["smoothing"].value = "a lot"
    assert "is not a number" in panel.field_notes["smoothing"].value
    assert panel.launch_button.disabled and panel.dry_run_button.disabled
    panel.fields["smoothing"].value = "0.5"
    assert panel.field_notes["smoothing"].value == ""
    assert not panel.launch_button.disabled
    panel.entry.value = "count"
    assert list(panel.fields) == ["data", "min_length", "top"]
    assert panel.errors == []


def _examples():
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "example_notebooks"


def test_local_launch_runs_with_the_form_values(guarded, mlflow_server):
    panel = mlrun_magic.panel()
    panel.fields["epochs"].value = "7"
    panel.fields["label"].value = "from the panel"
    panel.launch_button.click()
    assert panel.errors == []
    run = panel.tracked.run
    assert wait_for(lambda: 'data-status="FINISHED"' in panel.run_html.value)
    assert f'href="{run.links.mlflow_run}"' in panel.run_html.value
    params = RestTracking(mlflow_server.url).get_run(run.run_id)["params"]
    assert params["epochs"] == "7" and params["label"] == "from the panel"
    panel.refresh_history()
    assert run.run_id[:12] in panel.history_box.children[0].children[0].value


def test_dry_run_and_errors_stay_in_the_panel(guarded, dbip):
    ws = dbip.workspace
    panel = mlrun_magic.panel()
    panel.backend.value = "databricks"
    assert panel.databricks_box.layout.display == ""
    before = len(ws.requests())
    panel.dry_run_button.click()
    assert panel.errors == []
    assert "Dry run" in panel.run_html.value and "spark_python_task" in panel.run_html.value
    assert len(ws.requests()) == before
    panel.spec_file.value = "no-such-cluster.json"
    panel.launch_button.click()
    assert len(panel.errors) == 1 and "no-such-cluster.json" in panel.errors[0]
    assert "mlrun-magic-error" in panel.message.value


def test_databricks_launch_with_new_cluster_fields_and_cancel(guarded, dbip):
    ws = dbip.workspace
    panel = mlrun_magic.panel()
    panel.backend.value = "databricks"
    panel.compute.value = "new"
    panel.workers.value = 2
    panel.experiment.value = f"/Shared/panel-{uuid.uuid4().hex[:8]}"
    panel.fields["epochs"].value = "3"
    panel.launch_button.click()
    assert panel.errors == []
    run = panel.tracked.run
    assert wait_for(lambda: 'data-status="FINISHED"' in panel.run_html.value)
    html = panel.run_html.value
    assert f'href="{run.links.job_run}"' in html and f'href="{run.links.mlflow_run}"' in html
    item = ws.run(run.job_run_id)
    body = item.get("request") or item["submitted"]
    task = body["tasks"][0]
    assert task["new_cluster"]["num_workers"] == 2
    spec = json.loads(task["spark_python_task"]["parameters"][3])
    assert "--epochs 3" in spec["command"]
    # A long one, cancelled from the panel.
    panel.fields["epochs"].value = "300"
    panel.fields["pause"].value = "1"
    panel.launch_button.click()
    long_run = panel.tracked.run
    assert wait_for(lambda: long_run.status().status == "RUNNING", 60)
    panel.cancel_button.click()
    assert panel.errors == []
    assert long_run.status().status == "KILLED"
    assert 'data-status="KILLED"' in panel.run_html.value
    # Nothing secret in any widget's state (it is saved into the notebook).
    states = json.dumps([w.get_state() for w in _all_widgets(panel.widget)], default=str)
    assert ws.token not in states and "Launch" in states


def _all_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_widgets(child)


def test_text_fallback_says_how_to_enable_widgets(guarded):
    bundle = mlrun_magic.panel()._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "pip install ipywidgets jupyterlab_widgets" in data["text/plain"]


def test_magic_subcommand_displays_the_panel(guarded, cell):
    result, cap = cell("%project_run panel")
    assert result.success, result.error_in_exec
    assert "application/vnd.jupyter.widget-view+json" in cap.outputs[0].data
