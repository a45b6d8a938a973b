"""A real IPython shell (the singleton, so display handles and capture_output work)."""

from __future__ import annotations

import atexit
import shutil
import uuid
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "example_notebooks" / "quickstart"


@pytest.fixture
def ip(mlflow_server, monkeypatch, tmp_path):
    """A fresh InteractiveShell with mlrun_magic loaded, its cwd a copy of the quickstart
    project, tracking to the session's MLflow server."""
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".mlrun_magic"))
    monkeypatch.chdir(project)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    config = Config()
    config.HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "mlrun_magic")
    shell.run_line_magic("config", f"ProjectRun.tracking_uri = {mlflow_server.url!r}")
    shell.project_dir = project
    yield shell
    shell.run_line_magic("unload_ext", "mlrun_magic")
    InteractiveShell.clear_instance()
    discard(shell)


def discard(shell):
    """Forget a test's shell for good. Every InteractiveShell registers an atexit reset (a full
    gc.collect each); kept, they added about a minute to the end of this folder's run."""
    atexit.unregister(shell.atexit_operations)


@pytest.fixture
def cell(ip):
    """``cell(source)`` runs a cell in ``ip`` and returns (ExecutionResult, captured output)."""
    from IPython.utils.capture import capture_output

    def run(source):
        with capture_output() as cap:
            result = ip.run_cell(source)
        return result, cap

    return run


@pytest.fixture
def dbip(ip, workspace, monkeypatch, tmp_path):
    """``ip`` pointed at the loopback workspace (a PAT from the environment, nothing else)."""
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such.cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE",
                 "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in workspace.env().items():
        monkeypatch.setenv(name, value)
    ip.run_line_magic("config", "ProjectRun.tracking_uri = None")
    ip.run_line_magic("config", "ProjectRun.poll_interval = 1")
    ip.run_line_magic("config", f"ProjectRun.experiment_name = '/Shared/nb-{uuid.uuid4().hex[:8]}'")
    ip.workspace = workspace
    return ip


@pytest.fixture
def kernel(workspace, tmp_path):
    """A real IPython kernel in a copy of the quickstart (see kernel_kit.start_kernel), with
    mlrun_magic loaded."""
    from tests.notebook.kernel_kit import start_kernel

    run = start_kernel(workspace, tmp_path)
    run("%load_ext mlrun_magic\n%config ProjectRun.experiment_name = '/Shared/nb-breaks'")
    yield run
    run.close()


@pytest.fixture
def db_panel(dbip, monkeypatch):
    """The quickstart's panel on Databricks with a new cluster; a widget callback error fails
    the test, and so does an action still running or an error left in the panel."""
    import mlrun_magic

    def fail(*args, **kwargs):
        raise AssertionError("a widget callback raised an exception")

    monkeypatch.setattr(dbip, "showtraceback", fail)
    made = mlrun_magic.panel()
    made.history_thread.join(30)
    made.backend.value = "databricks"
    made.compute.value = "new"
    yield made
    assert made.wait(120), "a panel action is still running"
    assert made.errors == [], made.errors
