"""A sweep: one launch, many runs, at most ``max_parallel`` of them active at once.

:meth:`RunService.sweep` plans every point first (nothing runs if one is bad), creates the
parent MLflow run, then a submitter thread launches the points in order through the
service's ordinary :meth:`~mlrun_magic.service.RunService.launch` (so each is one job run,
exactly once, recorded in the history, watched by the one poller), keeping at most
``max_parallel`` active: the rest wait their turn in this process. When every point has
ended, the parent ends FINISHED, FAILED (saying how many failed) or KILLED (cancelled).
The project is packaged once: the later points find the archive unchanged and uploaded.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from mlrun_magic.errors import MlrunMagicError, RunFailedError

logger = logging.getLogger("mlrun_magic.service")

QUEUED = "QUEUED"
#: The statuses a point counts as in :meth:`Sweep.counts`.
COUNTED = ("queued", "running", "finished", "failed", "killed")


@dataclass
class SweepPoint:
    """One point of a sweep: its plan, and its run once launched (or why it could not be)."""

    index: int
    label: str
    plan: object
    watched: object | None = None
    error: str = ""

    @property
    def status(self) -> str:
        if self.error == "not started: the sweep was cancelled":
            return "KILLED"
        if self.error:
            return "FAILED"
        return self.watched.state.status if self.watched is not None else QUEUED

    @property
    def ended(self) -> bool:
        return bool(self.error) or (self.watched is not None and self.watched.state.is_terminal)


@dataclass
class Sweep:
    """A running sweep. ``runs`` are its launched runs; ``wait()`` blocks until every point
    ended (Ctrl-C cancels the sweep); ``cancel()`` stops the queued points and cancels the
    active ones; ``best(metric, goal)`` and ``table()`` say how the points compare."""

    service: object
    spec: object
    points: list
    parent: object
    max_parallel: int
    views: list = field(default_factory=list, repr=False)
    cancelled: bool = False
    #: What its table shows and ranks by (the magic's --metric/--goal).
    metric: str | None = None
    goal: str = "min"
    status: str = "RUNNING"
    outcome: str = ""
    #: The project whose ``.mlrun_magic/sweeps.jsonl`` records the sweep (None: not recorded).
    project_dir: object = None
    #: Set when this process took the sweep over from one that stopped: how far it had got.
    resumed: str = ""
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.counts().items() if n)
        return f"<Sweep {self.run_id}: {len(self.points)} runs, {self.status} ({counts})>"

    @property
    def run_id(self) -> str:
        """The parent MLflow run's id: how ``status``/``cancel``/``compare`` name the sweep."""
        return self.parent.run_id

    @property
    def ended(self) -> bool:
        """Every point has ended (the parent's status is final)."""
        return self._done.is_set()

    @property
    def runs(self) -> list:
        return [p.watched.run for p in self.points if p.watched is not None]

    def counts(self) -> dict[str, int]:
        """How many points are queued, running, finished, failed, killed."""
        counts = dict.fromkeys(COUNTED, 0)
        for point in self.points:
            status = point.status
            key = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed",
                   QUEUED: "queued"}.get(status, "running")
            counts[key] += 1
        return counts

    # -- waiting and cancelling ------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> str:
        """Block until every point has ended (or ``timeout`` s); the parent's status.
        Ctrl-C cancels the whole sweep, then raises ``KeyboardInterrupt``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._done.wait(0.25):
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            from mlrun_magic.tracking import deferred_interrupts

            with deferred_interrupts():
                self.cancel()
            raise
        return self.status

    def wait_for_success(self, timeout: float | None = None) -> str:
        status = self.wait(timeout)
        if status in ("FAILED", "KILLED"):
            raise RunFailedError(f"sweep {self.run_id} ended {status}: {self.outcome}",
                                 hint="Its table shows which points failed and their links.")
        return status

    def cancel(self) -> str:
        """Stop launching, cancel every active point, wait for the sweep to end KILLED."""
        with self._changed:
            self.cancelled = True
            active = [p.watched for p in self.points
                      if p.watched is not None and not p.watched.state.is_terminal]
            self._changed.notify_all()
        for watched in active:
            try:
                self.service.cancel(watched)
            except MlrunMagicError as exc:
                logger.warning("could not cancel run %s: %s", watched.run_id, exc)
        self._done.wait(60)
        return self.status

    # -- comparing -------------------------------------------------------------------------
    def best(self, metric: str, goal: str = "min"):
        """The finished point's run with the lowest (``goal="max"``: highest) final
        ``metric``; None when no finished run logged it."""
        scored = [(value, point) for point in self.points
                  if point.status == "FINISHED"
                  and (value := _final_metric(point.watched, metric)) is not None]
        if not scored:
            return None
        pick = min if goal == "min" else max
        return pick(scored, key=lambda item: item[0])[1].watched.run

    def table(self, metric: str | None = None) -> list[dict]:
        """A row per point: number, the varying parameters, status, elapsed seconds, the
        metric's latest value (if asked), links."""
        rows = []
        for point in self.points:
            watched = point.watched
            params = point.plan.request.parameters
            row = {"point": point.index + 1, "status": point.status,
                   "parameters": {k: params[k] for k in self.spec.varying if k in params},
                   "run_id": watched.run_id if watched else None,
                   "elapsed": round(watched.elapsed, 1) if watched else None,
                   "links": watched.run.links.to_dict() if watched else {},
                   "error": point.error}
            if metric:
                row[metric] = _final_metric(watched, metric) if watched else None
            rows.append(row)
        return rows

    def describe(self) -> str:
        """The table as plain text (the terminal's and the notebook's text/plain)."""
        rows = self.table(self.metric)
        return describe_rows(self, rows, best_point(rows, self.metric, self.goal), self.metric)

    # -- inside ----------------------------------------------------------------------------
    def _tell(self) -> None:
        for view in list(self.views):
            try:
                view(self)
            except Exception:  # noqa: BLE001 (a broken view is dropped, the sweep goes on)
                logger.debug("sweep view failed", exc_info=True)
                self.views.remove(view)


def best_point(rows: list[dict], metric: str | None, goal: str = "min") -> int | None:
    """The number of the finished row with the lowest (``goal="max"``: highest) metric."""
    import math

    if not metric:
        return None
    scored = [(row[metric], row["point"]) for row in rows
              if row["status"] == "FINISHED" and isinstance(row.get(metric), (int, float))
              and not math.isnan(row[metric])]
    if not scored:
        return None
    return (min(scored) if goal == "min" else max(scored))[1]


def describe_rows(sweep, rows: list[dict], best: int | None, metric: str | None) -> str:
    """``Sweep <id> - STATUS - counts``, the parent's link, then a line per point."""
    from mlrun_magic.redact import redact_text, redact_url

    counts = ", ".join(f"{n} {name}" for name, n in sweep.counts().items() if n)
    lines = [f"Sweep {sweep.run_id} - {sweep.status} - {counts}"
             + (f"; best: point {best}" if best else "")]
    if sweep.parent.run_url:
        lines.append(f"  Parent MLflow run: {redact_url(sweep.parent.run_url)}")
    varying = list(sweep.spec.varying)
    head = ["#", *varying, "status", "elapsed"] + ([metric] if metric else [])
    table = [head]
    for row in rows:
        cells = [str(row["point"])] + [redact_text(str(row["parameters"].get(k, "")))
                                       for k in varying]
        cells += [row["status"], f"{row['elapsed']:.0f}s" if row["elapsed"] else "-"]
        if metric:
            value = row.get(metric)
            cells.append("-" if value is None else f"{value:.4g}")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for row, cells in zip([None] + rows, table):
        mark = " *" if row is not None and row["point"] == best else ""
        error = f"  ({redact_text(row['error'])})" if row is not None and row["error"] else ""
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
                     + mark + error)
    return "\n".join(lines)


def _final_metric(watched, metric: str):
    """The metric's latest value, as the run's live feed last read it."""
    feed = getattr(watched, "feed", None) if watched is not None else None
    for series in (feed.metrics if feed is not None else ()):
        if series.key == metric:
            return series.value
    return None
