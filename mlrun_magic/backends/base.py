"""What every backend returns: a :class:`SubmittedRun` you can watch, wait for and cancel."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mlrun_magic.errors import RunFailedError
# The run types live in the core; backends and their callers get them from here too.
from mlrun_magic.runs import STATUSES, TERMINAL, Links, RunInfo, RunState  # noqa: F401


class SubmittedRun(ABC):
    """A launched project run, local or on Databricks.

    ``run_id`` is the MLflow run id. ``status()`` asks the backend now; ``wait()`` blocks until
    the run ends (Ctrl-C cancels it); ``cancel()`` stops it and marks the MLflow run KILLED;
    ``logs()`` returns the tail of its output; ``links`` says where to look.
    """

    backend = "base"
    #: Set by the notebook layer (``%load_ext mlrun_magic``) to show a live view of a run
    #: that is the value of a cell; the core itself never imports IPython.
    display_hook = None

    def __init__(self, run_id: str, info: RunInfo, links: Links):
        self.run_id = run_id
        self.info = info
        self.links = links

    @abstractmethod
    def status(self) -> RunState:
        """The current :class:`RunState`."""

    @abstractmethod
    def wait(self, timeout: float | None = None, poll_interval: float | None = None) -> RunState:
        """Block until the run ends (or ``timeout`` seconds pass) and return its state.

        ``poll_interval`` caps the time between two status checks of a remote run."""

    @abstractmethod
    def cancel(self) -> RunState:
        """Stop the run; the MLflow run ends KILLED."""

    @abstractmethod
    def logs(self, tail: int = 100) -> str:
        """The last ``tail`` lines of the run's output."""

    def raise_for_status(self) -> None:
        """Raise :class:`RunFailedError` if the run ended FAILED or KILLED."""
        state = self.status()
        if state.status in ("FAILED", "KILLED"):
            where = self.links.job_run or self.links.mlflow_run or f"MLflow run {self.run_id}"
            raise RunFailedError(f"run {self.run_id} ended {state.status}"
                                 f"{': ' + state.message if state.message else ''}",
                                 hint=f"See {where}, or its output: `%project_run logs "
                                      f"{self.run_id}` (in a terminal: python -m mlrun_magic "
                                      f"logs {self.run_id}).")

    def to_dict(self) -> dict:
        state = self.status()
        return {"run_id": self.run_id, "backend": self.backend, "status": state.status,
                "message": state.message, "links": self.links.to_dict(),
                "project": self.info.project, "entry_point": self.info.entry_point}

    def _ipython_display_(self) -> None:
        hook = SubmittedRun.display_hook
        if hook is not None:
            hook(self)
        else:
            print(repr(self))

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.run_id} {self.info.project}:"
                f"{self.info.entry_point} {self.status().status}>")
