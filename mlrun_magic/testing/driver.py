"""Really running a job run: each task in a subprocess that plays the cluster's driver.

A ``spark_python_task`` runs ``sys.executable <python_file> <parameters...>``; the legacy
``shell_command_task`` runs its ``command`` (``["bash", "-c", ...]``). The process gets a
fresh temporary working directory, its own process group (so cancel can end all of it),
``new_cluster.spark_env_vars`` and the task's ``env_vars``, and reaches tracking as it would
on Databricks: ``MLFLOW_TRACKING_URI=databricks``, ``DATABRICKS_HOST`` = this workspace,
``DATABRICKS_TOKEN`` = a token issued for this run (revoked when it ends). Workspace paths
are translated as described in :mod:`mlrun_magic.testing.paths`, and the mounts refuse
appends and updates as on Databricks (:mod:`mlrun_magic.testing.fuse_site.sitecustomize`).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from mlrun_magic.testing.paths import FUSE_ROOT_ENV, local_path, translate_argument
from mlrun_magic.testing.runs import JobRun, TaskRun, now_ms

_CLIENT_ENV_PREFIXES = ("DATABRICKS_", "MLFLOW_", "MLRUN_MAGIC_")
FUSE_SITE = Path(__file__).resolve().parent / "fuse_site"


def _cluster_id() -> str:
    return datetime.now().strftime("%m%d-%H%M%S-") + secrets.token_hex(4)


def _error_from_log(text: str) -> tuple[str | None, str | None]:
    """The last Python traceback in ``text``: (its exception line, the trace up to and with
    that line), as Databricks gives a failed Python task's ``error`` ("ZeroDivisionError:
    division by zero") and ``error_trace``. What the process printed after the traceback
    (MLflow's "View run" lines) is output, not part of the error."""
    start = text.rfind("Traceback (most recent call last):")
    if start < 0:
        return None, None
    lines = text[start:].splitlines()
    # The frames are indented; the first line that is not ends the traceback.
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() and
                not line[:1].isspace()), None)
    if end is None:
        trace = "\n".join(lines).rstrip()
        return (trace.splitlines()[-1].strip() if trace.strip() else None), trace
    return lines[end].strip(), "\n".join(lines[:end + 1])


class Driver:
    """Runs job runs in background threads, one subprocess per task at a time."""

    def __init__(self, workspace) -> None:
        self.ws = workspace

    def start(self, run: JobRun) -> None:
        run.thread = threading.Thread(target=self._execute, args=(run,),
                                                    name=f"job-run-{run.run_id}", daemon=True)
        run.thread.start()

    # -- life cycle ---------------------------------------------------------------------------

    def _set(self, run: JobRun, target, life_cycle: str, message: str) -> None:
        with self.ws.lock:
            target.state.set(life_cycle, message)
            if life_cycle == "RUNNING" and not target.state.running_time:
                target.state.running_time = now_ms()
            if life_cycle == "TERMINATING" and not target.state.finished_time:
                target.state.finished_time = now_ms()

    def _execute(self, run: JobRun) -> None:
        try:
            outcome = "SUCCESS"
            for task in run.tasks:
                if outcome != "SUCCESS" or run.cancel_requested.is_set():
                    skipped = "UPSTREAM_CANCELED" if run.cancel_requested.is_set() \
                        else "UPSTREAM_FAILED"
                    with self.ws.lock:
                        task.state.finish("TERMINATED", skipped, "Upstream task did not succeed.",
                                          skipped, "CLIENT_ERROR")
                    continue
                outcome = self._run_task(run, task)
                if task.cluster_id:
                    self.ws.compute.end_job_cluster(task.cluster_id)
            self._finish_run(run, outcome)
        finally:
            if run.token:
                self.ws.auth.revoke(run.token)

    def _finish_run(self, run: JobRun, outcome: str) -> None:
        details = {
            "SUCCESS": ("TERMINATED", "SUCCESS", "", "SUCCESS", "SUCCESS"),
            "CANCELED": ("TERMINATED", "CANCELED", "Run cancelled.", "USER_CANCELED", "SUCCESS"),
            "TIMEDOUT": ("TERMINATED", "TIMEDOUT", "Run timed out.", "RUN_EXECUTION_ERROR",
                         "CLIENT_ERROR"),
        }.get(outcome)
        if details is None:
            failed = next((t for t in run.tasks if t.state.result_state not in (None, "SUCCESS")),
                          run.tasks[-1])
            life = "INTERNAL_ERROR" if failed.state.life_cycle == "INTERNAL_ERROR" else "TERMINATED"
            termination = failed.state.termination or {}
            details = (life, "FAILED", failed.state.state_message or "Task failed.",
                       termination.get("code", "RUN_EXECUTION_ERROR"),
                       termination.get("type", "CLIENT_ERROR"))
        with self.ws.lock:
            run.state.user_cancelled_or_timedout = outcome in ("CANCELED", "TIMEDOUT")
            run.state.finish(*details)

    def _wait(self, run: JobRun, seconds: float) -> bool:
        """Sleep ``seconds``; True if a cancel arrived meanwhile."""
        return run.cancel_requested.wait(max(seconds, 0))

    def _run_task(self, run: JobRun, task: TaskRun) -> str:
        settings = self.ws.settings
        with self.ws.lock:
            if run.state.life_cycle == "PENDING":
                run.state.set("PENDING", "Waiting for cluster")
        if self._wait(run, settings.pending_seconds):
            return self._cancelled(run, task)
        task.cluster_id = _cluster_id()
        if "new_cluster" in task.spec:
            reason = self.ws.compute.launch_job_cluster(task.cluster_id, task.spec["new_cluster"])
            if reason is not None:
                return self._launch_failed(task, reason)
        problem = self._prepare(run, task)
        if problem:
            code, message = problem
            with self.ws.lock:
                task.state.finish("INTERNAL_ERROR", "FAILED", message, code, "CLIENT_ERROR")
                task.error = message
            return "FAILED"
        self._set(run, run, "RUNNING", "In run")
        self._set(run, task, "RUNNING", "In run")
        outcome = self._supervise(run, task)
        if outcome == "CANCELED":
            return self._cancelled(run, task)
        self._set(run, task, "TERMINATING", "Terminating the cluster")
        if run.tasks[-1] is task or outcome != "SUCCESS" or task.exit_code != 0:
            self._set(run, run, "TERMINATING", "Terminating the run")
        self._wait(run, settings.terminating_seconds)
        text = task.log_path.read_text(errors="replace") if task.log_path else ""
        with self.ws.lock:
            if outcome == "TIMEDOUT":
                task.state.user_cancelled_or_timedout = True
                task.state.finish("TERMINATED", "TIMEDOUT", "Task timed out.",
                                  "RUN_EXECUTION_ERROR", "CLIENT_ERROR")
            elif task.exit_code == 0:
                task.state.finish("TERMINATED", "SUCCESS", "", "SUCCESS", "SUCCESS")
            else:
                error, trace = _error_from_log(text)
                task.error = error or f"The driver process exited with code {task.exit_code}."
                task.error_trace = trace
                task.state.finish("TERMINATED", "FAILED", "Task failed with an error: "
                                  + task.error, "RUN_EXECUTION_ERROR", "CLIENT_ERROR")
        if outcome == "SUCCESS" and task.exit_code != 0:
            return "FAILED"
        return outcome

    def _launch_failed(self, task: TaskRun, reason: dict) -> str:
        """The task's cluster never started: the task ends as Databricks ends it then."""
        params = ",".join(f"{k}:{v}" for k, v in (reason.get("parameters") or {}).items())
        cluster, code, kind = task.cluster_id, reason.get("code"), reason.get("type")
        message = (f"Cluster {cluster} was terminated while waiting on it to be ready: Cluster "
                   f"{cluster} is in unexpected state Terminated: {code}({kind}): {params}.")
        cloud = kind == "CLOUD_FAILURE"
        with self.ws.lock:
            task.state.finish("INTERNAL_ERROR", "FAILED", message,
                              "CLOUD_FAILURE" if cloud else "CLUSTER_ERROR",
                              "CLOUD_FAILURE" if cloud else "CLIENT_ERROR")
        return "FAILED"

    def _cancelled(self, run: JobRun, task: TaskRun) -> str:
        self._set(run, task, "TERMINATING", "Run cancellation requested")
        self._set(run, run, "TERMINATING", "Run cancellation requested")
        with self.ws.lock:
            task.state.user_cancelled_or_timedout = True
            task.state.finish("TERMINATED", "CANCELED", "Run cancelled.", "USER_CANCELED",
                              "SUCCESS")
        return "CANCELED"

    # -- the process --------------------------------------------------------------------------

    def _prepare(self, run: JobRun, task: TaskRun) -> tuple[str, str] | None:
        """Build command, cwd and log file; or (termination code, message) if it cannot run."""
        root = self.ws.storage_root
        spec = task.spec
        if "spark_python_task" in spec:
            python_task = spec["spark_python_task"]
            location = python_task["python_file"]
            script = local_path(location, root)
            if not script.is_file():
                return ("RESOURCE_NOT_FOUND", f"Cannot read the python file {location}. "
                        "Please check driver logs for more details.")
            params = [translate_argument(str(p), root) for p in python_task.get("parameters", [])]
            task.command = [sys.executable, str(script), *params]
        elif "shell_command_task" in spec:
            task.command = [str(part) for part in spec["shell_command_task"]["command"]]
        else:
            return ("INVALID_RUN_CONFIGURATION", f"{task.task_type} is not executed by the "
                    "loopback workspace (mlrun_magic.testing); only spark_python_task and "
                    "shell_command_task run.")
        drivers = self.ws.root / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        task.cwd = tempfile.mkdtemp(prefix=f"task-{task.run_id}-", dir=drivers)
        task.log_path = drivers / f"{task.run_id}.log"
        return None

    def _environment(self, run: JobRun, task: TaskRun) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_CLIENT_ENV_PREFIXES)}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update({
            "MLFLOW_TRACKING_URI": "databricks",
            "DATABRICKS_HOST": self.ws.host,
            "DATABRICKS_TOKEN": run.token or "",
            FUSE_ROOT_ENV: str(self.ws.storage_root),
            "DB_HOME": str(self.ws.root / "drivers"),
            "PYTHONUNBUFFERED": "1",
            # The FUSE mounts' rules (no appends, no random writes): see fuse_site.
            "PYTHONPATH": os.pathsep.join([str(FUSE_SITE)] + ([os.environ["PYTHONPATH"]]
                                                              if os.environ.get("PYTHONPATH")
                                                              else [])),
        })
        env.update({k: str(v) for k, v in (run.submitted.get("environment_variables")
                                           or {}).items()})
        cluster = task.spec.get("new_cluster") or {}
        env.update({k: str(v) for k, v in (cluster.get("spark_env_vars") or {}).items()})
        shell = task.spec.get("shell_command_task") or {}
        env.update({k: str(v) for k, v in (shell.get("env_vars") or {}).items()})
        return env

    def _supervise(self, run: JobRun, task: TaskRun) -> str:
        timeouts = [t for t in (run.timeout_seconds, task.spec.get("timeout_seconds") or 0) if t]
        deadline = time.monotonic() + min(timeouts) if timeouts else None
        with open(task.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(task.command, cwd=task.cwd, env=self._environment(run, task),
                                        stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                log.write(f"Could not start the driver: {exc}\n".encode())
                task.exit_code = 127
                return "SUCCESS"
        self.ws.processes.add(proc)
        try:
            while True:
                try:
                    task.exit_code = proc.wait(timeout=0.05)
                    return "SUCCESS"
                except subprocess.TimeoutExpired:
                    pass
                if run.cancel_requested.is_set():
                    kill_group(proc)
                    return "CANCELED"
                if deadline is not None and time.monotonic() > deadline:
                    kill_group(proc)
                    return "TIMEDOUT"
        finally:
            self.ws.processes.discard(proc)
            # A cluster ends with its run: nothing the driver left behind survives it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """End ``proc`` and everything it started (its process group): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children that escaped into the same group after the leader exited.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
