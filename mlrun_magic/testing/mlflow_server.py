"""A real MLflow tracking server on a free loopback port, for tests, the demo and the workspace.

It runs MLflow's own tracking server (its Flask app, ``mlflow.server:app``, under gunicorn with
one worker) with a SQLite store and a local artifact folder under ``root``, waits until the
tracking API answers, and stops the whole process group on :meth:`stop` or on leaving the
``with`` block.

To start in about two seconds it skips the ``mlflow server`` command line (slow to import) and
starts gunicorn directly with the environment ``mlflow server`` would set, and it copies an
already-migrated SQLite database from a per-MLflow-version template kept in
``~/.cache/mlrun-magic`` (created on first use; set ``MLRUN_MAGIC_CACHE_DIR`` to move it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


class MlflowServerError(RuntimeError):
    """The MLflow tracking server could not be started."""


_INSTALL_HINT = ("Install the test extras: pip install 'mlrun-magic[test]' "
                 "(mlflow-skinny, flask, flask-cors, sqlalchemy, alembic, gunicorn).")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _check_installed() -> str:
    """The installed MLflow version, or a :class:`MlflowServerError` naming what to install."""
    missing = [name for name in ("mlflow", "gunicorn", "flask", "sqlalchemy", "alembic")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise MlflowServerError(f"Cannot start an MLflow tracking server: {', '.join(missing)} "
                                f"not installed. {_INSTALL_HINT}")
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("mlflow", "mlflow-skinny"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"


def _template_path(mlflow_version: str) -> Path:
    base = os.environ.get("MLRUN_MAGIC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlrun-magic")
    return Path(base) / f"mlflow-{mlflow_version}-empty.db"


class MlflowServer:
    """A running MLflow tracking server; ``url`` is its ``http://127.0.0.1:PORT`` address.

    ``MlflowServer(root).start()`` (or ``with MlflowServer(root) as server:``) starts it;
    ``stop()`` ends it. Without ``root`` a temporary folder is used and removed on exit.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, host: str = "127.0.0.1",
                 port: int | None = None):
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="mlrun-magic-mlflow-"))
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "server.log"
        self._db_path = self.root / "mlflow.db"
        self._template: Path | None = None

    def launch(self) -> "MlflowServer":
        """Start the server process without waiting for it (see :meth:`wait_ready`)."""
        self._template = _template_path(_check_installed())
        self.root.mkdir(parents=True, exist_ok=True)
        if not self._db_path.exists() and self._template.exists():
            shutil.copyfile(self._template, self._db_path)
        store = f"sqlite:///{self._db_path}"
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        env.update({
            # What `mlflow server` puts in its workers' environment (mlflow/server/__init__.py).
            "_MLFLOW_SERVER_FILE_STORE": store,
            "_MLFLOW_SERVER_REGISTRY_STORE": store,
            "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
            "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
            "_MLFLOW_SERVER_ARTIFACT_DESTINATION": str(self.root / "artifacts"),
            "_MLFLOW_SGI_NAME": "gunicorn",
            "_MLFLOW_IN_JOB_EXECUTOR": "false",
            "_MLFLOW_SERVER_BOOT_ID": uuid.uuid4().hex,
            # The job runner needs `huey` and MLflow's GenAI extras: nothing a tracking test uses.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        })
        cmd = [sys.executable, "-m", "gunicorn", "--log-level", "warning", "--timeout", "600",
               "-b", f"{self.host}:{self.port}", "-w", "1", "mlflow.server:app"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.root, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 90.0) -> "MlflowServer":
        """Wait until the tracking API answers (the first call migrates a fresh database)."""
        import requests

        probe = self.url + "/api/2.0/mlflow/experiments/get-by-name"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise MlflowServerError(f"The MLflow server exited with status {code}; "
                                        f"see {self.log_path}:\n{self._log_tail()}")
            try:
                answer = requests.get(probe, params={"experiment_name": "Default"}, timeout=30)
                if answer.status_code == 200:
                    self._save_template()
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise MlflowServerError(f"The MLflow server did not answer on {self.url} within "
                                f"{timeout:.0f} s; see {self.log_path}:\n{self._log_tail()}")

    def start(self, timeout: float = 90.0) -> "MlflowServer":
        """Start the server and wait until it answers."""
        return self.launch().wait_ready(timeout)

    def _save_template(self) -> None:
        if self._template is None or self._template.exists():
            return
        try:
            self._template.parent.mkdir(parents=True, exist_ok=True)
            partial = self._template.with_suffix(f".{os.getpid()}.tmp")
            with sqlite3.connect(self._db_path) as src, sqlite3.connect(partial) as dst:
                src.backup(dst)
            os.replace(partial, self._template)
        except (OSError, sqlite3.Error):
            pass  # A cache is an optimisation: a read-only home only costs startup time.

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and its worker (the whole process group)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
