"""What the run service knows of one run: its handle, its latest state, who is watching it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.runs import RunState


@dataclass
class WatchedRun:
    """A run this kernel or process launched or attached, as every view of it sees it.

    ``run`` is the backend's :class:`~mlrun_magic.backends.base.SubmittedRun`; ``state`` is
    the latest state any poll, wait or cancel learned (one state per run, shared by every
    view); ``views`` are callables ``view(watched)`` told after each change; ``feed`` holds
    the output and metrics read while it runs, ``log_tail`` the last lines of the output of
    a run that did not finish and ``failure`` why.
    """

    run: object
    project_dir: Path | None = None
    state: RunState = field(default_factory=lambda: RunState("PENDING"))
    #: The run's own start and end (epoch seconds) as its backend tells them; until it does,
    #: the submission time and the moment its end was learned.
    started_at: float | None = None
    ended_at: float | None = None
    #: When its state was last learned (a view that can no longer update says "as of").
    checked_at: float | None = None
    log_tail: str = ""
    #: Its live output and metrics, read while someone looks (a :class:`LiveFeed`).
    feed: object | None = field(default=None, repr=False)
    #: Why it did not finish, once it ended (a :class:`~mlrun_magic.runs.FailureReport`).
    failure: object | None = None
    #: "3 files changed since run 31db42…: train.py, …" (None: no earlier run to compare).
    code_change: str | None = None
    views: list = field(default_factory=list, repr=False)
    recorded: bool = False
    #: The execution count of the cell that last displayed a view of it (notebook only).
    shown_in: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def elapsed(self) -> float:
        """The run's duration: from its start to its end (or now, while it runs)."""
        start = self.started_at or self.run.info.started_at
        return max(0.0, (self.ended_at or time.time()) - start)

    def learn(self, state: RunState, learned: bool = True) -> None:
        """Take ``state`` as the run's latest, with the times it carries (``learned=False``:
        a failed poll's, which leaves "as of" at the last state really learned)."""
        self.state = state
        if learned or self.checked_at is None:
            self.checked_at = time.time()
        if state.started_at:
            self.started_at = state.started_at
        if state.is_terminal and self.ended_at is None:
            self.ended_at = state.ended_at or self.checked_at

    def matches(self, ref: str) -> bool:
        """``ref`` is its MLflow run id or Databricks job run id."""
        return self.run_id == ref or str(getattr(self.run, "job_run_id", "")) == ref

    def to_entry(self) -> dict:
        """As a history entry (the shape ``%project_run list`` and the panel table show)."""
        run = self.run
        entry = {"run_id": run.run_id, "backend": run.backend, "status": self.state.status,
                 "message": self.state.message, "project": run.info.project,
                 "entry_point": run.info.entry_point, "run_name": run.info.run_name,
                 "parameters": dict(run.info.parameters), "links": run.links.to_dict(),
                 "submitted": run.info.started_at, "started": self.started_at,
                 "ended": self.ended_at}
        job_run_id = getattr(run, "job_run_id", None)
        if job_run_id is not None:
            entry["job_run_id"] = job_run_id
        for key, attr in (("manifest", "manifest_id"), ("sweep", "parent_run_id")):
            if getattr(run, attr, None):
                entry[key] = getattr(run, attr)
        if run.workspace_host:
            entry["host"] = run.workspace_host
        return entry
