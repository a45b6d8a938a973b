"""The launch panel's sweeps: a comma-separated list in a parameter field launches one run
per value (two lists: the cross product) on the loopback workspace, shown as the sweep's
live table; bad values are flagged before anything happens, and a comma kept in a value
(quoted, escaped, or the MLproject's own default) stays one run. Real widgets, real clicks,
the real MLflow server; nothing of ours is mocked."""

from __future__ import annotations

import shutil
import time
from html import unescape
from pathlib import Path

import pytest

import mlrun_magic
from mlrun_magic.tracking import RestTracking
from tests.project_kit import most_at_once

EXAMPLES = Path(__file__).resolve().parents[2] / "example_notebooks"


def wait_for(predicate, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def take_errors(panel) -> list[str]:
    errors = list(panel.errors)
    panel.errors.clear()
    panel.exceptions.clear()
    return errors


def test_a_list_in_a_field_makes_launch_a_sweep_and_says_so(db_panel):
    panel, alpha, epochs = db_panel, db_panel.fields["alpha"], db_panel.fields["epochs"]
    assert panel.launch_button.description == "Launch" and panel.points == 1
    assert panel.parallel.layout.display == "none"  # no sweep: no Parallel runs row
    assert "Commas make a sweep" in alpha.widget.tooltip
    alpha.widget.value = "0.1, 0.3"
    epochs.widget.value = "5,6,7"
    assert panel.launch_button.description == "Launch 6 runs" and panel.points == 6
    assert not panel.launch_button.disabled
    assert panel.parallel.layout.display == "" and panel.parallel.value == "4"
    assert "a sweep of 6 runs (alpha × epochs), at most 4 at once" in panel.parallel_note.value
    assert "2 values: one run each" in alpha.note.value
    # Every value is checked as the parameter's type, next to its field.
    alpha.widget.value = "0.1, abc"
    note = unescape(alpha.note.value)
    assert "value 2 of 2: 'abc' is not a number" in note and "mlrun-magic-invalid" in note
    assert panel.launch_button.disabled and panel.dry_run_button.disabled
    alpha.widget.value = "0.1,,0.3"
    assert "value 2 of 3 is empty" in alpha.note.value and panel.launch_button.disabled
    alpha.widget.value = '"0.1, 0.3'
    assert "double quote is not closed" in alpha.note.value
    alpha.widget.value = "0.1, 0.3"
    panel.parallel.value = "0"
    assert "whole number of runs" in panel.parallel_note.value and panel.launch_button.disabled
    panel.parallel.value = "2"
    assert not panel.launch_button.disabled
    epochs.widget.value = ", ".join(str(n) for n in range(1, 301))
    assert "at most 500" in panel.parallel_note.value and panel.launch_button.disabled
    # Back to one value: the row goes, Launch is one run again.
    epochs.widget.value = "200"
    alpha.widget.value = "0.5"
    assert panel.launch_button.description == "Launch"
    assert panel.parallel.layout.display == "none" and not panel.launch_button.disabled


def test_a_comma_kept_in_a_value_is_one_run(db_panel, tmp_path):
    label = db_panel.fields["label"]
    for typed, sent in ((r"a\, b", "a, b"), ('"a, b"', "a, b"), ("a b", "a b"),
                        (r"C:\dir", r"C:\dir"), ('"quoted"', '"quoted"')):
        label.widget.value = typed
        assert db_panel.points == 1 and db_panel.launch_button.description == "Launch", typed
        request = db_panel.request()
        assert request.parameters["label"] == sent and db_panel.sweep_spec(request) is None
    # The MLproject's own default is one value, whatever it holds.
    project = tmp_path / "commas"
    shutil.copytree(EXAMPLES / "quickstart", project)
    mlproject = project / "MLproject"
    mlproject.write_text(mlproject.read_text(encoding="utf-8").replace(
        'default: "quick start"', 'default: "red, green"'), encoding="utf-8")
    panel = mlrun_magic.panel(str(project))
    assert panel.fields["label"].text() == "red, green"
    assert panel.points == 1 and panel.launch_button.description == "Launch"
    assert "label" not in panel.request().parameters  # the default: not sent
    panel.fields["label"].widget.value = "red, green, blue"
    assert panel.points == 3
    assert panel.wait(30) and panel.errors == []


def test_an_invalid_sweep_starts_nothing_and_keeps_the_form(db_panel, dbip):
    panel = db_panel
    panel.fields["alpha"].widget.value = "0.1, fast"
    before = len(dbip.workspace.requests())
    panel.launch_button.click()  # disabled in a browser; a click from code still fires
    assert panel.wait(30)
    errors = take_errors(panel)
    assert len(errors) == 1 and "invalid" in errors[0], errors
    assert panel.sweep is None and len(dbip.workspace.requests()) == before
    assert panel.fields["alpha"].widget.value == "0.1, fast"  # nothing typed is lost


@pytest.mark.slow
def test_a_dry_run_of_a_sweep_lists_each_points_command(db_panel, dbip):
    panel = db_panel
    panel.fields["alpha"].widget.value = "0.1, 0.3"
    panel.fields["label"].widget.value = "<b>x</b>, y"
    before = len(dbip.workspace.requests())
    panel.dry_run_button.click()
    assert panel.wait(60)
    html = panel.run_html.value
    assert "mlrun-magic-sweep-plan" in html and "a sweep of 4 runs, at most 4 at once" in html
    assert html.count("data-point=") == 4 and "<b>x</b>" not in html
    assert "--alpha 0.3 --epochs 200 --label y" in unescape(html)
    assert not [r for r in dbip.workspace.requests()[before:]
                if r["path"].endswith(("/runs/submit", "/runs/create", "/workspace/import"))]


@pytest.mark.slow
def test_the_panel_launches_a_2x2_sweep_as_one_table(db_panel, dbip, mlflow_server):
    panel, ws = db_panel, dbip.workspace
    panel.fields["alpha"].widget.value = "0.1, 0.3"
    panel.fields["epochs"].widget.value = "5, 6"
    panel.fields["label"].widget.value = r"x\, y"  # one value with a comma, in every run
    panel.fields["pause"].widget.value = "0.3"
    panel.parallel.value = "2"
    assert panel.launch_button.description == "Launch 4 runs"
    panel.launch_button.click()
    assert panel.wait(120)
    sweep = panel.sweep
    assert sweep is not None and panel.watched is None
    assert "mlrun-magic-sweep" in panel.run_html.value
    assert wait_for(lambda: sweep.ended and panel.run_html.value.count("FINISHED") >= 5)
    assert sweep.status == "FINISHED", sweep.describe()
    html = panel.run_html.value
    assert html.count("<tr data-point=") == 4 and f'data-run-id="{sweep.run_id}"' in html
    assert "4 finished" in html
    jobs = ws.runs()
    assert len(jobs) == 4 and len({job["idempotency_token"] for job in jobs}) == 4
    assert most_at_once(sweep.runs) <= 2
    archives = [r for r in ws.requests(method="POST", path="/api/2.0/workspace/import")
                if (r.get("json") or {}).get("path", "").endswith(".tar.gz")]
    assert len(archives) == 1
    tracking = RestTracking(mlflow_server.url)
    assert tracking.get_run(sweep.run_id)["status"] == "FINISHED"
    seen = set()
    for run in sweep.runs:
        child = tracking.get_run(run.run_id)
        assert child["tags"]["mlflow.parentRunId"] == sweep.run_id
        assert child["params"]["label"] == "x, y"
        seen.add((child["params"]["alpha"], child["params"]["epochs"]))
    assert seen == {(a, e) for a in ("0.1", "0.3") for e in ("5", "6")}
    assert wait_for(lambda: panel.cancel_button.disabled, 30)  # nothing left to cancel
    assert wait_for(lambda: sum(1 for rid in panel.history.run_ids if rid) >= 4, 30)
    assert "Sweep" in panel.snapshot.bundle()["text/plain"]
    assert panel.launch_button.description == "Launch 4 runs" and not panel.launch_button.disabled


@pytest.mark.slow
def test_cancel_in_the_panel_stops_the_whole_sweep(db_panel, dbip, mlflow_server):
    panel, ws = db_panel, dbip.workspace
    panel.fields["pause"].widget.value = "60, 61, 62"
    panel.parallel.value = "2"
    panel.launch_button.click()
    assert panel.wait(120)
    sweep = panel.sweep
    assert wait_for(lambda: sum(job["state"]["life_cycle_state"] == "RUNNING"
                                for job in ws.runs()) == 2, 120)
    assert not panel.cancel_button.disabled and "sweep" in panel.cancel_button.tooltip
    panel.cancel_button.click()
    assert panel.wait(120)
    assert sweep.ended and sweep.status == "KILLED"
    jobs = ws.runs()
    assert len(jobs) == 2  # the third point never started
    assert all(job["state"]["life_cycle_state"] == "TERMINATED" for job in jobs), jobs
    assert RestTracking(mlflow_server.url).get_run(sweep.run_id)["status"] == "KILLED"
    assert wait_for(lambda: "KILLED" in panel.run_html.value, 30)
    assert panel.cancel_button.disabled
