"""A real ``mlflow server`` on a free loopback port, for tests, the demo and the workspace.

It runs MLflow's own tracking server (the Flask app under gunicorn, one worker) with a
SQLite store and a local artifact folder under ``root``, waits until ``/health`` answers,
and stops the whole process group on :meth:`stop` or on leaving the ``with`` block.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class MlflowServerError(RuntimeError):
    """The MLflow tracking server could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _mlflow_executable() -> str:
    here = Path(sys.executable).parent / "mlflow"
    found = str(here) if here.exists() else shutil.which("mlflow")
    if not found:
        raise MlflowServerError(
            "The `mlflow` command was not found. Install the test extras: "
            "pip install 'mlrun-magic[test]' (mlflow-skinny, flask, sqlalchemy, alembic, gunicorn)."
        )
    return found


class MlflowServer:
    """A running MLflow tracking server; ``url`` is its ``http://127.0.0.1:PORT`` address."""

    def __init__(self, root: str | os.PathLike | None = None, *, host: str = "127.0.0.1",
                 port: int | None = None):
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="mlrun-magic-mlflow-"))
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "server.log"

    def start(self, timeout: float = 90.0) -> "MlflowServer":
        import requests

        self.root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The job runner needs `huey` and MLflow's GenAI extras: nothing a tracking test uses.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd = [
            _mlflow_executable(), "server",
            "--host", self.host, "--port", str(self.port), "--workers", "1",
            "--gunicorn-opts", "--log-level warning --timeout 600",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
        ]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=self.root, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MlflowServerError(
                    f"mlflow server exited with status {self.process.returncode}; "
                    f"see {self.log_path}:\n{self._log_tail()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise MlflowServerError(f"mlflow server did not answer on {self.url} within {timeout:.0f} s; "
                                f"see {self.log_path}:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
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
