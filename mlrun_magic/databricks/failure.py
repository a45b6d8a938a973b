"""Why a Databricks job run failed or was cancelled, from what the Jobs and Clusters APIs tell.

:func:`failure_report` reads the job run (``runs/get``, already fetched), asks ``runs/get-output``
of its task once (Databricks refuses it on the parent run) and, when the run ended before its
code ran, ``clusters/get`` of the task's cluster once, for the cluster's
``termination_reason``. Every text is redacted and bounded; a request that fails leaves its
part empty (a view must render whatever the workspace answers).
"""

from __future__ import annotations

import re

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.redact import redact_text, scrub
from mlrun_magic.runs import FailureReport, RunState

#: ``error`` is one line of at most this many characters.
ERROR_CHARS = 1000
#: ``error_trace`` keeps the head of the trace: this many lines, this many bytes at most.
TRACE_LINES = 40
TRACE_BYTES = 8 * 1024
#: ``output_tail``: the last lines of get-output's ``logs``.
TAIL_LINES = 30
TAIL_BYTES = 16 * 1024
#: The longest state message, never-started or cancelled text.
TEXT_CHARS = 2000
#: Job termination codes that say the run's cluster is what failed.
CLUSTER_CODES = ("CLUSTER_ERROR", "CLOUD_FAILURE", "INVALID_CLUSTER_REQUEST",
                 "CLUSTER_REQUEST_LIMIT_EXCEEDED", "DRIVER_ERROR")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def failure_report(client, run: dict, state: RunState, *, log_seen: bool) -> FailureReport:
    """The :class:`FailureReport` of job run ``run`` (its ``runs/get`` answer) that ended
    ``state``; ``client`` asks the workspace (a :class:`DatabricksClient`)."""
    from mlrun_magic.databricks.jobs import JOBS_API

    run = run if isinstance(run, dict) else {}
    task = _task(run)
    output = {}
    task_id = task.get("run_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        output = _ask(client, f"{JOBS_API}/runs/get-output", run_id=task_id)
    message = _bounded(clean(state.message), TEXT_CHARS)
    error = one_line(output.get("error"))
    return FailureReport(
        message=message, error="" if error == message else error,
        error_trace=trace_head(output.get("error_trace")),
        never_started="" if log_seen or state.status != "FAILED"
        else never_started(client, run, task),
        cancelled_by=cancelled_by(run, task) if state.status == "KILLED" else "",
        output_tail=tail(output.get("logs")))


def _ask(client, path: str, **params) -> dict:
    try:
        answer = client.get(path, **params)
    except (MlrunMagicError, OSError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _task(run: dict) -> dict:
    """The project's task of the job run (the only one we submit), or nothing."""
    from mlrun_magic.databricks.jobs import TASK_KEY

    tasks = [t for t in run.get("tasks") or [] if isinstance(t, dict)] \
        if isinstance(run.get("tasks"), list) else []
    return next((t for t in tasks if t.get("task_key") == TASK_KEY), tasks[0] if tasks else {})


def never_started(client, run: dict, task: dict) -> str:
    """"the cluster never started: <code> (<type>): <parameters>" when the task never ran
    and its cluster was terminated for a reason that is not a normal end; else ""."""
    if _number(task.get("execution_duration")) or _number(run.get("execution_duration")):
        return ""  # the code ran
    details = _details(task) or _details(run)
    cluster_id = _mapping(task.get("cluster_instance")).get("cluster_id") or \
        _mapping(run.get("cluster_instance")).get("cluster_id")
    if isinstance(cluster_id, str) and cluster_id:
        cluster = _ask(client, "/api/2.1/clusters/get", cluster_id=cluster_id)
        reason = _mapping(cluster.get("termination_reason"))
        if reason.get("code") and reason.get("type") != "SUCCESS":
            why = _parameters(reason.get("parameters")) or _text(cluster.get("state_message"))
            return _bounded(clean(f"the cluster never started: {reason['code']} "
                                  f"({reason.get('type') or 'UNKNOWN'})"
                                  + (f": {why}" if why else "")), TEXT_CHARS)
        if cluster:
            return ""  # the cluster says it started (or ended as clusters normally do)
    code = _text(details.get("code"))
    if code not in CLUSTER_CODES:
        return ""
    kind, why = _text(details.get("type")) or "UNKNOWN", _text(details.get("message"))
    return _bounded(clean(f"the cluster never started: {code} ({kind})"
                          + (f": {why}" if why else "")), TEXT_CHARS)


def cancelled_by(run: dict, task: dict) -> str:
    """"cancelled by <user>" when the run's termination names one, else "cancelled: <why>"
    from its termination code and message ("" when it tells nothing)."""
    details = _details(run) or _details(task)
    message = _text(details.get("message")) or \
        _text(_mapping(run.get("state")).get("state_message"))
    named = _EMAIL.search(message)
    if named:
        return _bounded(clean(f"cancelled by {named.group(0)}"), TEXT_CHARS)
    code = _text(details.get("code"))
    who = {"USER_CANCELED": "a user cancelled the run",
           "CANCELED": "Databricks cancelled the run (e.g. its maximum duration passed)"}
    why = who.get(code, "")
    if code:
        why = f"{why} ({code})" if why else code
    if message:
        why = f"{why}: {message}" if why else message
    return _bounded(clean(f"cancelled: {why}"), TEXT_CHARS) if why else ""


# -- bounded, redacted text ------------------------------------------------------------------

def clean(text) -> str:
    """``text`` without credentials (URL userinfo, tokens), terminal colours and control
    characters."""
    if not isinstance(text, str):
        return ""
    text = _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))
    return scrub(redact_text(text))


def one_line(text) -> str:
    """``text`` cleaned, on one line, at most :data:`ERROR_CHARS` characters."""
    return _bounded(" ".join(clean(text).split()), ERROR_CHARS)


def trace_head(text) -> str:
    """The first :data:`TRACE_LINES` lines (at most :data:`TRACE_BYTES`) of a stack trace,
    cleaned, with "(... N more lines)" when some are left out."""
    lines = clean(text).rstrip().splitlines()
    kept, size = [], 0
    for line in lines[:TRACE_LINES]:
        size += len(line.encode()) + 1
        if size > TRACE_BYTES:
            if not kept:  # one huge line: its start
                kept.append(_bounded(line, TRACE_BYTES // 4))
            break
        kept.append(line)
    if len(kept) < len(lines):
        kept.append(f"(... {len(lines) - len(kept)} more lines)")
    return "\n".join(kept)


def tail(text) -> str:
    """The last :data:`TAIL_LINES` lines (at most :data:`TAIL_BYTES`) of an output, cleaned."""
    lines = clean(text).rstrip().splitlines()[-TAIL_LINES:]
    while len(lines) > 1 and len("\n".join(lines).encode()) > TAIL_BYTES:
        lines.pop(0)
    text = "\n".join(lines)
    # One huge line: its end (a character takes at most 4 bytes).
    return text if len(text.encode()) <= TAIL_BYTES else "…" + text[-(TAIL_BYTES // 4):]


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _parameters(parameters) -> str:
    """A termination reason's parameters as "key: value, key: value"."""
    return ", ".join(f"{k}: {v}" for k, v in _mapping(parameters).items()
                     if isinstance(v, (str, int, float)) and str(v))


def _details(run: dict) -> dict:
    return _mapping(_mapping(run.get("status")).get("termination_details"))


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
