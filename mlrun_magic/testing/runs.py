"""Job runs and task runs as the Jobs API shows them (``runs/get``, ``runs/get-output``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")
TASK_TYPES = ("spark_python_task", "notebook_task", "python_wheel_task", "spark_jar_task",
              "spark_submit_task", "pipeline_task", "sql_task", "dbt_task", "run_job_task",
              "condition_task", "for_each_task", "clean_rooms_notebook_task", "dashboard_task",
              "power_bi_task", "gen_ai_compute_task", "shell_command_task")
_STATUS_STATE = {"INTERNAL_ERROR": "TERMINATED", "SKIPPED": "TERMINATED",
                 "WAITING_FOR_RETRY": "WAITING"}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RunState:
    """Life cycle and outcome shared by job runs and task runs."""

    life_cycle: str = "PENDING"
    result_state: str | None = None
    state_message: str = "Waiting for cluster"
    termination: dict | None = None
    user_cancelled_or_timedout: bool = False
    start_time: int = field(default_factory=now_ms)
    running_time: int = 0
    finished_time: int = 0
    end_time: int = 0

    def set(self, life_cycle: str, message: str) -> None:
        self.life_cycle = life_cycle
        self.state_message = message

    def finish(self, life_cycle: str, result: str, message: str, code: str, kind: str) -> None:
        self.life_cycle, self.result_state, self.state_message = life_cycle, result, message
        self.termination = {"code": code, "type": kind, "message": message}
        self.end_time = now_ms()
        self.finished_time = self.finished_time or self.end_time

    @property
    def terminal(self) -> bool:
        return self.life_cycle in TERMINAL

    def state_json(self) -> dict:
        state = {"life_cycle_state": self.life_cycle, "state_message": self.state_message,
                 "user_cancelled_or_timedout": self.user_cancelled_or_timedout}
        if self.result_state:
            state["result_state"] = self.result_state
        return state

    def status_json(self) -> dict:
        status: dict[str, Any] = {"state": _STATUS_STATE.get(self.life_cycle, self.life_cycle)}
        if self.termination and self.terminal:
            status["termination_details"] = dict(self.termination)
        return status

    def durations(self) -> dict:
        end = self.end_time or now_ms()
        setup = (self.running_time or end) - self.start_time
        execution = ((self.finished_time or end) - self.running_time) if self.running_time else 0
        cleanup = (end - self.finished_time) if self.finished_time else 0
        return {"start_time": self.start_time, "end_time": self.end_time,
                "setup_duration": max(setup, 0), "execution_duration": max(execution, 0),
                "cleanup_duration": max(cleanup, 0), "run_duration": end - self.start_time,
                "queue_duration": 0}


@dataclass
class TaskRun:
    """One task of a job run; it has its own run id (what ``runs/get-output`` wants)."""

    run_id: int
    task_key: str
    spec: dict
    state: RunState = field(default_factory=RunState)
    cluster_id: str | None = None
    log_path: Path | None = None
    command: list[str] | None = None
    cwd: str | None = None
    exit_code: int | None = None
    error: str | None = None
    error_trace: str | None = None

    @property
    def task_type(self) -> str:
        return next((t for t in TASK_TYPES if t in self.spec), "unknown")


@dataclass
class JobRun:
    """A one-time run from ``runs/submit``: the exact request and its task runs."""

    run_id: int
    job_id: int
    run_name: str
    submitted: dict
    api_version: str
    single_task_form: bool
    tasks: list[TaskRun]
    idempotency_token: str | None = None
    timeout_seconds: int = 0
    state: RunState = field(default_factory=RunState)
    token: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class RunView:
    """Renders runs as JSON for one workspace (host, workspace id, user)."""

    def __init__(self, workspace) -> None:
        self.ws = workspace

    def page_url(self, job_id: int, run_id: int) -> str:
        return f"{self.ws.host}/?o={self.ws.workspace_id}#job/{job_id}/run/{run_id}"

    def _common(self, run: JobRun, run_id: int, state: RunState) -> dict:
        return {"job_id": run.job_id, "run_id": run_id, "number_in_job": run_id,
                "original_attempt_run_id": run_id, "attempt_number": 0,
                "creator_user_name": self.ws.user_name, "run_name": run.run_name,
                "run_type": "SUBMIT_RUN", "trigger": "ONE_TIME",
                "run_page_url": self.page_url(run.job_id, run_id),
                "state": state.state_json(), "status": state.status_json(),
                **state.durations()}

    def task_json(self, run: JobRun, task: TaskRun) -> dict:
        body = {**task.spec, **self._common(run, task.run_id, task.state)}
        body["task_key"] = task.task_key
        if task.cluster_id:
            body["cluster_instance"] = {"cluster_id": task.cluster_id,
                                        "spark_context_id": str(abs(hash(task.cluster_id)))}
        return body

    def run_json(self, run: JobRun, as_version: str) -> dict:
        body = self._common(run, run.run_id, run.state)
        body.update(setup_duration=0, execution_duration=0, cleanup_duration=0)
        if run.timeout_seconds:
            body["timeout_seconds"] = run.timeout_seconds
        if as_version == "2.0" and run.single_task_form:
            task = run.tasks[0]
            body["format"] = "SINGLE_TASK"
            body["task"] = {task.task_type: task.spec.get(task.task_type)}
            body["cluster_spec"] = {k: task.spec[k] for k in
                                    ("new_cluster", "existing_cluster_id", "libraries")
                                    if k in task.spec}
            body.update({k: v for k, v in task.state.durations().items()
                         if k.endswith("_duration") and k not in ("run_duration",
                                                                  "queue_duration")})
            if task.cluster_id:
                body["cluster_instance"] = self.task_json(run, task)["cluster_instance"]
        else:
            body["format"] = "MULTI_TASK"
            body["tasks"] = [self.task_json(run, task) for task in run.tasks]
        return body

    def admin_json(self, run: JobRun) -> dict:
        return {"run_id": run.run_id, "job_id": run.job_id, "run_name": run.run_name,
                "api_version": run.api_version, "idempotency_token": run.idempotency_token,
                "run_page_url": self.page_url(run.job_id, run.run_id),
                "state": run.state.state_json(), "submitted": run.submitted,
                "tasks": [{"run_id": t.run_id, "task_key": t.task_key, "type": t.task_type,
                           "state": t.state.state_json(), "command": t.command, "cwd": t.cwd,
                           "exit_code": t.exit_code, "cluster_id": t.cluster_id}
                          for t in run.tasks]}
