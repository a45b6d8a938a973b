import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

pytest_plugins = ["mlrun_magic.testing.pytest_plugin"]

QUICKSTART = Path(__file__).resolve().parents[1] / "example_notebooks" / "quickstart"
#: The files that take 30 s or more (see `make test`'s durations). Under pytest-xdist (`make
#: test` runs two workers, whole files each, in collection order) they are handed out first, so
#: that no worker is left running one of them alone at the end.
HEAVY_FIRST = ("tests/reliability/test_secrets.py", "tests/reliability/test_fault_submissions.py",
               "tests/reliability/test_first_hour_breaks.py", "tests/browser/test_panel_browser.py",
               "tests/reliability/test_archives.py", "tests/reliability/test_hostile_input.py",
               "tests/integration/test_databricks_backend.py",
               "tests/integration/test_history_workspaces.py", "tests/integration/test_log_tail.py",
               "tests/integration/test_live_view.py", "tests/browser/test_live_view_browser.py",
               "tests/integration/test_compare_runs.py", "tests/notebook/test_sweep_resume.py",
               "tests/notebook/test_sweep_interrupt.py")

# A shell without job control starts background commands with SIGINT ignored, and children
# inherit that: Ctrl-C tests would then see no KeyboardInterrupt at all. Python's own handler
# here is also reset to the default in every child at exec, so theirs work too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # a plain run keeps pytest's order
        return

    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return HEAVY_FIRST.index(path) if path in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: the order inside a file and among the rest is kept


def pytest_sessionstart(session):
    session.config._mlrun_magic_started = time.time()


def pytest_sessionfinish(session, exitstatus):
    """``make test`` sets MLRUN_MAGIC_SUITE_RECORD: the run's wall time and counts are written
    there for ``make bench`` (by the controller, not by each xdist worker)."""
    record = os.environ.get("MLRUN_MAGIC_SUITE_RECORD")
    if not record or hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter is not None else {}
    started = session.config._mlrun_magic_started
    path = Path(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "seconds": round(time.time() - started, 1), "finished": time.time(),
        "exit_status": int(exitstatus), "passed": len(stats.get("passed", [])),
        "failed": len(stats.get("failed", [])),
        "workers": getattr(session.config.option, "numprocesses", None) or 0}) + "\n",
        encoding="utf-8")


@pytest.fixture
def workspace_client(workspace, monkeypatch, tmp_path):
    """The loopback workspace as a client sees it: its PAT in the environment and nothing
    else (an isolated HOME, no profile, no MLflow settings), and a copy of the quickstart as
    ``workspace.project``."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "home" / ".databrickscfg"))
    for name in ("MLFLOW_TRACKING_URI", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                 "DATABRICKS_CONFIG_PROFILE", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in workspace.env().items():
        monkeypatch.setenv(name, value)
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".mlrun_magic"))
    workspace.project = project
    return workspace


@pytest.fixture
def systemp(tmp_path, monkeypatch):
    """The system's temporary folder, private to the test, to see what is left in it."""
    import tempfile

    root = tmp_path / "systemp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """The stand-in ``docker`` (mlrun_magic.testing.docker_standin) first on PATH, then this
    Python (as the "image" has it); the test runs in ``tmp_path``. Returns its log of calls."""
    import os
    import sys

    from mlrun_magic.testing.docker_standin import LOG_VAR, install

    bin_dir = tmp_path / "bin"
    install(bin_dir)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable),
                                                os.environ["PATH"]]))
    monkeypatch.setenv(LOG_VAR, str(log))
    monkeypatch.chdir(tmp_path)
    return log
