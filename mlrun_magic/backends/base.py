"""What every backend returns: a :class:`SubmittedRun` you can watch, wait for and cancel."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from mlrun_magic.errors import RunFailedError
# The run types live in the core; backends and their callers get them from here too.
from mlrun_magic.runs import (STATUSES, TERMINAL, FailureReport, Links, RunInfo,  # noqa: F401
                              RunState)

logger = logging.getLogger("mlrun_magic.backends")
#: Seconds one read of a run's live metrics may take, retries included: it is made in the
#: poller's thread, which a tracking server that fails or hangs must not hold.
METRICS_DEADLINE = 5.0


class SubmittedRun(ABC):
    """A launched project run, local or on Databricks.

    ``run_id`` is the MLflow run id. ``status()`` asks the backend now (and keeps the answer
    as ``last_state``); ``wait()`` blocks until the run ends (Ctrl-C cancels it);
    ``cancel()`` stops it and marks the MLflow run KILLED; ``logs()`` returns the tail of its
    output; ``links`` says where to look. Waiting goes through ``poller`` (the process's one
    :class:`~mlrun_magic.poller.Poller` unless the run service set its own).
    """

    backend = "base"
    #: Whether asking for the state is a request to a server (else it is free).
    remote = True
    #: The Databricks workspace the run belongs to (None: it runs on this machine).
    workspace_host: str | None = None
    #: Set by the notebook layer (``%load_ext mlrun_magic``) to show a live view of a run
    #: that is the value of a cell; the core itself never imports IPython.
    display_hook = None

    def __init__(self, run_id: str, info: RunInfo, links: Links):
        self.run_id = run_id
        self.info = info
        self.links = links
        #: The latest state learned, by any poll, wait or cancel (None: not asked yet).
        self.last_state: RunState | None = None
        self.poller = None
        #: Told ``(run, state)`` after every status learned, by whoever asked (the run
        #: service sets it: one state per run, every view of it updated at once).
        self.state_hook = None

    def status(self) -> RunState:
        """The current :class:`RunState`, asked of the backend now."""
        return self.learned(self.fetch_state())

    def learned(self, state: RunState) -> RunState:
        """Keep ``state`` as the run's latest and tell the hook; returns ``state``."""
        self.last_state = state
        if self.state_hook is not None:
            self.state_hook(self, state)
        return state

    @abstractmethod
    def fetch_state(self) -> RunState:
        """Ask the backend for the run's state (one request at most)."""

    def watcher(self):
        """The poller that watches this run."""
        from mlrun_magic.poller import shared_poller

        return self.poller or shared_poller()

    def wait(self, timeout: float | None = None, poll_interval: float | None = None) -> RunState:
        """Block until the run ends (or ``timeout`` seconds pass) and return its state.

        Polls fast at first, then every 30 s (``poll_interval`` caps the time between two
        status checks). Ctrl-C cancels the run (a second Ctrl-C stops waiting for that)."""
        try:
            return self.watcher().wait(self, timeout, poll_interval)
        except KeyboardInterrupt:
            from mlrun_magic.tracking import deferred_interrupts

            logger.warning("=== Run (ID '%s') interrupted, cancelling run ===", self.run_id)
            with deferred_interrupts():
                self.cancel()
            raise

    @abstractmethod
    def cancel(self) -> RunState:
        """Stop the run; the MLflow run ends KILLED."""

    @abstractmethod
    def logs(self, tail: int = 100) -> str:
        """The last ``tail`` lines of the run's output."""

    def log_reader(self):
        """An object whose ``read_new()`` returns the output printed since its last call, as a
        :class:`~mlrun_magic.databricks.logtail.LogUpdate` (``text``, ``ended``, ``end``)."""
        from mlrun_magic.errors import BackendError

        raise BackendError(f"the {self.backend} backend cannot follow a run's output")

    def metrics_reader(self):
        """A reader of the MLflow run's metrics as they are logged (``read()`` gives each
        metric's latest value, step and recent history), or None where there is none."""
        return None

    def failure_report(self, state: RunState, *, log_seen: bool) -> FailureReport | None:
        """Why the run ended ``state`` (FAILED or KILLED), for its view; None for a run that
        finished or still runs. ``log_seen``: whether the view read any of the run's live
        log (if not, a backend may tell that the run never started). Never raises: what
        cannot be learned is left empty."""
        if state.status == "FINISHED" or not state.is_terminal:
            return None
        from mlrun_magic.redact import redact_text

        return FailureReport(message=redact_text(state.message or ""))

    def raise_for_status(self, state: RunState | None = None) -> None:
        """Raise :class:`RunFailedError` if the run ended FAILED or KILLED (``state``: the
        state to judge, default the latest known, else asked now)."""
        state = state or self.last_state or self.status()
        if state.status in ("FAILED", "KILLED"):
            where = self.links.job_run or self.links.mlflow_run or f"MLflow run {self.run_id}"
            raise RunFailedError(f"run {self.run_id} ended {state.status}"
                                 f"{': ' + state.message if state.message else ''}",
                                 hint=f"See {where}, or its output: `%project_run logs "
                                      f"{self.run_id}` (in a terminal: python -m mlrun_magic "
                                      f"logs {self.run_id}).")

    def to_dict(self, state: RunState | None = None) -> dict:
        """The run as JSON (``state``: default the latest known, else asked now)."""
        state = state or self.last_state or self.status()
        return {"run_id": self.run_id, "backend": self.backend, "status": state.status,
                "message": state.message, "links": self.links.to_dict(),
                "project": self.info.project, "entry_point": self.info.entry_point}

    def _ipython_display_(self) -> None:
        hook = SubmittedRun.display_hook
        if hook is not None:
            hook(self)
        else:
            print(repr(self))

    def __repr__(self) -> str:  # never a request: the latest known state only
        status = self.last_state.status if self.last_state else "SUBMITTED"
        return (f"<{type(self).__name__} {self.run_id} {self.info.project}:"
                f"{self.info.entry_point} {status}>")
