"""%project_run shows the plan's warnings as visible lines before the run view, and still
launches: a likely parameter typo (issue 12 item 6), the default store of a local run with
no tracking URI (item 7)."""

from __future__ import annotations

from test_magics import wait_terminal

from mlrun_magic.tracking import RestTracking

TYPO = ("warning: parameter alpah is not declared by entry point main; did you mean alpha? "
        "(it is passed on as --alpah 0.7, as mlflow run does)")


def test_a_typo_is_a_visible_warning_before_the_run_view(ip, cell, mlflow_server):
    # Not a Python warning: a filter does not hide it.
    result, cap = cell("import warnings; warnings.simplefilter('ignore')\n"
                       "%project_run -P alpah=0.7 -P epochs=3")
    assert result.success, result.error_in_exec
    warning, view = cap.outputs[0], cap.outputs[1]
    assert warning.data["text/plain"] == TYPO
    assert "mlrun-magic-warning" in warning.data["text/html"]
    assert "did you mean alpha?" in warning.data["text/html"]
    assert "mlrun-magic-run" in view.data["text/html"]
    run = result.result
    # Launched all the same, with --alpah passed on, which train.py refuses (as with mlflow run).
    assert wait_terminal(run).status == "FAILED"
    assert "unrecognized arguments: --alpah 0.7" in run.logs()
    assert RestTracking(mlflow_server.url).get_run(run.run_id)["params"]["alpah"] == "0.7"


def test_no_warning_line_without_a_warning(ip, cell):
    result, cap = cell("%project_run -P epochs=3 -P seed=1")
    assert result.success, result.error_in_exec
    assert not any("warning:" in o.data.get("text/plain", "") for o in cap.outputs)
    wait_terminal(result.result)


def test_the_dry_run_shows_the_warning(ip, cell):
    result, cap = cell("%project_run --dry-run -P alpah=0.7")
    assert result.success, result.error_in_exec
    text = cap.outputs[0].data["text/plain"]
    assert "Warning:" in text and "did you mean alpha?" in text
    assert len(cap.outputs) == 1  # said once, inside the plan


def test_a_local_run_without_tracking_uri_says_where_and_keeps_the_project_clean(
        ip, cell, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    ip.run_line_magic("config", "ProjectRun.tracking_uri = None")
    result, cap = cell("%project_run -P epochs=3")
    assert result.success, result.error_in_exec
    store = f"sqlite:///{home / '.mlrun_magic' / 'mlflow.db'}"
    assert cap.outputs[0].data["text/plain"].startswith(
        f"warning: tracking in {store} (default: no tracking URI set)")
    run = result.result
    assert wait_terminal(run).status == "FINISHED", run.logs()
    project = ip.project_dir  # also the kernel's current folder
    assert not [p for p in ("mlflow.db", "mlruns", "mlartifacts") if (project / p).exists()]
    from mlflow.tracking import MlflowClient

    assert MlflowClient(tracking_uri=store).get_run(run.run_id).info.status == "FINISHED"
