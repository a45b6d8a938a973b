"""Ctrl-C on a sweep that is being waited for, against the loopback workspace and its real
MLflow server: in a real kernel (``--wait``) and in a terminal (``run --sweep``), it cancels
the sweep: no job run is left running, no queued point starts, the parent ends KILLED, and
the user reads a sentence, not a traceback."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mlrun_magic.tracking import RestTracking
from tests.notebook.kernel_kit import QUICKSTART, errors_of, text_of

pytestmark = pytest.mark.slow

BODY = """parameters:
  epochs: 300
  pause: 1
sweep:
  alpha: [0.1, 0.2, 0.3, 0.4]
max_parallel: 2
"""


def two_running(ws, timeout=90.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(r["state"]["life_cycle_state"] == "RUNNING" for r in ws.runs()) < 2:
        assert time.monotonic() < deadline, ws.runs()
        time.sleep(0.1)


def check_cancelled(ws, parent_id: str) -> None:
    runs = ws.runs()
    assert len(runs) == 2, runs  # the queued points never started
    assert all(r["state"]["life_cycle_state"] == "TERMINATED" for r in runs), runs
    parent = RestTracking(ws.mlflow_url).get_run(parent_id)
    assert parent["status"] == "KILLED", parent


def test_ctrl_c_in_a_waiting_sweep_cell_cancels_the_sweep(kernel):
    ws = kernel.workspace

    def interrupt_when_two_run():
        two_running(ws)
        kernel.km.interrupt_kernel()

    out = kernel("%%project_run -b databricks -c cluster.json --wait\n" + BODY, timeout=180,
                 on_start=interrupt_when_two_run)
    (error,) = errors_of(out)
    shown = "\n".join(error["traceback"])
    assert "Traceback" not in shown and "File " not in shown, shown
    assert "interrupted: sweep" in shown and "was cancelled" in shown, shown
    parent_id = re.search(r'class="mlrun-magic-sweep" data-run-id="(\w+)"',
                          text_of(out)).group(1)
    check_cancelled(ws, parent_id)


def test_ctrl_c_in_a_terminal_sweep_cancels_it_and_exits_130(workspace, tmp_path):
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    (project / "sweep.yaml").write_text(BODY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(workspace.env(), DATABRICKS_CONFIG_FILE=str(tmp_path / "none.cfg"),
               HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    cli = subprocess.Popen(
        [sys.executable, "-m", "mlrun_magic", "run", str(project), "-b", "databricks",
         "--backend-config", str(project / "cluster.json"), "--sweep",
         str(project / "sweep.yaml"), "--experiment-name", "/Shared/cli-sweep-interrupt"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=project)
    try:
        two_running(workspace)
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, (out, err)
    assert "Traceback" not in err and "was cancelled" in err, err
    parent_id = re.search(r"Sweep (\w+): 4 runs", err).group(1)
    check_cancelled(workspace, parent_id)
