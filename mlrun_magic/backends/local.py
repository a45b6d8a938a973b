"""The local backend: run the entry point on this machine, tracked like ``mlflow run``.

The MLflow run is created first (MLflow's tags, params unquoted); the environment is built
or reused; then the command runs with ``bash -c`` in the project folder, in its own process
group, with ``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_ID`` set so
``mlflow.start_run()`` in the code joins the run. A ``user:password@`` in an ``http(s)``
tracking URI reaches the command only as ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` (which
MLflow reads), never inside the ``MLFLOW_TRACKING_URI`` it prints in its "View run" lines.
Output goes to the run's log file (``<project>/.mlrun_magic/logs/<run id>.log``) and, when
asked, to this process's stdout. When the process ends the MLflow run is marked FINISHED,
FAILED or KILLED.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from mlrun_magic.backends.base import SubmittedRun
from mlrun_magic.errors import BackendError, MlrunMagicError
from mlrun_magic.history import state_dir
from mlrun_magic.redact import redact_text, redact_url, split_userinfo
from mlrun_magic.runs import Links, RunInfo, RunState

logger = logging.getLogger("mlrun_magic.backends.local")
STOP_GRACE_SECONDS = 10.0


def tracking_env(tracking_uri: str, credentials: dict[str, str] | None = None) -> dict[str, str]:
    """The tracking variables of the child: ``MLFLOW_TRACKING_URI`` without credentials, and
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` from its ``user:password@`` or ``credentials``
    (which win). An empty user name or password leaves the variable already in the
    environment alone.
    """
    clean, found = split_userinfo(tracking_uri)
    env = {"MLFLOW_TRACKING_URI": clean}
    env.update({name: value for name, value in {**found, **(credentials or {})}.items()
                if value})
    return env


def _child_env(plan, mlflow_run, tracking, activated: bool) -> dict[str, str]:
    from mlrun_magic.redact import split_userinfo

    # The tracking client keeps what it took out of the URI; else read the URI the user gave.
    given = plan.request.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    credentials = getattr(tracking, "child_env", None) or split_userinfo(given)[1]
    env = dict(os.environ)
    env.update({"MLFLOW_RUN_ID": mlflow_run.run_id,
                "MLFLOW_EXPERIMENT_ID": str(mlflow_run.experiment_id)})
    env.update(tracking_env(mlflow_run.tracking_uri, credentials))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not activated:
        # `local` means this Python environment: make `python` in the command resolve
        # to this interpreter, not whatever comes first on PATH.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        if sys.prefix != sys.base_prefix:
            env["VIRTUAL_ENV"] = sys.prefix
    return env


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class _Tee:
    """Writes bytes to the log file and, optionally, to this process's stdout."""

    def __init__(self, log, echo: bool):
        self.log = log
        self.echo = getattr(sys.stdout, "buffer", None) if echo else None

    def write(self, data: bytes) -> None:
        self.log.write(data)
        self.log.flush()
        if self.echo is not None:
            self.echo.write(data)
            self.echo.flush()


def _open_log(project_dir: Path, run_id: str):
    """The run's log file, ``<project>/.mlrun_magic/logs/<run id>.log``, open for appending."""
    try:
        log_path = state_dir(project_dir) / "logs" / f"{run_id}.log"
        log_path.parent.mkdir(exist_ok=True)
        return open(log_path, "ab")
    except OSError as exc:
        raise BackendError(f"cannot write the run's log in {Path(project_dir) / '.mlrun_magic'}:"
                           f" {exc.strerror or exc}",
                           hint="A local run keeps its output there: make the project folder "
                                "writable, or remove a file named .mlrun_magic.") from None


class LocalBackend:
    """Runs project entry points as subprocesses of this machine."""

    name = "local"

    def submit(self, plan, *, tracking=None, echo: bool = False,
               progress=None) -> "LocalSubmittedRun":
        """Create the MLflow run, prepare the environment and start the command."""
        from mlrun_magic.backends import local_docker, local_env
        from mlrun_magic.backends.tracking_uri import open_tracking
        from mlrun_magic.tracking import finish_run, start_project_run

        if plan.docker is not None:
            local_docker.check_docker()  # before the run exists: nothing to undo
        # The plan's URI: the one the user set, else the default store (never a store in the
        # project folder); the child gets the same one in MLFLOW_TRACKING_URI.
        tracking = tracking or open_tracking(plan.tracking_uri or plan.request.tracking_uri)
        mlflow_run = start_project_run(tracking, plan, "local")
        try:
            log = _open_log(plan.project_dir, mlflow_run.run_id)
        except BaseException as exc:
            finish_run(tracking, mlflow_run.run_id,
                       "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        out = _Tee(log, echo)
        try:
            if plan.docker is not None:  # secrets go by name only: the line is safe to show
                command, env = local_docker.prepare(plan, mlflow_run, tracking, out)
            else:
                prefix = local_env.prepare(plan, out)
                if plan.env_manager != "local":
                    tracking.set_tag(mlflow_run.run_id, "mlflow.project.env", plan.env_manager)
                command = f"{prefix} && {plan.command}" if prefix else plan.command
                env = _child_env(plan, mlflow_run, tracking, activated=prefix is not None)
            logger.info("=== Running command '%s' in run with ID '%s' === ", command,
                        mlflow_run.run_id)
            try:
                process = subprocess.Popen(["bash", "-c", command], cwd=plan.project_dir, env=env,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise BackendError(f"cannot start bash: {exc.strerror}") from None
        except BaseException as exc:
            log.write(f"=== {redact_text(str(exc))} ===\n".encode())
            log.close()
            finish_run(tracking, mlflow_run.run_id,
                       "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        info = RunInfo(project=plan.project.name or plan.project_dir.name,
                       entry_point=plan.entry_point.name, backend=self.name,
                       run_name=plan.request.run_name, parameters=dict(plan.parameters.values))
        links = Links(mlflow_run=redact_url(mlflow_run.run_url) if mlflow_run.run_url else None,
                      experiment=redact_url(mlflow_run.experiment_url)
                      if mlflow_run.experiment_url else None)
        run = LocalSubmittedRun(mlflow_run, info, links, process, log, out, tracking, command,
                                on_kill=partial(local_docker.kill_containers, mlflow_run.run_id)
                                if plan.docker is not None else None)
        try:
            run.start()
        except BaseException:
            # Interrupted before the caller got a handle: nobody else could stop the process.
            run.abort()
            raise
        return run


class LocalSubmittedRun(SubmittedRun):
    """A project run in a local subprocess."""

    backend = "local"
    remote = False

    def __init__(self, mlflow_run, info, links, process, log, out, tracking, command,
                 on_kill=None):
        super().__init__(mlflow_run.run_id, info, links)
        self.mlflow_run = mlflow_run
        self.command = command
        self.log_path = Path(log.name)
        self.process = process
        self._log = log
        self._out = out
        self._tracking = tracking
        self._cancelled = False
        #: Called once the process group is killed (a docker run's container outlives it).
        self._on_kill = on_kill
        self._final: RunState | None = None
        #: When the process started (it was started just before this handle was made).
        self.started_at = time.time()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"mlrun-magic-{self.run_id}",
                                         daemon=True)

    def start(self) -> None:
        """Start copying the output and watching for the end of the process."""
        self._watcher.start()

    def abort(self) -> None:
        """Kill the process at once and end the run KILLED, whether or not watching began."""
        self._cancelled = True
        self._kill()
        if not self._done.wait(STOP_GRACE_SECONDS) and not self._watcher.is_alive():
            self._watch()

    def _kill(self) -> None:
        _kill_group(self.process.pid, signal.SIGKILL)
        if self._on_kill is not None:
            self._on_kill()

    def _watch(self) -> None:
        from mlrun_magic.tracking import finish_run

        fd = self.process.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._out.write(chunk)
        code = self.process.wait()
        ended_at = time.time()
        self.process.stdout.close()
        if self._cancelled:
            state = RunState("KILLED", "cancelled")
        elif code == 0:
            state = RunState("FINISHED")
        else:
            reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            state = RunState("FAILED", f"the command ended with {reason}")
        try:
            finish_run(self._tracking, self.run_id, state.status)
        except MlrunMagicError as exc:
            state = RunState(state.status, redact_text(f"{state.message}; MLflow not updated: "
                                                       f"{exc}").strip("; "))
        state = replace(state, started_at=self.started_at, ended_at=ended_at)
        self._log.write(f"=== Run (ID '{self.run_id}') {state.status} ===\n".encode())
        self._log.close()
        self._final = state
        self._done.set()
        self.learned(state)  # every view hears it now, not at the next poll
        self.watcher().report(self, state)  # and whoever waits, however busy the poller is

    def fetch_state(self) -> RunState:
        if self._final is not None:
            return self._final
        return RunState("RUNNING", f"process {self.process.pid}", started_at=self.started_at)

    def cancel(self) -> RunState:
        """Stop it: SIGTERM to its group, after 10 s SIGKILL (and docker kill); ends KILLED."""
        if self._done.is_set():
            return self.status()
        self._cancelled = True
        _kill_group(self.process.pid, signal.SIGTERM)
        if not self._done.wait(STOP_GRACE_SECONDS):
            self._kill()
        self._done.wait(STOP_GRACE_SECONDS)
        return self.status()

    def log_reader(self):
        """The new lines of the run's log file, read from where the last read stopped."""
        from mlrun_magic.backends.local_logtail import LocalLogReader

        return LocalLogReader(self.log_path, lambda: self._final if self._done.is_set() else None)

    def metrics_reader(self):
        """The MLflow run's metrics, from the store it logs to (a server through a client
        that gives up within seconds: it is read in the poller's thread)."""
        from mlrun_magic.backends.base import METRICS_DEADLINE
        from mlrun_magic.tracking.metrics import MetricsReader

        tracking = self._tracking
        if hasattr(tracking, "with_deadline"):
            tracking = tracking.with_deadline(METRICS_DEADLINE, METRICS_DEADLINE)
        return MetricsReader(tracking, self.run_id)

    def logs(self, tail: int = 100) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])
