"""%project_run and %%project_run in a real IPython shell, tracking to a real MLflow server."""

from __future__ import annotations

import _thread
import atexit
import json
import re
import subprocess
import sys
import threading
import time

import pytest
from IPython.core.error import UsageError

from mlrun_magic.backends.base import SubmittedRun
from mlrun_magic.errors import (MlrunMagicError, MLprojectError, ProjectURIError,
                                RunFailedError)
from mlrun_magic.notebook.cellbody import CellBodyError
from mlrun_magic.tracking import RestTracking


def mlflow_run(server, run_id):
    return RestTracking(server.url).get_run(run_id)


def wait_terminal(run, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.status().is_terminal:
            return run.status()
        time.sleep(0.1)
    raise AssertionError(f"run {run.run_id} did not end")


def test_line_magic_launches_with_live_view(ip, cell, mlflow_server):
    result, cap = cell("%project_run -P epochs=5 --run-name line")
    assert result.success, result.error_in_exec
    run = result.result
    assert isinstance(run, SubmittedRun)
    assert ip.user_ns["_"] is run  # `run = _` works
    first = cap.outputs[0]
    display_id = first.transient["display_id"]
    assert "mlrun-magic-run" in first.data["text/html"]
    assert run.links.mlflow_run in first.data["text/plain"]
    assert f'href="{run.links.mlflow_run}"' in first.data["text/html"]
    # The poller keeps updating the same display until the run ends.
    from IPython.utils.capture import capture_output

    with capture_output() as later:
        assert wait_terminal(run).status == "FINISHED"
        tracked = ip.user_ns["_"]  # unchanged
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                "FINISHED" in o.data["text/plain"] for o in later.outputs):
            time.sleep(0.1)
    updates = [o for o in later.outputs if o.update]
    assert updates and all(o.transient["display_id"] == display_id for o in updates)
    assert "FINISHED" in updates[-1].data["text/plain"]
    assert tracked is run
    assert mlflow_run(mlflow_server, run.run_id)["tags"]["mlflow.runName"] == "line"


def test_cell_body_parameters_and_precedence(ip, cell, mlflow_server):
    result, _ = cell("%%project_run -P epochs=4 --wait\n"
                     "# NBVAL_IGNORE_OUTPUT: comment lines are fine\n"
                     "parameters:\n  epochs: 9\n  alpha: 0.25\n"
                     "run_name: from-body\n")
    assert result.success, result.error_in_exec
    data = mlflow_run(mlflow_server, result.result.run_id)
    assert data["params"]["epochs"] == "4"  # the line wins
    assert data["params"]["alpha"] == "0.25"  # the body fills in
    assert data["tags"]["mlflow.runName"] == "from-body"
    assert data["status"] == "FINISHED"


def test_variable_expansion_in_the_line(ip, cell, mlflow_server):
    ip.user_ns["alpha"] = 0.125
    ip.user_ns["n"] = 3
    result, _ = cell("%project_run -P alpha={alpha} -P epochs={n} --wait")
    assert result.success, result.error_in_exec
    params = mlflow_run(mlflow_server, result.result.run_id)["params"]
    assert params["alpha"] == "0.125" and params["epochs"] == "3"


def test_dry_run_starts_nothing(ip, cell, mlflow_server):
    before = len(list((ip.project_dir / ".mlrun_magic").glob("logs/*.log"))) \
        if (ip.project_dir / ".mlrun_magic").exists() else 0
    result, cap = cell("%project_run --dry-run -P alpha=0.5")
    assert result.success and result.result is None
    text = cap.outputs[0].data["text/plain"]
    assert "Dry run (nothing was started)" in text
    assert "python train.py --alpha 0.5 --epochs 200 --label 'quick start' --pause 0" in text
    assert "mlrun-magic-plan" in cap.outputs[0].data["text/html"]
    after = len(list((ip.project_dir / ".mlrun_magic").glob("logs/*.log"))) \
        if (ip.project_dir / ".mlrun_magic").exists() else 0
    assert after == before


def test_help_text(ip):
    doc = ip.find_line_magic("project_run").__doc__
    for fragment in ("-P NAME=VALUE", "--entry-point", "--backend", "--cluster-spec",
                     "--code-location", "--wait", "--dry-run", "Subcommands", "Examples",
                     "%%project_run", "{name}"):
        assert fragment in doc, fragment
    result = ip.run_cell("%project_run?")
    assert result.success


def test_question_mark_help_starts_with_the_usage(cell):
    """issue 12 #9: magic_arguments' help began with a lone reST ``::`` line."""
    result, cap = cell("%project_run?")
    assert result.success, result.error_in_exec
    shown = re.sub(r"\x1b\[[0-9;]*m", "", cap.stdout).splitlines()
    assert "::" not in [line.strip() for line in shown]
    doc = shown[shown.index("Docstring:") + 1:]
    assert doc[0].startswith("%project_run [-e NAME] [-P NAME=VALUE]"), doc[:3]
    assert doc[1].startswith("             [-b {local,databricks}]"), doc[:3]  # still aligned
    assert "Launch the MLflow Project that holds this notebook" in doc[doc.index("") + 1]


def test_bad_flags_are_usage_errors(ip):
    with pytest.raises(UsageError):
        ip.run_line_magic("project_run", "--no-such-flag")
    with pytest.raises(UsageError, match="Invalid format for -P parameter: 'alpha'"):
        ip.run_line_magic("project_run", "-P alpha")
    with pytest.raises(UsageError, match="Repeated parameter"):
        ip.run_line_magic("project_run", "-P a=1 -P a=2")
    with pytest.raises(UsageError):
        ip.run_line_magic("project_run", "status --bogus")


@pytest.mark.parametrize("source,error,fragment", [
    ("%project_run -P epochs=lots", MLprojectError, "'lots' is not a whole number"),
    ("%project_run /no/such/project", ProjectURIError, "does not exist"),
    ("%%project_run\nimport os\nos.system('echo hacked')\n", CellBodyError, "must be YAML keys"),
    ("%%project_run\nparameters: [1, 2]\n", CellBodyError, "parameters must be a mapping"),
    ("%%project_run\nparamters:\n  a: 1\n", CellBodyError, "line 1: unknown key 'paramters'"),
    ("%%project_run\nparameters:\n  a: {b: 1}\n", CellBodyError, "must be a single value"),
    ("%%project_run\nparameters:\n  a: [1\n", CellBodyError, "not valid YAML"),
    ("%project_run status", MlrunMagicError, "no run yet"),
])
def test_errors_fail_the_cell_readably(ip, cell, source, error, fragment):
    result, cap = cell(source)
    assert not result.success
    assert isinstance(result.error_in_exec, error)
    assert fragment in str(result.error_in_exec)
    lines = result.error_in_exec._render_traceback_()
    assert lines[0].startswith(result.error_in_exec.title)
    assert not any("Traceback" in line for line in lines)


def test_failed_run_with_wait_fails_the_cell(ip, cell, mlflow_server):
    (ip.project_dir / "MLproject").write_text(
        "name: broken\nentry_points:\n  main:\n    command: \"echo oops; exit 5\"\n")
    result, _ = cell("%project_run --wait")
    assert isinstance(result.error_in_exec, RunFailedError)
    assert "FAILED" in str(result.error_in_exec)
    assert "exit status 5" in str(result.error_in_exec)


def test_subcommands(ip, cell, mlflow_server):
    (ip.project_dir / "MLproject").write_text(
        "name: sleepy\nentry_points:\n  main:\n    command: \"echo hello-from-run; sleep 60\"\n")
    result, _ = cell("%project_run")
    run = result.result
    deadline = time.monotonic() + 20
    while "hello-from-run" not in run.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    result, cap = cell("%project_run logs")
    assert "hello-from-run" in cap.stdout
    result, cap = cell(f"%project_run status {run.run_id[:10]}")
    assert result.result is run
    assert "RUNNING" in cap.outputs[0].data["text/plain"]
    result, cap = cell("%project_run open")
    assert run.links.mlflow_run in cap.outputs[0].data["text/html"]
    result, cap = cell("%project_run cancel")
    assert result.success, result.error_in_exec
    assert run.status().status == "KILLED"
    assert mlflow_run(mlflow_server, run.run_id)["status"] == "KILLED"
    result, cap = cell("%project_run list")
    listing = cap.outputs[0].data["text/plain"]
    assert run.run_id in listing and "KILLED" in listing


def test_history_survives_a_new_kernel(ip, cell, mlflow_server):
    result, _ = cell("%project_run -P epochs=2 --wait")
    run_id = result.result.run_id
    ip.run_line_magic("reload_ext", "mlrun_magic")  # a fresh registry: only the file remains
    _, cap = cell("%project_run list")
    assert run_id in cap.outputs[0].data["text/plain"]
    assert "FINISHED" in cap.outputs[0].data["text/plain"]
    lines = (ip.project_dir / ".mlrun_magic" / "history.jsonl").read_text().splitlines()
    assert any(json.loads(line)["run_id"] == run_id for line in lines)


def test_ctrl_c_during_wait_cancels_the_run(ip, cell, mlflow_server):
    (ip.project_dir / "MLproject").write_text(
        "name: sleepy\nentry_points:\n  main:\n    command: \"sleep 120\"\n")
    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    try:
        result, _ = cell("%project_run --wait")
    finally:
        timer.cancel()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    from mlrun_magic import _loaded

    watched = _loaded["service"].find()  # the kernel's latest run
    assert watched.state.status == "KILLED" and watched.run.status().status == "KILLED"
    assert mlflow_run(mlflow_server, watched.run.run_id)["status"] == "KILLED"


def test_html_is_escaped(ip, cell, mlflow_server):
    hostile = "<script>alert(1)</script>"
    result, cap = cell(f"%%project_run --run-name '{hostile}' --wait\n"
                       f"parameters:\n  label: '<b onmouseover=x>'\n")
    assert result.success, result.error_in_exec
    html = "".join(o.data["text/html"] for o in cap.outputs)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b onmouseover" not in html and "&lt;b onmouseover=x&gt;" in html


def test_settings(ip, cell):
    ip.run_line_magic("config", "ProjectRun.backend = 'databricks'")
    ip.run_line_magic("config", "ProjectRun.poll_interval = 5")
    from mlrun_magic import _loaded

    assert _loaded["settings"].backend == "databricks"
    assert _loaded["settings"].poll_interval == 5
    # %config reports invalid values (it logs them) and keeps the old value.
    cell("%config ProjectRun.poll_interval = 0.1")
    cell("%config ProjectRun.backend = 'kubernetes'")
    assert _loaded["settings"].poll_interval == 5
    assert _loaded["settings"].backend == "databricks"
    # The setting is used: a Databricks dry run without a cluster spec asks for one.
    result, _ = cell("%project_run --dry-run")
    assert "Backend spec must be provided" in str(result.error_in_exec)


def test_settings_from_config_file(mlflow_server, tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryAccessor.enabled = False
    config.ProjectRun.backend = "databricks"
    config.ProjectRun.code_location = "/Volumes/main/ml/code"
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    try:
        shell.run_line_magic("load_ext", "mlrun_magic")
        from mlrun_magic import _loaded

        assert _loaded["settings"].backend == "databricks"
        assert _loaded["settings"].code_location == "/Volumes/main/ml/code"
    finally:
        shell.run_line_magic("unload_ext", "mlrun_magic")
        InteractiveShell.clear_instance()
        atexit.unregister(shell.atexit_operations)  # see conftest.discard


def test_reload_and_unload(ip):
    ip.run_line_magic("reload_ext", "mlrun_magic")
    ip.run_line_magic("reload_ext", "mlrun_magic")
    assert ip.find_line_magic("project_run") is not None
    assert ip.find_cell_magic("project_run") is not None
    names = [type(c).__name__ for c in ip.configurables]
    assert names.count("ProjectRun") == 1
    ip.run_line_magic("unload_ext", "mlrun_magic")
    assert ip.find_line_magic("project_run") is None
    assert "ProjectRun" not in [type(c).__name__ for c in ip.configurables]
    ip.run_line_magic("load_ext", "mlrun_magic")
    assert ip.find_line_magic("project_run") is not None


def test_loading_is_cheap_and_offline():
    code = ("import sys\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "before = set(sys.modules)\n"
            "ip.run_line_magic('load_ext', 'mlrun_magic')\n"
            "new = set(sys.modules) - before\n"
            "print(sorted(m for m in new if m.split('.')[0] in "
            "('requests', 'urllib3', 'git', 'yaml', 'ipywidgets', 'databricks', 'mlflow',"
            " 'pathspec', 'tarfile', 'hashlib', 'concurrent')"
            " or m.startswith(('mlrun_magic.packaging', 'mlrun_magic.service.sweep',"
            " 'mlrun_magic.service.compare', 'mlrun_magic.service.doctor'))))\n")
    env = {"DATABRICKS_HOST": "http://127.0.0.1:9", "DATABRICKS_TOKEN": "dapi-not-used",
           "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
