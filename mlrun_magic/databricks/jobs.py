"""Jobs API 2.2: the one-task ``runs/submit`` body, submitting it exactly once, cancelling,
and a job run's state in our terms."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from mlrun_magic.databricks.errors import DatabricksAPIError
from mlrun_magic.errors import BackendError
from mlrun_magic.runs import RunState

logger = logging.getLogger("mlrun_magic.databricks.jobs")

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
    ``KILLED``; unknown future life-cycle states count as still running. The state carries
    the job run's own ``start_time`` and (once ended) ``end_time``.
    """
    ended = _epoch_seconds(run.get("end_time"))
    state = _status(run)
    return replace(state, started_at=_epoch_seconds(run.get("start_time")),
                   ended_at=ended if state.is_terminal else None)


#: The last second of the year 9999: a later time (or ``1e400``, which JSON parses as
#: infinity) is no time of a run, and no clock or calendar function takes it.
LAST_EPOCH_SECONDS = 253_402_300_799


def _epoch_seconds(millis) -> float | None:
    """Databricks' epoch milliseconds as seconds (0, missing or impossible: not known)."""
    if isinstance(millis, bool) or not isinstance(millis, (int, float)) or \
            not 0 < millis <= LAST_EPOCH_SECONDS * 1000:  # also false for NaN
        return None
    return millis / 1000.0


def _status(run: dict) -> RunState:
    state = _mapping(run.get("state"))
    status = _mapping(run.get("status"))
    details = _mapping(status.get("termination_details"))
    life = _text(state.get("life_cycle_state")) or _text(status.get("state")) or "PENDING"
    result = _text(state.get("result_state"))
    code = _text(details.get("code"))
    message = _text(state.get("state_message")) or _text(details.get("message"))
    if life in TERMINAL_LIFE_CYCLES or result:
        if result in ("SUCCESS", "SUCCESS_WITH_FAILURES") or \
                (not result and code in ("SUCCESS", "SUCCESS_WITH_FAILURES")):
            return RunState("FINISHED", message)
        if result in ("CANCELED", "UPSTREAM_CANCELED") or code in ("USER_CANCELED", "CANCELED"):
            return RunState("KILLED", message or "cancelled")
        return RunState("FAILED", message or (result or code or life))
    if life in ("QUEUED", "BLOCKED"):
        return RunState("QUEUED", message or _text(_mapping(status.get("queue_details"))
                                                    .get("message")))
    if life in ("PENDING", "WAITING_FOR_RETRY", "WAITING"):
        return RunState("PENDING", message)
    if life == "TERMINATING":
        return RunState("TERMINATING", message)
    return RunState("RUNNING", message)


def _mapping(value) -> dict:
    """``value`` if the answer gave an object there, else nothing (a malformed answer is
    read as far as it goes, never a traceback)."""
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def task_run_id(run: dict) -> int | None:
    """The run id of the one task (``get-output`` wants it, not the parent's)."""
    tasks = run.get("tasks") or []
    for task in tasks:
        if task.get("task_key") == TASK_KEY:
            return task.get("run_id")
    return tasks[0].get("run_id") if tasks else None


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C came while ``runs/submit`` was under way; ``job_run_id`` is the run it made
    (found again by its idempotency token), to be cancelled by the caller."""

    def __init__(self, job_run_id: int):
        super().__init__()
        self.job_run_id = job_run_id


def submit_run(client, body: dict) -> int:
    """``POST runs/submit`` and the job run id, whatever became of the first answer.

    ``body`` carries an ``idempotency_token``, so after a failure or Ctrl-C the request is
    sent once more (Ctrl-C deferred): Databricks answers with the run the first request made,
    or makes it now. Raises the first error when Databricks refused the body twice (no run
    exists), :class:`SubmitInterrupted` (with the run to cancel) after Ctrl-C, and a
    :class:`BackendError` naming the token when the outcome cannot be learned.
    """
    from mlrun_magic.tracking import deferred_interrupts

    path = f"{JOBS_API}/runs/submit"
    try:
        return _run_id(client.post(path, body, idempotent=True), path)
    except (Exception, KeyboardInterrupt) as first:  # noqa: B902 (any failure: resolve it)
        if getattr(first, "never_sent", False):
            raise  # it never reached the workspace
        try:
            with deferred_interrupts():
                run_id = _run_id(client.post(path, body, idempotent=True), path)
        except Exception as second:
            # A 4xx (429 included) says the request was not carried out: no run has the token.
            status = getattr(second, "status_code", None)
            refused = status is not None and 400 <= status < 500
            if isinstance(first, KeyboardInterrupt) and not refused:
                logger.warning("=== Interrupted while submitting; the workspace did not say "
                               "whether a job run was made: %s ===", _message(second))
            if refused and isinstance(first, DatabricksAPIError) \
                    or isinstance(first, KeyboardInterrupt):
                raise first from None
            token = body.get("idempotency_token")
            raise BackendError(
                f"runs/submit failed ({_message(first)}), and asking again with its idempotency "
                f"token {token} failed too ({_message(second)}): a job run may exist for it",
                hint=f"Look for the job run named {body.get('run_name')!r} in the workspace's "
                     "Jobs UI and cancel it.") from None
        if isinstance(first, KeyboardInterrupt):
            raise SubmitInterrupted(run_id) from None
        logger.info("runs/submit failed (%s) but job run %s exists for its idempotency token",
                    _message(first), run_id)
        return run_id


def cancel_run(client, run_id: int) -> None:
    """Ask Databricks to cancel job run ``run_id`` (safe to repeat)."""
    client.post(f"{JOBS_API}/runs/cancel", {"run_id": run_id}, idempotent=True)


def _run_id(answer, path: str) -> int:
    """The ``run_id`` of a ``runs/submit`` answer; an answer without one leaves the outcome
    unknown (an error, so that the idempotency token resolves it)."""
    run_id = answer.get("run_id") if isinstance(answer, dict) else None
    if isinstance(run_id, bool) or not isinstance(run_id, (int, str)) \
            or not str(run_id).isdigit():
        raise DatabricksAPIError(f"the answer has no job run id (run_id={run_id!r})",
                                 status_code=200, method="POST", path=path)
    return int(run_id)


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or type(exc).__name__
