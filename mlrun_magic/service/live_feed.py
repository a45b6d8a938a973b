"""A watched run's output and metrics as they are written, read on the poller's schedule.

A :class:`LiveFeed` exists for a run while someone looks at it (a view, ``logs --follow``).
The service's one poller drives it: after each status poll of a RUNNING run it reads what is
new (one listing and one read per new chunk on Databricks, a file read locally) and, every
:data:`METRICS_SECONDS`, the MLflow run's metrics (one request plus a bounded few for
history). It sets the run's next poll from what came: :data:`LIVE_PACE` says how soon after
0, 1, 2... polls without new output, so a printing run is read every 1.5 s and a quiet one
backs off to the service's longest interval. When the run ends, :meth:`LiveFeed.finish`
reads the rest of the log (to its end marker) and the final metrics, once.

What it reads is kept bounded (:class:`~mlrun_magic.service.text_tail.TextTail`); followers
(``logs --follow``) take the text in order from their own queue, in their own thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.service.text_tail import TextTail

logger = logging.getLogger("mlrun_magic.service")

#: Longest pause to the next poll of a running run after 0, 1, 2, ... polls without new
#: output (the poller's own schedule, quicker at first, still applies below it).
LIVE_PACE = (1.5, 1.5, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
#: Longest pause between two polls of a run someone looks at before it runs (cluster start).
PENDING_PACE = 10.0
#: Longest pause once the log's end marker was read while the run still shows RUNNING.
ENDING_PACE = 1.0
#: Least time between two reads of the MLflow run's metrics while it runs.
METRICS_SECONDS = 5.0
#: After a failed metrics read the next waits twice as long as the last, up to this.
METRICS_RETRY_SECONDS = 60.0
#: States in which the driver may be writing output.
LIVE_STATUSES = ("RUNNING", "TERMINATING")
#: Failed reads in a row after which the live log is given up (the state is still followed).
READ_FAILURES = 5
#: Reads after the end at most (each is bounded: 128 chunks, 4 MB of a local file).
DRAIN_READS = 1000


class LiveFeed:
    """The live log and metrics of one run (``run``: a backend's SubmittedRun)."""

    def __init__(self, run, *, output: bool = True):
        self.run = run
        #: Whether the output is read (a sweep's table reads a point's metrics only).
        self.output = output
        self.tail = TextTail()
        self.metrics: list = []
        #: Whether any output was ever read (a cluster that never started wrote none).
        self.log_seen = False
        #: The log's end marker was read, or the log cannot be read at all.
        self.log_ended = False
        #: The end marker was read: the driver's process has ended.
        self.process_ended = False
        self.quiet = 0
        #: Reads of the log that failed in a row.
        self.failures = 0
        #: Set once the run has ended and its last output and metrics were read.
        self.done = threading.Event()
        self._followers: list[queue.SimpleQueue] = []
        self._reader = None
        self._metrics_reader = None
        self._metrics_at = 0.0
        self._metrics_wait = METRICS_SECONDS
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------
    def poll(self, status: str) -> bool:
        """Read what is new of a run in ``status``; True when there is something to show."""
        if status not in LIVE_STATUSES or self.done.is_set() \
                or not self._lock.acquire(blocking=False):  # a read is under way already
            return False
        try:
            came = self._read_log()
            self.quiet = 0 if came else self.quiet + 1
            fresh = self._read_metrics(force=False)
        finally:
            self._lock.release()
        return came or fresh

    def catch_up(self) -> None:
        """Read everything written so far (``logs`` of a run that has not ended)."""
        with self._lock:
            self._drain()

    def finish(self) -> None:
        """The run ended: read the rest of its output and its final metrics (once)."""
        with self._lock:
            if self.done.is_set():
                return
            try:
                self._drain()
                self._read_metrics(force=True)
            finally:
                self.done.set()
                self._tell_followers(None)

    def _drain(self) -> None:
        for _ in range(DRAIN_READS):
            failures = self.failures
            if not self._read_log() or self.log_ended or self.failures > failures:
                break  # all read, or the storage is away: not retried now

    def next_delay(self, status: str, longest: float) -> float | None:
        """The longest pause to the next poll of a run in ``status`` (None: the poller's
        schedule alone)."""
        if not self.output:
            return None
        if status in LIVE_STATUSES and self.process_ended:
            return min(ENDING_PACE, longest)  # the process ended: the run's end is near
        if status in LIVE_STATUSES:
            return min(LIVE_PACE[min(self.quiet, len(LIVE_PACE) - 1)], longest)
        return min(PENDING_PACE, longest)

    def _read_log(self) -> bool:
        """Read the new output once; True when text came. A log that cannot be had at all
        (a run not started by our bootstrap) ends here; so does a refusal (403, 404); a read
        that fails otherwise (storage away after the retries) is said once and tried again
        on the next polls, up to :data:`READ_FAILURES` in a row."""
        if self.log_ended or not self.output:
            return False
        try:
            if self._reader is None:
                self._reader = self.run.log_reader()
        except (MlrunMagicError, OSError) as exc:
            return self._give_up(exc)
        try:
            update = self._reader.read_new()
        except (MlrunMagicError, OSError) as exc:
            self.failures += 1
            if self.failures >= READ_FAILURES or not _transient(exc):
                return self._give_up(exc)
            if self.failures == 1:
                self._add(f"\n[mlrun_magic] the live log cannot be read now ({_why(exc)}); "
                          "trying again\n")
                return True
            return False
        self.failures = 0
        if update.ended:
            self.log_ended = self.process_ended = True
        if update.text:
            self.log_seen = True
            self._add(update.text)
        return bool(update.text)

    def _give_up(self, exc) -> bool:
        self._add(f"\n[mlrun_magic] the live log cannot be read ({_why(exc)}); following the "
                  "run's state only\n")
        self.log_ended = True
        return True

    def _read_metrics(self, *, force: bool) -> bool:
        now = time.monotonic()
        if not force and now - self._metrics_at < self._metrics_wait:
            return False
        self._metrics_at = now
        try:
            if self._metrics_reader is None:
                self._metrics_reader = self.run.metrics_reader() or False
            if not self._metrics_reader:
                return False
            series = self._metrics_reader.read()
        except MlrunMagicError:  # the tracking server is away: the last values stay shown
            logger.debug("no metrics for run %s", self.run.run_id, exc_info=True)
            self._metrics_wait = min(self._metrics_wait * 2, METRICS_RETRY_SECONDS)
            return False
        self._metrics_wait = METRICS_SECONDS
        changed = series != self.metrics
        self.metrics = series
        return changed

    # -- followers -------------------------------------------------------------------------
    def follow(self) -> queue.SimpleQueue:
        """A queue of the output from the start (as far as it is kept) and then as it comes;
        ``None`` in it means the run ended and everything was read."""
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            if self.tail.dropped_lines:
                inbox.put(f"[mlrun_magic] {self.tail.dropped_lines} earlier lines not kept\n")
            if self.tail:
                inbox.put(self.tail.text())
            if self.done.is_set():
                inbox.put(None)
            else:
                self._followers.append(inbox)
        return inbox

    def unfollow(self, inbox) -> None:
        with self._lock:
            if inbox in self._followers:
                self._followers.remove(inbox)

    @property
    def followed(self) -> bool:
        return bool(self._followers)

    def _add(self, text: str) -> None:
        self.tail.append(text)
        self._tell_followers(text)

    def _tell_followers(self, text: str | None) -> None:
        for inbox in self._followers:
            inbox.put(text)
        if text is None:
            self._followers.clear()


def _transient(exc) -> bool:
    """A failure that may pass: no answer, too many requests, a server error (a refusal,
    403 or 404, is for good)."""
    if isinstance(exc, OSError) or not hasattr(exc, "status_code"):
        return isinstance(exc, OSError)
    return exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500


def _why(exc) -> str:
    return str(exc.args[0] if exc.args else exc)
