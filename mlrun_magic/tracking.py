"""MLflow tracking for project runs: experiments, the run, its tags and params, its links.

Both backends create the MLflow run here *before* the code starts, with the tags MLflow's
``mlflow run`` sets (``mlflow.source.*``, ``mlflow.project.*``, git commit, repo URL, branch)
plus ``mlflow.source.git.dirty``, and log the parameters unquoted. The child process joins
the run through ``MLFLOW_RUN_ID``.

Creating a run is not idempotent, so :func:`create_run` tags it with a client token and,
after an answer that leaves its fate unknown, looks for that token before creating another:
one submission never leaves two runs. A run that will never start ends FAILED (KILLED when
interrupted) with the reason (:func:`abandon_run`).

``http(s)://`` tracking URIs are spoken to over MLflow's REST API with ``requests``; local
stores (a folder, ``sqlite:///...``) go through the ``mlflow`` library when it is installed.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import posixpath
import re
import uuid
from dataclasses import dataclass, field

from mlrun_magic.errors import MlrunMagicError, MLprojectError, TrackingError
from mlrun_magic.runs import TERMINAL as TERMINAL_STATUSES
from mlrun_magic.tracking_clients import (MAX_PARAMS_PER_BATCH, Experiment,  # noqa: F401
                                          LocalStoreTracking, RestTracking, retrying_session)

logger = logging.getLogger("mlrun_magic.tracking")

#: Why a run ended before its code started (also set when a Databricks job run fails early).
STATE_MESSAGE_TAG = "mlrun_magic.databricks.stateMessage"
#: A random token set when a run is created, to find it again after a lost answer.
CLIENT_TOKEN_TAG = "mlrun_magic.clientToken"
CREATE_ATTEMPTS = 5
#: Pauses between searches for a run whose ``runs/create`` was interrupted or timed out.
LATE_CREATE_WAITS = (0, 1, 3)
#: MLflow's rules for parameter names and values (``mlflow.utils.validation``).
_PARAM_NAME = re.compile(r"^[/\w.\- :]*$")
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000


@dataclass
class TrackedRun:
    """The MLflow run created for a project run, and where to see it.

    ``tracking_uri`` never holds credentials; ``tracking_env`` is what a child process needs
    besides it to reach the server (``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` taken from the
    URI), to be passed in its environment only.
    """

    run_id: str
    experiment_id: str
    tracking_uri: str
    run_url: str | None
    experiment_url: str | None
    tracking_env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else MLflow's own default when the library is installed."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "no MLflow tracking URI is set", hint="Set MLFLOW_TRACKING_URI (e.g. "
            "http://127.0.0.1:5000 or databricks), pass --tracking-uri, or `pip install "
            "mlflow-skinny` to use a local store.") from None
    return mlflow.get_tracking_uri()


def open_tracking(uri: str | None = None):
    """A tracking client for ``uri`` (default: :func:`default_tracking_uri`)."""
    uri = uri or default_tracking_uri()
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith("databricks") else ""
    if scheme in ("http", "https"):
        return RestTracking(uri)
    if scheme.startswith("databricks"):
        from mlrun_magic.databricks.tracking import databricks_tracking

        return databricks_tracking(uri)
    return LocalStoreTracking(uri)


@contextlib.contextmanager
def deferred_interrupts():
    """Run a clean-up with Ctrl-C deferred: the first press only warns, a second one stops it.

    Only in the main thread (elsewhere there is no SIGINT to defer)."""
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT) \
        if threading.current_thread() is threading.main_thread() else None
    if previous is None:
        yield
        return
    pressed = []

    def on_interrupt(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)
        logger.warning("=== Still cleaning up so that nothing is left running; press Ctrl-C "
                       "again to stop waiting ===")

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def resolve_experiment(tracking, name: str | None = None, experiment_id: str | None = None,
                       project_name: str | None = None) -> Experiment:
    """The experiment to log to: by id, by name (created when missing), else the default one
    (on Databricks, which has no default experiment: ``/Users/<you>/<project name>``)."""
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment_id = experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID")
    if not name and not experiment_id and hasattr(tracking, "default_experiment_name"):
        name = tracking.default_experiment_name(project_name or "mlflow-project")
    if name and experiment_id:
        raise TrackingError("Specify only one of 'experiment_name' or 'experiment_id'.")
    if experiment_id:
        return tracking.get_experiment(str(experiment_id))
    if not name:
        return Experiment("0", "Default")
    existing = tracking.get_experiment_by_name(name)
    if existing is not None:
        return existing
    try:
        return tracking.create_experiment(name)
    except TrackingError:
        # Created meanwhile, or created by this very call before its answer was lost.
        existing = tracking.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing


def project_tags(plan, backend: str) -> dict[str, str]:
    """The tags ``mlflow run`` sets when it creates a project run, plus the dirty flag."""
    source = plan.source
    tags = {
        "mlflow.user": getpass.getuser(),
        "mlflow.source.name": source.source_name,
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": plan.entry_point.name if plan.entry_point else "",
        "mlflow.project.backend": backend,
    }
    git = source.git
    if git is not None:
        if git.commit:
            tags["mlflow.source.git.commit"] = git.commit
        if git.repo_url:
            tags["mlflow.source.git.repoURL"] = git.repo_url
        if git.branch:
            tags["mlflow.source.git.branch"] = git.branch
        if git.dirty is not None:
            tags["mlflow.source.git.dirty"] = str(git.dirty).lower()
    if plan.request.run_name:
        tags["mlflow.runName"] = plan.request.run_name
    return tags


def check_params(params: dict[str, str]) -> None:
    """Refuse, before any run exists, the parameters MLflow would refuse to log."""
    for name, value in params.items():
        problem = None
        if len(name) > MAX_KEY_LENGTH:
            problem = f"is {len(name)} characters long; MLflow takes at most {MAX_KEY_LENGTH}"
        elif not _PARAM_NAME.match(name):
            problem = ("has a character MLflow does not allow in a name (only letters, digits, "
                       "_ - . : / and spaces)")
        elif _not_a_unique_path(name):
            problem = "would be read by MLflow as a different path; remove the extra / or dots"
        elif len(value) > MAX_PARAM_VALUE_LENGTH:
            problem = (f"has a value of {len(value)} characters; MLflow logs at most "
                       f"{MAX_PARAM_VALUE_LENGTH}")
        if problem:
            raise MLprojectError(f"parameter {name!r} {problem}", key=name,
                                 hint="Rename the parameter (or shorten its value); nothing "
                                      "was started.")


def _not_a_unique_path(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith(("..", "/"))


def create_run(tracking, experiment_id: str, tags: dict[str, str],
               run_name: str | None) -> str:
    """Create one MLflow run, safely retried: after a failure that may have created it, the
    run is looked up by its client token before another is created."""
    import time

    token = uuid.uuid4().hex
    tags = {**tags, CLIENT_TOKEN_TAG: token}
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return tracking.create_run(experiment_id, tags, run_name)
        except (TrackingError, KeyboardInterrupt) as exc:
            found = _find_created(tracking, experiment_id, token, exc)
            late = isinstance(exc, KeyboardInterrupt) or getattr(exc, "timed_out", False)
            if late and not found:
                # The request may still land: never make a second run, end it when it shows.
                status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
                sweep_late_run(tracking, experiment_id, token, status)
                if isinstance(exc, TrackingError):
                    exc.message += (" (no second MLflow run is created: the first may still be "
                                    "under way, and is ended FAILED if it appears)")
                raise
            if isinstance(exc, KeyboardInterrupt):
                for run_id in found or []:
                    abandon_run(tracking, run_id, "KILLED", "interrupted while the MLflow run "
                                "was being created", STATE_MESSAGE_TAG)
                raise
            if found:
                for extra in found[1:]:
                    abandon_run(tracking, extra, "FAILED", f"duplicate of run {found[0]}",
                                STATE_MESSAGE_TAG)
                return found[0]
            status = getattr(exc, "status_code", None)
            transient = (getattr(exc, "no_answer", False) or getattr(exc, "never_sent", False)
                         or status == 429 or (status or 0) >= 500)
            if found is None or not transient or attempt == CREATE_ATTEMPTS:
                raise  # (found is None: the run may exist, so no second one is made)
            delay = getattr(exc, "retry_after", None)
            retry_delay = getattr(tracking, "retry_delay", None)
            if delay is None:
                delay = retry_delay(attempt) if retry_delay else 0.5 * attempt
            logger.info("creating the MLflow run failed (%s); retrying in %.1f s", exc, delay)
            getattr(tracking, "sleep", time.sleep)(delay)
    raise AssertionError("unreachable")


def sweep_late_run(tracking, experiment_id: str, token: str, status: str,
                   seconds: float | None = None, every: float = 2.0):
    """Watch, in a daemon thread, for a run a lost ``runs/create`` makes late, and end it.

    The server may still be processing the request when the client has given up (Ctrl-C, a
    timeout). For ``seconds`` (default: the client's request timeout plus 30 s) the run's
    client token is searched every ``every`` seconds; a run that appears is ended ``status``
    with the reason. What is left: a request the server holds for longer than that, or a
    process that exits first (the CLI after Ctrl-C) - then the run stays until cancelled.
    """
    import threading
    import time

    window = seconds if seconds is not None else getattr(tracking, "timeout", 30.0) + 30.0

    def sweep():
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            time.sleep(every)
            try:
                found = tracking.find_runs(experiment_id, CLIENT_TOKEN_TAG, token)
            except TrackingError:
                continue
            for run_id in found:
                abandon_run(tracking, run_id, status, "its creation was abandoned by the "
                            "client (interrupted or timed out) before the server answered",
                            STATE_MESSAGE_TAG)
            if found:
                return

    thread = threading.Thread(target=sweep, name="mlrun-magic-late-run", daemon=True)
    thread.start()
    return thread


def _find_created(tracking, experiment_id: str, token: str,
                  exc: BaseException) -> list[str] | None:
    """The runs a failed ``runs/create`` may have made anyway (none if it never left;
    ``None`` if the search failed too).

    After Ctrl-C or a timeout the request may still be under way on the server, so it is
    looked for a few times over :data:`LATE_CREATE_WAITS` seconds."""
    import time

    if getattr(exc, "never_sent", False):
        return []
    late = isinstance(exc, KeyboardInterrupt) or getattr(exc, "timed_out", False)
    try:
        with deferred_interrupts():
            for wait in LATE_CREATE_WAITS if late else (0,):
                time.sleep(wait)
                found = tracking.find_runs(experiment_id, CLIENT_TOKEN_TAG, token)
                if found:
                    return found
            return []
    except TrackingError as lookup:
        if isinstance(exc, TrackingError):
            exc.message += (f" (and looking for a run it may have created failed too: "
                            f"{lookup.message}; runs tagged {CLIENT_TOKEN_TAG}={token} are it)")
        return None


def reason_of(exc: BaseException) -> str:
    """The one-line reason a submission did not start, for the state-message tag."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C) before the run started"
    if isinstance(exc, MlrunMagicError):
        return exc.message
    from mlrun_magic.redact import redact_text

    return redact_text(f"{type(exc).__name__}: {exc}")


def abandon_run(tracking, run_id: str, status: str, reason: str,
                reason_tag: str | None = STATE_MESSAGE_TAG) -> str | None:
    """End a run whose code will never start: ``status`` (FAILED or KILLED) and the reason.

    Returns ``None``, or a sentence saying what could not be done (nothing raises)."""
    problem = None
    with deferred_interrupts():
        if reason_tag:
            try:
                tracking.set_tag(run_id, reason_tag, reason[:5000])
            except TrackingError as exc:
                problem = exc.message
        try:
            tracking.update_run(run_id, status)
        except TrackingError as exc:
            return f"MLflow run {run_id} could not be marked {status}: {exc.message}"
    if problem:
        logger.warning("could not tag MLflow run %s with its reason: %s", run_id, problem)
    return None


def start_project_run(tracking, plan, backend: str, extra_tags: dict[str, str] | None = None,
                      *, reason_tag: str | None = None) -> TrackedRun:
    """Create the MLflow run for ``plan`` with MLflow's tags and the parameters, unquoted.

    If the parameters cannot be logged (or Ctrl-C comes), the run is ended FAILED (KILLED)
    with the reason in ``reason_tag`` before the error goes on: no run is left RUNNING."""
    req = plan.request
    params = dict(plan.parameters.raw) if plan.parameters else {}
    check_params(params)
    experiment = resolve_experiment(tracking, req.experiment_name, req.experiment_id,
                                    plan.project.name or plan.project_dir.name)
    tags = project_tags(plan, backend)
    tags.update(extra_tags or {})
    run_id = create_run(tracking, experiment.experiment_id, tags, req.run_name)
    try:
        if params:
            tracking.log_batch(run_id, params=params)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        problem = abandon_run(tracking, run_id, status, reason_of(exc), reason_tag)
        if problem:
            logger.warning("%s", problem)
        raise
    return TrackedRun(run_id=run_id, experiment_id=experiment.experiment_id,
                      tracking_uri=tracking.uri,
                      run_url=tracking.run_url(experiment.experiment_id, run_id),
                      experiment_url=tracking.experiment_url(experiment.experiment_id),
                      tracking_env=dict(getattr(tracking, "child_env", {}) or {}))


def finish_run(tracking, run_id: str, status: str) -> None:
    """Mark the run ``status`` unless the code already ended it."""
    try:
        current = tracking.get_run(run_id)["status"]
    except TrackingError:
        current = None
    if current not in TERMINAL_STATUSES:
        tracking.update_run(run_id, status)
