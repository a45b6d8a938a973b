"""`make demo`: the whole mission, end to end, on this machine.

1. Starts mlrun_magic's loopback Databricks workspace (a real HTTP server on 127.0.0.1 that
   stores uploads, really executes job runs, and serves a real MLflow tracking server).
2. Executes the quick-start notebook headlessly in a real kernel: `%load_ext mlrun_magic`,
   a dry run, a `%%project_run` to the workspace, live status, status/logs/cancel, a local
   run, the launch panel.
3. Writes the executed notebook and an HTML copy under build/demo/.
4. Prints the Databricks job-run URL, the MLflow run link of the run it launched and the
   MLflow UI's address, and stops everything it started.

Each demo is a fresh workspace (see mlrun_magic/testing/lab.py: a new folder under
build/demo, port, workspace id and job-run ids), so `make lab` never shows the demo's runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "example_notebooks" / "quickstart" / "quickstart.ipynb"
OUT = REPO / "build" / "demo"


def main() -> int:
    import nbformat

    from mlrun_magic.backends.databricks import DatabricksSubmittedRun
    from mlrun_magic.testing.lab import fresh_workspace
    from mlrun_magic.testing.mlflow_ui import UI_MISSING, ui_ready

    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    print("Starting the loopback Databricks workspace (with a real MLflow server)...", flush=True)
    with fresh_workspace("demo", OUT, pending_seconds=2) as workspace:
        os.environ.update(workspace.env())  # the notebook's kernel inherits these
        os.environ.pop("DATABRICKS_CONFIG_PROFILE", None)
        print(f"Workspace {workspace.host}, MLflow {workspace.mlflow_url}", flush=True)
        if not ui_ready():
            print(f"note: {UI_MISSING}", flush=True)
        print(f"Executing {NOTEBOOK.relative_to(REPO)} in a real kernel...", flush=True)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        try:
            execute(nb, NOTEBOOK.parent)
        finally:
            executed = OUT / NOTEBOOK.name
            nbformat.write(nb, executed)
            html = _write_html(nb, OUT / (NOTEBOOK.stem + ".html"))
            print(f"Executed notebook: {executed}")
            if html:
                print(f"HTML copy:         {html}")
        runs = workspace.runs()
        if not runs:
            print("error: the notebook launched no job run", file=sys.stderr)
            return 1
        first = DatabricksSubmittedRun.attach(str(runs[0]["run_id"]))
        state = first.status()
        print(f"\nThe notebook's first Databricks run ended {state.status}.")
        print(f"Databricks job run: {first.links.job_run}")
        print(f"MLflow run:         {first.links.mlflow_run}")
        print(f"MLflow UI:          {workspace.mlflow_url}")
        print(f"({len(runs)} job runs in all; demo took {time.monotonic() - started:.0f} s. The "
              "links work while a workspace serves them: `make lab` keeps one running.)")
    return 0 if state.status == "FINISHED" else 1


def execute(nb, cwd: Path, timeout: int = 600) -> None:
    """Execute ``nb`` in place in a new python3 kernel working in ``cwd``.

    The kernel talks to us over Unix sockets (IPC), not TCP: with TCP and no CurveZMQ keys,
    ipykernel warns "Kernel is running over TCP without encryption" (everything sent in plain
    text to a port any local user can reach). A socket path has at most 107 bytes, so the
    connection file (which names the sockets) lives in a short private folder.
    """
    from nbclient import NotebookClient
    from traitlets.config import Config

    sockets = tempfile.mkdtemp(prefix="mlrun-demo-")
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.connection_file = os.path.join(sockets, "kernel.json")
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _write_html(nb, path: Path) -> Path | None:
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        print("(nbconvert is not installed: no HTML copy)", file=sys.stderr)
        return None
    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
