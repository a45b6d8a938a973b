"""Jobs API 2.2: the one-task ``runs/submit`` body, and a job run's state in our terms."""

from __future__ import annotations

import json

from mlrun_magic.backends.base import RunState

JOBS_API = "/api/2.2/jobs"
TASK_KEY = "mlflow_project"
TERMINAL_LIFE_CYCLES = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


def submit_body(*, run_name: str, idempotency_token: str, python_file: str,
                parameters: list[str], compute, extra_run_fields: dict | None = None) -> dict:
    """The ``runs/submit`` request: one ``spark_python_task`` on the chosen compute."""
    task = {"task_key": TASK_KEY,
            "spark_python_task": {"python_file": python_file, "parameters": parameters}}
    task.update(json.loads(json.dumps(compute.task)))  # a copy: the caller's spec stays as is
    body = {"run_name": run_name, "idempotency_token": idempotency_token, "tasks": [task]}
    body.update(json.loads(json.dumps(compute.run)))
    body.update(extra_run_fields or {})
    return body


def run_state(run: dict) -> RunState:
    """Map a ``runs/get`` answer to PENDING/QUEUED/RUNNING/TERMINATING/FINISHED/FAILED/KILLED.

    Unlike MLflow (which calls everything that is not SUCCESS ``FAILED``), a cancelled run is
    ``KILLED``; unknown future life-cycle states count as still running.
    """
    state = run.get("state") or {}
    status = run.get("status") or {}
    life = state.get("life_cycle_state") or status.get("state") or "PENDING"
    result = state.get("result_state")
    message = state.get("state_message") or (status.get("termination_details") or {}).get("message", "")
    if life in TERMINAL_LIFE_CYCLES or result:
        if result in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
            return RunState("FINISHED", message)
        if result in ("CANCELED", "UPSTREAM_CANCELED") or \
                (status.get("termination_details") or {}).get("code") == "USER_CANCELED":
            return RunState("KILLED", message or "cancelled")
        if life in TERMINAL_LIFE_CYCLES or result:
            return RunState("FAILED", message or (result or life))
    if life in ("QUEUED", "BLOCKED"):
        return RunState("QUEUED", message or (status.get("queue_details") or {}).get("message", ""))
    if life in ("PENDING", "WAITING_FOR_RETRY", "WAITING"):
        return RunState("PENDING", message)
    if life == "TERMINATING":
        return RunState("TERMINATING", message)
    return RunState("RUNNING", message)


def task_run_id(run: dict) -> int | None:
    """The run id of the one task (``get-output`` wants it, not the parent's)."""
    tasks = run.get("tasks") or []
    for task in tasks:
        if task.get("task_key") == TASK_KEY:
            return task.get("run_id")
    return tasks[0].get("run_id") if tasks else None
