"""One submission, one MLflow run: creating it safely, and ending it when its code will
never start.

Creating a run is not idempotent, so :func:`create_run` tags it with a client token and,
after an answer that leaves its fate unknown, looks for that token before creating another:
one submission never leaves two runs. A run that will never start ends FAILED (KILLED when
interrupted) with the reason (:func:`abandon_run`).
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from mlrun_magic.errors import MlrunMagicError, TrackingError

logger = logging.getLogger("mlrun_magic.tracking")

#: Why a run ended before its code started (also set when a Databricks job run fails early).
STATE_MESSAGE_TAG = "mlrun_magic.databricks.stateMessage"
#: A random token set when a run is created, to find it again after a lost answer.
CLIENT_TOKEN_TAG = "mlrun_magic.clientToken"
CREATE_ATTEMPTS = 5
#: Pauses between searches for a run whose ``runs/create`` was interrupted or timed out.
LATE_CREATE_WAITS = (0, 1, 3)


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
