"""``python -m mlrun_magic.testing lab [PATH]``: JupyterLab on PATH with a loopback workspace.

Starts a fresh loopback Databricks workspace (with its own MLflow server) and JupyterLab on
127.0.0.1 serving PATH (default: the example notebooks when mlrun_magic runs from its source
checkout, else the current folder). Every kernel inherits ``DATABRICKS_HOST`` and
``DATABRICKS_TOKEN`` of the workspace, so ``%project_run`` launches real job runs there.
Ctrl-C (SIGINT) or SIGTERM stops JupyterLab and its kernels, the workspace, its job runs and
its MLflow server.

Each start is a new workspace: a new folder (``build/lab/workspace-<time>`` in the source
checkout, else ``~/.cache/mlrun-magic/lab/...``; older unused ones are removed), a new port,
a new workspace id (``?o=``) and its own range of job-run ids, so nothing of an earlier
``make lab`` or ``make demo`` looks like a run of this one.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlrun_magic.testing.procs import alive, descendants

SOURCE_CHECKOUT = Path(__file__).resolve().parents[2]
EXAMPLES = SOURCE_CHECKOUT / "example_notebooks"
JUPYTERLAB_MISSING = ("JupyterLab is not installed in this Python ({python}). Install it with "
                      "`{python} -m pip install jupyterlab` (or the test extras: "
                      "pip install 'mlrun-magic[test]'), then run this again.")


class LabError(Exception):
    """A mistake in how the command was called, said as a sentence (exit status 2)."""


def default_folder() -> Path:
    """The example notebooks in a source checkout, else the current folder."""
    return EXAMPLES if (SOURCE_CHECKOUT / "pyproject.toml").is_file() and EXAMPLES.is_dir() \
        else Path.cwd()


def check_folder(path: str | os.PathLike | None) -> Path:
    """``path`` as an absolute folder, or a :class:`LabError` saying what is wrong with it."""
    folder = Path(path).expanduser() if path else default_folder()
    try:
        folder.stat()
    except FileNotFoundError:
        pass  # said below
    except (OSError, ValueError) as exc:  # too long a name, no permission, a NUL byte
        raise LabError(f"{folder} cannot be served: {getattr(exc, 'strerror', None) or exc}")
    if not folder.exists():
        raise LabError(f"{folder} does not exist: give JupyterLab a folder to serve, e.g. "
                       f"`make lab DIR=~/my-project`.")
    if not folder.is_dir():
        raise LabError(f"{folder} is not a folder: give the folder that holds your notebooks "
                       f"(its MLproject or a parent of it), not a file.")
    return folder.resolve()


def fresh_root(kind: str, parent: str | os.PathLike | None = None) -> Path:
    """A new folder for one workspace of ``kind`` ("lab", "demo"); older unused ones go."""
    if parent is None:
        if (SOURCE_CHECKOUT / "pyproject.toml").is_file():
            parent = SOURCE_CHECKOUT / "build" / kind
        else:
            cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
            parent = Path(cache) / "mlrun-magic" / kind
    parent = Path(parent)
    for old in parent.glob("workspace-*"):
        owner = old / "owner.pid"
        try:
            in_use = alive(int(owner.read_text()))
        except (OSError, ValueError):
            in_use = False
        if not in_use:
            shutil.rmtree(old, ignore_errors=True)
    root = parent / f"workspace-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "owner.pid").write_text(str(os.getpid()))
    return root


def fresh_workspace(kind: str, parent=None, **settings):
    """A :class:`~mlrun_magic.testing.Workspace` no earlier one can be mistaken for: a fresh
    folder (so a fresh MLflow store), a random workspace id and its own job-run ids."""
    from mlrun_magic.testing.workspace import Workspace

    return Workspace(fresh_root(kind, parent),
                     workspace_id=10**15 + secrets.randbelow(9 * 10**15),
                     first_run_id=10**11 + secrets.randbelow(9 * 10**11) * 1000 + 1,
                     **settings)


def jupyterlab_command(folder: Path, port: int, token: str) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
           "--no-browser", f"--ServerApp.root_dir={folder}", f"--IdentityProvider.token={token}",
           # Kernels talk to the server over Unix sockets, not TCP in plain text: nothing on
           # the machine can listen in, and ipykernel has no "without encryption" warning.
           "--KernelManager.transport=ipc"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def run_lab(path: str | None, root: str | None = None, pending_seconds: float = 3.0) -> int:
    """The ``lab`` command; returns the exit status."""
    folder = check_folder(path)
    if importlib.util.find_spec("jupyterlab") is None:
        print("error: " + JUPYTERLAB_MISSING.format(python=sys.executable), file=sys.stderr)
        return 1
    from mlrun_magic.testing.mlflow_server import MlflowServerError, free_port
    from mlrun_magic.testing.mlflow_ui import UI_MISSING, ui_ready

    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        workspace = fresh_workspace("lab", root, pending_seconds=pending_seconds)
    except OSError as exc:
        raise LabError(f"cannot make the workspace folder under {root or 'the default root'}: "
                       f"{exc.strerror or exc}; give --root a folder you can write to") from None
    lab, runtime = None, None
    try:
        try:
            workspace.start()
        except (MlflowServerError, OSError) as exc:
            print(f"error: the loopback workspace did not start: {exc}", file=sys.stderr)
            return 1
        env = {**os.environ, **workspace.env()}
        for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID",
                     "DATABRICKS_CLIENT_SECRET", "MLFLOW_TRACKING_URI"):
            env.pop(name, None)
        # Kernels use Unix sockets (see jupyterlab_command) named after their connection file,
        # and a socket path has at most 107 bytes: a short private runtime folder keeps them
        # short whatever JUPYTER_RUNTIME_DIR says.
        runtime = env["JUPYTER_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="mlrun-lab-")
        port, token = free_port(), secrets.token_hex(16)
        print(f"Loopback workspace {workspace.host} (id {workspace.workspace_id}, "
              f"folder {workspace.root})")
        print(f"MLflow UI {workspace.mlflow_url}")
        if not ui_ready():
            print(f"note: {UI_MISSING}")
        print(f"Serving {folder}")
        print(f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}", flush=True)
        # Its own session: a Ctrl-C in the terminal reaches us only, and we stop JupyterLab
        # (no "Shutdown this Jupyter server (y/[n])?" prompt).
        lab = subprocess.Popen(jupyterlab_command(folder, port, token), env=env,
                               cwd=folder, start_new_session=True)
        return lab.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        if lab is not None:
            _stop_jupyterlab(lab)
        workspace.stop()
        if runtime:
            shutil.rmtree(runtime, ignore_errors=True)


def _stop_jupyterlab(lab: subprocess.Popen) -> None:
    """SIGTERM (JupyterLab then shuts its kernels down), then SIGKILL whatever is left."""
    children = descendants(lab.pid)
    if lab.poll() is None:
        lab.terminate()
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
    for pid in children:  # kernels run in sessions of their own
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
