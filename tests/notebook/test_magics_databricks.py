"""%%project_run -b databricks against the loopback workspace, in a real IPython shell."""

from __future__ import annotations

import json
import os
import time

from IPython.utils.capture import capture_output

CLUSTER_BODY = ("cluster:\n  spark_version: 15.4.x-cpu-ml-scala2.12\n"
                "  node_type_id: Standard_D4ds_v5\n  num_workers: 1\n")


def all_text(cap) -> str:
    parts = [cap.stdout, cap.stderr]
    for out in cap.outputs:
        parts.extend(str(v) for v in out.data.values())
    return "\n".join(parts)


def test_cell_form_shows_both_links_and_goes_to_finished(dbip, cell):
    ws = dbip.workspace
    result, cap = cell("%%project_run -b databricks --run-name nb-e2e\nparameters:\n  epochs: 5\n"
                       + CLUSTER_BODY)
    assert result.success, result.error_in_exec
    run = result.result
    first = cap.outputs[-1]
    html = first.data["text/html"]
    assert f'href="{run.links.job_run}"' in html and "Databricks job run" in html
    assert f'href="{run.links.mlflow_run}"' in html and "/ml/experiments/" in html
    assert run.links.job_run.startswith(f"{ws.host}/?o={ws.workspace_id}#job/")
    with capture_output() as later:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(
                'data-status="FINISHED"' in o.data.get("text/html", "") for o in later.outputs):
            time.sleep(0.2)
    statuses = [o.data["text/html"].split('data-status="')[1].split('"')[0]
                for o in later.outputs if o.update]
    assert statuses[-1] == "FINISHED", statuses
    assert all(o.transient["display_id"] == first.transient["display_id"]
               for o in later.outputs if o.update)
    submitted = ws.runs()[-1]
    body = submitted.get("request") or submitted["submitted"]
    assert body["tasks"][0]["new_cluster"]["num_workers"] == 1
    for text in (all_text(cap), all_text(later)):
        assert ws.token not in text


def test_status_logs_cancel_and_reattach(dbip, cell):
    ws = dbip.workspace
    result, _ = cell("%project_run -b databricks -P pause=1 -P epochs=300 -c cluster.json")
    assert result.success, result.error_in_exec
    run = result.result
    deadline = time.monotonic() + 60
    while run.status().status != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    _, cap = cell("%project_run status")
    assert "RUNNING" in cap.outputs[0].data["text/plain"]
    _, cap = cell("%project_run logs")  # issue 12 #9: a running run's log says why it is empty
    assert "no output yet: the run is RUNNING" in cap.stdout
    time.sleep(2)  # let the driver's bootstrap print its first lines before the cancel
    from mlrun_magic.service import _by_owner

    _by_owner.pop(dbip, None)  # a restarted kernel: it knows its runs from the history only
    dbip.run_line_magic("reload_ext", "mlrun_magic")
    dbip.run_line_magic("config", "ProjectRun.tracking_uri = None")
    _, cap = cell(f"%project_run status {run.job_run_id}")
    assert run.links.job_run in cap.outputs[0].data["text/html"]
    result, cap = cell("%project_run cancel")
    assert result.success, result.error_in_exec
    assert 'data-status="KILLED"' in cap.outputs[-1].data["text/html"]
    _, cap = cell("%project_run logs")
    assert "[mlrun_magic]" in cap.stdout  # the bootstrap's lines from the driver log
    entries = [json.loads(line) for line in
               (dbip.project_dir / ".mlrun_magic" / "history.jsonl").read_text().splitlines()]
    assert any(e.get("job_run_id") == run.job_run_id for e in entries)
    assert any(e.get("status") == "KILLED" for e in entries)
    for entry in entries:
        assert ws.token not in json.dumps(entry)


def test_dry_run_shows_archive_target_and_body(dbip, cell):
    ws = dbip.workspace
    before = len(ws.requests())
    result, cap = cell("%%project_run -b databricks --dry-run --code-location /Volumes/main/ml/code\n"
                       "parameters:\n  alpha: 0.2\n" + CLUSTER_BODY)
    assert result.success, result.error_in_exec
    text = cap.outputs[0].data["text/plain"]
    assert "runs/submit" in text and "/Volumes/main/ml/code/" in text
    assert "spark_python_task" in cap.outputs[0].data["text/html"]
    assert len(ws.requests()) == before


def test_large_project_shows_packaging_progress(dbip, cell):
    (dbip.project_dir / "weights.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    result, cap = cell("%project_run -b databricks -c cluster.json -P epochs=1 "
                       "--code-location /Volumes/main/ml/big")
    assert result.success, result.error_in_exec
    bars = [o for o in cap.outputs if "<progress" in o.data.get("text/html", "")]
    assert bars and 'value="100"' in bars[-1].data["text/html"]
    result.result.wait(timeout=120, poll_interval=0.3)


def test_auth_error_fails_the_cell(dbip, cell, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-a-real-token")
    result, cap = cell("%project_run -b databricks -c cluster.json")
    assert not result.success
    message = "\n".join(result.error_in_exec._render_traceback_())
    assert "Invalid access token" in message
    assert "dapi-not-a-real-token" not in message + all_text(cap)
