"""The live metrics of an MLflow run, read at a bounded cost per poll.

:class:`MetricsReader` asks a tracking client (:class:`~mlrun_magic.tracking.rest.RestTracking`,
its Databricks subclass, or :class:`~mlrun_magic.tracking.local_store.LocalStoreTracking`)
for the latest value of every metric once per :meth:`MetricsReader.read`, and for the
history of at most ``history_keys`` metrics: the most recently logged of those that moved
since the previous read. Every other metric's history is sampled from its latest values,
one value per read in which it moved. Each :class:`MetricSeries` is what a view draws.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: At most this many metrics are tracked (the most recently logged ones).
MAX_KEYS = 200
# Names of metrics found longer than one page, which are never asked for again; bounded so
# a run that logs endless new names cannot grow the reader without limit.
_MAX_PAGED_NAMES = 5 * MAX_KEYS


@dataclass(frozen=True)
class MetricSeries:
    """One metric of a run: its latest ``value`` at ``step`` (logged at ``timestamp``, epoch
    milliseconds) and ``history``, its most recent values, oldest first. NaN and infinities
    are kept as MLflow stores them."""

    key: str
    value: float
    step: int
    timestamp: int
    history: tuple[float, ...]


def _recency(metric: dict) -> tuple:
    return metric["timestamp"], metric["step"]


class MetricsReader:
    """The metrics of MLflow run ``run_id`` through ``tracking``, one :meth:`read` per poll.

    A read makes one ``latest_metrics`` request and at most ``history_keys``
    ``metric_history`` requests of ``page`` values each; ``requests`` counts every request
    made. At most ``points`` values are kept per metric and at most :data:`MAX_KEYS` metrics.
    A metric whose history is longer than one page is never asked for again: its history
    grows from its latest values instead. A failing request raises the client's
    :class:`~mlrun_magic.errors.TrackingError` and leaves the reader as it was.
    """

    def __init__(self, tracking, run_id: str, *, history_keys: int = 3, points: int = 60,
                 page: int = 1000):
        if history_keys < 0 or points < 1 or page < 1:
            raise ValueError("history_keys must be at least 0, points and page at least 1")
        self.tracking = tracking
        self.run_id = run_id
        self.history_keys = history_keys
        self.points = points
        self.page = page
        self.requests = 0
        self._seen: dict[str, tuple[int, int]] = {}  # key -> (step, timestamp) last read
        self._history: dict[str, deque] = {}
        self._paged: dict[str, None] = {}  # an ordered set: oldest first

    def read(self) -> list[MetricSeries]:
        """The run's metrics now, sorted by key (the :data:`MAX_KEYS` most recent ones)."""
        self.requests += 1
        latest = {m["key"]: m for m in self.tracking.latest_metrics(self.run_id)}
        kept = sorted(latest.values(), key=_recency, reverse=True)[:MAX_KEYS]
        moved = [m for m in kept if self._seen.get(m["key"]) != (m["step"], m["timestamp"])]
        fetched, paged = self._fetch_histories(
            [m for m in moved if m["key"] not in self._paged][:self.history_keys])
        # Every request has succeeded: only now does the reader change.
        history = {m["key"]: self._history.get(m["key"]) for m in kept}
        for metric in moved:
            key = metric["key"]
            if key in fetched:
                history[key] = fetched[key]
            else:
                if history[key] is None:
                    history[key] = deque(maxlen=self.points)
                history[key].append(metric["value"])
        self._history = history
        self._seen = {m["key"]: (m["step"], m["timestamp"]) for m in kept}
        for key in paged:
            self._paged[key] = None
        while len(self._paged) > _MAX_PAGED_NAMES:
            del self._paged[next(iter(self._paged))]
        return [MetricSeries(m["key"], m["value"], m["step"], m["timestamp"],
                             tuple(history[m["key"]]))
                for m in sorted(kept, key=lambda m: m["key"])]

    def _fetch_histories(self, metrics: list[dict]) -> tuple[dict[str, deque], list[str]]:
        """The histories of ``metrics`` (one request each) and the keys among them whose
        history is longer than a page: those keep what they had plus their latest value (a
        first page holds the oldest values, not the recent ones a view draws)."""
        fetched: dict[str, deque] = {}
        paged: list[str] = []
        for metric in metrics:
            key = metric["key"]
            self.requests += 1
            points, more = self.tracking.metric_history(self.run_id, key, self.page)
            if more:
                paged.append(key)
                kept = deque(self._history.get(key) or (), maxlen=self.points)
                kept.append(metric["value"])
                fetched[key] = kept
            else:
                values = [p["value"] for p in points] or [metric["value"]]
                fetched[key] = deque(values, maxlen=self.points)
        return fetched, paged
