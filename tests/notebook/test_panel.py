"""The launch panel, headless: real widgets, real clicks, real runs (local on the session's
MLflow server, Databricks on the loopback workspace). Nothing of ours is mocked.

Two guards make a handler's exception fail the test instead of vanishing: the shell's
``showtraceback`` (where ipywidgets sends callback errors) raises, and every panel made with
``open_panel`` must end the test with an empty error record (a test that expects an error
takes it with ``take_errors``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from html import unescape
from pathlib import Path

import pytest

import mlrun_magic
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.tracking import RestTracking

EXAMPLES = Path(__file__).resolve().parents[2] / "example_notebooks"


@pytest.fixture
def guarded(ip, monkeypatch):
    """Fail the test if any widget callback exception reaches IPython's traceback display."""

    def fail(*args, **kwargs):
        raise AssertionError("a widget callback raised an exception")

    monkeypatch.setattr(ip, "showtraceback", fail)
    return ip


@pytest.fixture
def open_panel(guarded):
    """``open_panel(uri=None)`` builds a panel; at teardown, every panel must be idle and
    have met no error the test did not take."""
    panels = []

    def make(uri=None):
        panel = mlrun_magic.panel(uri)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        assert panel.wait(120), "a panel action is still running"
        assert panel.errors == [], f"unexpected panel errors: {panel.errors}"


def take_errors(panel) -> list[str]:
    """The panel's errors so far (cleared: they were expected)."""
    errors = list(panel.errors)
    panel.errors.clear()
    panel.exceptions.clear()
    return errors


def settle(panel, timeout=120):
    assert panel.wait(timeout), "the panel's action did not finish"


def wait_for(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def history_rows(panel) -> list[tuple[str, str]]:
    """(run id shown, status) of the visible history rows."""
    table = panel.history
    return [(rid, status) for rid, status in zip(table.run_ids, table.statuses) if rid]


def test_form_is_built_from_the_mlproject(open_panel, ip):
    import ipywidgets as w

    panel = open_panel()
    assert panel.entry.options == ("main",)
    assert list(panel.fields) == ["alpha", "epochs", "label", "pause"]
    fields = {name: field.widget for name, field in panel.fields.items()}
    # every type is a text field: it launches exactly what it shows
    assert isinstance(fields["alpha"], w.Text) and fields["alpha"].value == "0.5"
    assert isinstance(fields["epochs"], w.Text) and fields["epochs"].value == "200"
    assert isinstance(fields["label"], w.Text) and fields["label"].value == "quick start"
    assert "float · default 0.5" in panel.fields["alpha"].note.value
    assert "quickstart" in panel.source_html.value and "not in git" in panel.source_html.value
    assert not panel.launch_button.disabled and panel.cancel_button.disabled
    assert "No runs yet" in panel.history.empty.value
    # In git: the commit, the branch and whether the tree is dirty.
    project = Path(ip.project_dir)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(git + ["init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run(git + ["add", "."], cwd=project, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "x"], cwd=project, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, check=True,
                            capture_output=True, text=True).stdout.strip()
    panel.load_button.click()
    assert commit[:10] in panel.source_html.value and "on main · clean" in panel.source_html.value
    (project / "train.py").write_text("# changed\n", encoding="utf-8")
    panel.load_button.click()
    assert "uncommitted changes" in panel.source_html.value


def test_required_markers_and_inline_validation(open_panel, tmp_path):
    project = tmp_path / "text_stats"
    shutil.copytree(EXAMPLES / "text_stats", project)
    panel = open_panel(str(project))
    assert panel.entry.options == ("count", "score")
    panel.entry.value = "score"
    data = panel.fields["data"]
    assert "*" in data.label.value and "title='required'" in data.label.value
    assert "required" in data.note.value and "mlrun-magic-invalid" in data.note.value
    assert panel.launch_button.disabled and panel.dry_run_button.disabled
    data.widget.value = "data/sample.txt"
    assert "mlrun-magic-invalid" not in data.note.value
    assert not panel.launch_button.disabled
    panel.entry.value = "count"
    assert list(panel.fields) == ["data", "min_length", "top"]
    # Types the number inputs cannot enforce: a required float (a text field) and a uri.
    other = tmp_path / "typed"
    other.mkdir()
    (other / "MLproject").write_text(
        "name: typed\nentry_points:\n  main:\n    parameters:\n"
        "      rate: float\n      source: {type: uri, default: 's3://bucket/data'}\n"
        "    command: python -c 'print({rate})' {source}\n", encoding="utf-8")
    panel.project_text.value = str(other)
    rate, source = panel.fields["rate"], panel.fields["source"]
    rate.widget.value = "a lot"
    assert "'a lot' is not a number" in unescape(rate.note.value)
    rate.widget.value = "0.25"
    source.widget.value = "just-a-name"
    assert "Expected URI for parameter source" in source.note.value
    assert panel.launch_button.disabled
    with pytest.raises(Exception, match="missing or invalid"):
        panel.request()
    source.widget.value = "file:///tmp/data"
    assert panel.request().parameters == {"rate": "0.25", "source": "file:///tmp/data"}


def test_a_missing_project_is_a_readable_error(open_panel):
    panel = open_panel()
    panel.project_text.value = "/no/such/project"
    errors = take_errors(panel)
    assert len(errors) == 1 and "/no/such/project" in errors[0]
    assert "mlrun-magic-error" in panel.message.value
    assert panel.fields == {} and panel.launch_button.disabled
    panel.project_text.value = ""
    assert list(panel.fields) == ["alpha", "epochs", "label", "pause"]
    assert not panel.launch_button.disabled and panel.message.value == ""


def test_local_launch_runs_with_the_form_values(open_panel, mlflow_server):
    panel = open_panel()
    panel.fields["epochs"].widget.value = "7"
    panel.fields["label"].widget.value = "from the panel"
    assert panel.request().parameters == {"epochs": "7", "label": "from the panel"}
    panel.launch_button.click()
    settle(panel)
    run = panel.watched.run
    assert wait_for(lambda: 'data-status="FINISHED"' in panel.run_html.value)
    assert f'href="{run.links.mlflow_run}"' in panel.run_html.value
    params = RestTracking(mlflow_server.url).get_run(run.run_id)["params"]
    assert params["epochs"] == "7" and params["label"] == "from the panel"
    assert params["alpha"] == "0.5"  # left at its default: the MLproject's, as MLflow logs it
    assert wait_for(lambda: history_rows(panel) == [(run.run_id, "FINISHED")])
    assert panel.history.rows[0][6].disabled  # nothing to cancel
    assert panel.cancel_button.disabled


def test_history_row_cancel_and_refresh(open_panel):
    panel = open_panel()
    panel.fields["epochs"].widget.value = "500"
    panel.fields["pause"].widget.value = "0.2"
    panel.launch_button.click()
    settle(panel)
    run = panel.watched.run
    assert wait_for(lambda: run.status().status == "RUNNING", 30)
    assert history_rows(panel)[0][0] == run.run_id
    panel.history.rows[0][5].click()  # refresh
    settle(panel)
    assert history_rows(panel)[0] == (run.run_id, "RUNNING")
    assert not panel.history.rows[0][6].disabled
    panel.history.rows[0][6].click()  # cancel
    settle(panel)
    assert run.status().status == "KILLED"
    assert history_rows(panel)[0] == (run.run_id, "KILLED")
    assert 'data-status="KILLED"' in panel.run_html.value
    assert "data-status='KILLED'" in panel.history.rows[0][1].value


def test_dry_run_and_errors_stay_in_the_panel(open_panel, dbip):
    ws = dbip.workspace
    panel = open_panel()
    panel.backend.value = "databricks"
    assert panel.spec_file in panel.form.children and panel.profile in panel.form.children
    panel.history_thread.join(30)  # opening the panel asks the workspace about its history
    before = len(ws.requests())
    panel.dry_run_button.click()
    settle(panel)
    assert "Dry run" in panel.run_html.value and "spark_python_task" in panel.run_html.value
    assert len(ws.requests()) == before
    panel.spec_file.value = ""
    assert "required" in panel.notes["spec"].value and panel.launch_button.disabled
    panel.spec_file.value = "no-such-cluster.json"
    panel.launch_button.click()
    settle(panel)
    errors = take_errors(panel)
    assert len(errors) == 1 and "no-such-cluster.json" in errors[0]
    assert "mlrun-magic-error" in panel.message.value
    assert not panel.launch_button.disabled  # ready for another try
    panel.compute.value = "existing"
    assert panel.cluster_id in panel.form.children and panel.spec_file not in panel.form.children
    assert panel.launch_button.disabled
    panel.backend.value = "local"
    assert panel.profile not in panel.form.children and not panel.launch_button.disabled


def test_databricks_launch_with_new_cluster_fields_and_cancel(open_panel, dbip):
    ws = dbip.workspace
    panel = open_panel()
    panel.backend.value = "databricks"
    panel.compute.value = "new"
    panel.workers.value = "2"
    panel.experiment.value = f"/Shared/panel-{uuid.uuid4().hex[:8]}"
    panel.fields["epochs"].widget.value = "3"
    panel.launch_button.click()
    settle(panel)
    run = panel.watched.run
    assert wait_for(lambda: 'data-status="FINISHED"' in panel.run_html.value)
    html = panel.run_html.value
    assert f'href="{run.links.job_run}"' in html and f'href="{run.links.mlflow_run}"' in html
    item = ws.run(run.job_run_id)
    body = item.get("request") or item["submitted"]
    task = body["tasks"][0]
    assert task["new_cluster"]["num_workers"] == 2
    assert task["new_cluster"]["spark_version"] == "15.4.x-cpu-ml-scala2.12"
    spec = json.loads(task["spark_python_task"]["parameters"][3])
    assert "--epochs 3" in spec["command"]
    # A long one, cancelled with the panel's Cancel button.
    panel.fields["epochs"].widget.value = "300"
    panel.fields["pause"].widget.value = "1"
    panel.launch_button.click()
    settle(panel)
    long_run = panel.watched.run
    assert long_run.run_id != run.run_id
    assert wait_for(lambda: long_run.status().status == "RUNNING", 60)
    assert not panel.cancel_button.disabled
    panel.cancel_button.click()
    settle(panel)
    assert long_run.status().status == "KILLED"
    assert 'data-status="KILLED"' in panel.run_html.value
    assert history_rows(panel)[:2] == [(long_run.run_id, "KILLED"), (run.run_id, "FINISHED")]


def test_the_panels_run_view_shows_metrics_and_output_as_the_run_goes(open_panel, dbip):
    panel = open_panel()
    panel.backend.value = "databricks"
    panel.compute.value = "new"
    panel.experiment.value = f"/Shared/panel-{uuid.uuid4().hex[:8]}"
    panel.fields["epochs"].widget.value = "40"
    panel.fields["pause"].widget.value = "0.3"
    panel.launch_button.click()
    settle(panel)
    running_with_metric = 'data-status="RUNNING"'
    assert wait_for(lambda: running_with_metric in panel.run_html.value
                    and 'data-metric="loss"' in panel.run_html.value, 90), panel.run_html.value
    assert wait_for(lambda: 'data-status="FINISHED"' in panel.run_html.value, 90)
    html = panel.run_html.value
    assert 'class="mlrun-magic-tail"' in html and "fitted w=" in html  # train.py's last line
    assert "<svg" in html


def test_nothing_secret_enters_widget_state(open_panel, dbip, tmp_path, monkeypatch):
    ws = dbip.workspace
    config = tmp_path / "databrickscfg"
    config.write_text(f"[DEFAULT]\nhost = {ws.host}\ntoken = dapi-secret-in-config\n\n"
                      f"[staging]\nhost = {ws.host}\ntoken = dapi-other-secret\n", "utf-8")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    panel = open_panel()
    panel.backend.value = "databricks"
    assert [value for _, value in panel.profile.options] == ["", "DEFAULT", "staging"]
    panel.dry_run_button.click()
    settle(panel)
    states = json.dumps([w.get_state() for w in _all_widgets(panel.widget)], default=str)
    assert "staging" in states and "Launch" in states
    for secret in (ws.token, "dapi-secret-in-config", "dapi-other-secret"):
        assert secret not in states


def _all_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_widgets(child)


def test_fallback_says_how_to_enable_widgets(open_panel):
    bundle = open_panel()._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "pip install ipywidgets jupyterlab_widgets" in data["text/plain"]
    assert "quickstart" in data["text/plain"]


def test_the_panel_is_followed_by_a_static_snapshot_of_its_form(guarded, cell):
    """issue 12 #9: an export or a viewer without widgets shows the form's state; the live
    panel hides it (its style names the snapshot's panel id)."""
    result, cap = cell("import mlrun_magic\npanel = mlrun_magic.panel()\npanel")
    assert result.success, result.error_in_exec
    panel = guarded.user_ns["panel"]
    widget, snapshot = cap.outputs
    assert "application/vnd.jupyter.widget-view+json" in widget.data
    assert "text/html" not in widget.data  # one snapshot, not two, where widgets are missing
    html = snapshot.data["text/html"]
    assert f"data-panel='{panel.snapshot.panel_id}'" in html
    assert f"[data-panel='{panel.snapshot.panel_id}']" in panel.widget.children[0].value
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert list(zip(cells[::2], cells[1::2])) == [
        ("Project", "quickstart"), ("Entry point", "main"), ("alpha", "0.5"),
        ("epochs", "200"), ("label", "quick start"), ("pause", "0"), ("Backend", "local"),
        ("Experiment", "(default)")]
    assert "  epochs:       200" in snapshot.data["text/plain"]
    # Edited after it was shown: redrawn in place, escaped and redacted.
    result, cap = cell("panel.fields['label'].widget.value = '<img src=x onerror=alert(1)>'\n"
                       "panel.fields['epochs'].widget.value = 'https://bob:hunter2pw@h.example.com/x'")
    assert result.success, result.error_in_exec
    update = cap.outputs[-1]
    assert update.update and update.transient == {"display_id": panel.snapshot.panel_id}
    assert "&lt;img src=x onerror=alert(1)&gt;" in update.data["text/html"]
    assert "<img" not in update.data["text/html"]
    assert "hunter2pw" not in update.data["text/html"] + update.data["text/plain"]
    assert panel.errors == []


def test_the_snapshot_shows_the_panels_run_and_its_links(guarded, cell):
    result, cap = cell("import mlrun_magic\npanel = mlrun_magic.panel()\npanel")
    assert result.success, result.error_in_exec
    panel = guarded.user_ns["panel"]
    result, cap = cell("panel.fields['epochs'].widget.value = '3'\n"
                       "panel.launch_button.click()\n"
                       "assert panel.wait(120)\n"
                       "assert panel.watched.run.wait(timeout=90).status == 'FINISHED'\n"
                       "panel.refresh_history()")
    assert result.success, result.error_in_exec
    run = panel.watched.run
    assert "data-status='FINISHED'" in cap.outputs[-1].data["text/html"]
    html = cap.outputs[-1].data["text/html"]
    assert f"<code>{run.run_id[:12]}</code>" in html
    assert f"href='{unescape(run.links.mlflow_run)}'" in unescape(html)
    assert ">MLflow run</a>" in html and ">experiment</a>" in html
    assert panel.errors == []


def test_magic_subcommand_displays_the_panel(guarded, cell):
    result, cap = cell("%project_run panel")
    assert result.success, result.error_in_exec
    data = cap.outputs[0].data
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "Launch panel for quickstart" in data["text/plain"]


def test_panel_loads_the_extension_when_needed(guarded):
    guarded.run_line_magic("unload_ext", "mlrun_magic")
    assert "project_run" not in guarded.magics_manager.magics["line"]
    panel = mlrun_magic.panel()
    assert panel.errors == [] and list(panel.fields)
    assert "project_run" in guarded.magics_manager.magics["line"]


@pytest.mark.parametrize("typed, shown", [
    ("1.5", None), ("1e3", None), ("abc", None), ("", None), (" 7 ", "7"), ("300", "300")])
def test_an_int_field_launches_what_it_shows_or_refuses(open_panel, typed, shown):
    panel = open_panel()
    panel.fields["epochs"].widget.value = typed
    if shown is None:
        assert panel.launch_button.disabled and panel.dry_run_button.disabled
        problem = panel.fields["epochs"].problem()
        assert problem and problem in unescape(panel.fields["epochs"].note.value)
        with pytest.raises(MlrunMagicError, match="fields are missing or invalid"):
            panel.request()
    else:
        assert not panel.launch_button.disabled
        assert panel.request().parameters == {"epochs": shown}


@pytest.mark.parametrize("typed, ok", [("1.5", True), ("1e3", True), ("abc", False),
                                       ("", False), ("nan?", False)])
def test_a_float_field_launches_what_it_shows_or_refuses(open_panel, typed, ok):
    panel = open_panel()
    panel.fields["alpha"].widget.value = typed
    assert panel.launch_button.disabled is not ok
    if ok:
        assert panel.request().parameters == {"alpha": typed}


def test_an_empty_text_field_is_launched_empty(open_panel):
    panel = open_panel()
    panel.fields["label"].widget.value = ""
    assert panel.request().parameters == {"label": ""}


@pytest.mark.parametrize("typed", ["1.5", "-1", "two", ""])
def test_workers_must_be_a_whole_number(open_panel, dbip, typed):
    panel = open_panel()
    panel.backend.value = "databricks"
    panel.compute.value = "new"
    panel.workers.value = typed
    assert panel.launch_button.disabled
    assert "whole number" in panel.notes["workers"].value


def test_the_profile_hint_does_not_read_as_missing_credentials(open_panel, dbip):
    panel = open_panel()
    panel.backend.value = "databricks"
    text = unescape(" ".join(getattr(c, "value", "") for c in panel.form.children
                             if isinstance(getattr(c, "value", None), str)))
    assert "none found" not in text and "the SDK's default chain" in text


def test_history_rows_of_another_workspace_are_marked_not_current(open_panel, dbip):
    """Issue 12 item 3: a run the history holds from a workspace that is not the current one
    (as `make demo`'s after `make lab`) is marked, never shown as if it were this one's."""
    import json

    history = dbip.project_dir / ".mlrun_magic" / "history.jsonl"
    history.parent.mkdir(exist_ok=True)
    gone = {"run_id": "d" * 32, "backend": "databricks", "entry_point": "main",
            "status": "FINISHED", "submitted": time.time() - 60, "job_run_id": 731000000001,
            "host": "http://127.0.0.1:1", "links": {"job_run": "http://127.0.0.1:1/#job/1/run/1"}}
    history.write_text(json.dumps(gone) + "\n")
    panel = open_panel()
    notes = lambda: [row[4].value for row in panel.history.rows  # noqa: E731
                     if "mlrun-magic-history-note" in row[4].value]
    assert wait_for(lambda: len(notes()) == 1, timeout=30)
    assert "other workspace" in notes()[0] and "127.0.0.1:1" in notes()[0]
