"""One thread that watches every active run: polls each on one backoff schedule, tells listeners.

Every way of watching a run goes through a :class:`Poller`: the live views in a notebook,
``wait()`` (in a cell, from Python, from a terminal), the panel, and cancel's wait for the
end. A run is polled soon after it is watched, then less and less often along
:data:`SCHEDULE` (never more than a watch's ``max_interval`` apart), until its state is
terminal; then its listeners hear the final state once and it is dropped. ``poke(run)``
polls it at once and restarts its schedule (after a cancel, when a local process ends).

One thread serves any number of runs: a heap of due times, one status call at a time, so
tens of runs cost tens of requests per backoff period, not tens of threads. A listener is
called in the poller's thread with ``(run, state)``; it must be quick and must not raise
(what it raises is logged and dropped). A status call that fails keeps the last state, with
the failure as its message, and is tried again on schedule.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import threading
import time

from mlrun_magic.runs import RunState

logger = logging.getLogger("mlrun_magic.poller")

#: Seconds between two polls of a run: quick at first (its URL, its first states), then 30 s.
SCHEDULE = (1, 2, 3, 5, 8, 13, 20, 30)
WAIT_SLICE = 0.25


class _Watch:
    """One watched run: its listeners, its place in the schedule, its latest state."""

    def __init__(self, run, max_interval: float | None):
        self.run = run
        self.listeners: list = []
        self.max_interval = max_interval
        self.polls = 0
        self.due = 0.0
        self.state: RunState | None = None
        self.ended = threading.Event()
        self.waiters = 0
        #: The longest pause to the next poll, below the schedule's (a live log sets it:
        #: short while output comes, longer as it stops); None: the schedule alone.
        self.pace: float | None = None
        self.lock = threading.Lock()  # one status call of this run at a time


class Poller:
    """Watches runs (anything with ``status() -> RunState``) from one daemon thread."""

    def __init__(self, schedule=SCHEDULE, *, name: str = "mlrun-magic-poller"):
        self.schedule = tuple(schedule)
        self.name = name
        self._watches: dict[int, _Watch] = {}
        self._heap: list[tuple[float, int, int]] = []
        self._tie = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: Status calls made, for the cost tests and ``make bench``.
        self.polls = 0

    # -- watching --------------------------------------------------------------------------
    def watch(self, run, listener=None, *, max_interval: float | None = None,
              now: bool = False) -> None:
        """Poll ``run`` until it ends, calling ``listener(run, state)`` after every poll.

        Watching a watched run again only adds the listener (and tightens ``max_interval``).
        A run already known to have ended is not watched: the listener hears its state at once.
        """
        last = getattr(run, "last_state", None)
        if last is not None and last.is_terminal:
            if listener is not None:
                listener(run, last)
            return
        with self._cond:
            watch = self._watches.get(id(run))
            if watch is None:
                watch = _Watch(run, max_interval)
                self._watches[id(run)] = watch
                self._schedule(watch, 0.0 if now else self._interval(watch))
            elif max_interval is not None:
                watch.max_interval = min(max_interval, watch.max_interval or max_interval)
            if listener is not None and listener not in watch.listeners:
                watch.listeners.append(listener)
            self._start()

    def unwatch(self, run, listener) -> None:
        """Stop telling ``listener`` about ``run``; a run nobody listens to or waits for is
        not polled any more."""
        with self._cond:
            watch = self._watches.get(id(run))
            if watch is not None and listener in watch.listeners:
                watch.listeners.remove(listener)
            if watch is not None and not watch.listeners and not watch.waiters:
                del self._watches[id(run)]

    def poke(self, run) -> None:
        """Poll ``run`` now (if it is watched) and start its schedule again from the top."""
        with self._cond:
            watch = self._watches.get(id(run))
            if watch is not None:
                watch.polls = 0
                self._schedule(watch, 0.0)

    def pace(self, run, seconds: float | None) -> None:
        """Poll ``run`` at most ``seconds`` apart from its next poll on, however far its
        schedule has backed off (``None``: the schedule alone)."""
        with self._cond:
            watch = self._watches.get(id(run))
            if watch is not None:
                watch.pace = seconds

    def poll_now(self, run, listener=None) -> RunState:
        """Poll ``run`` in this thread, tell its listeners (and ``listener``), return the state."""
        with self._cond:
            watch = self._watches.get(id(run))
            if watch is None:
                watch = _Watch(run, None)
                watch.state = getattr(run, "last_state", None)
        return self._poll(watch, listener)

    def wait(self, run, timeout: float | None = None,
             max_interval: float | None = None) -> RunState:
        """Block until ``run`` ends (or ``timeout`` seconds pass); return its latest state.

        ``max_interval`` caps the time between two polls while waiting. Ctrl-C raises
        ``KeyboardInterrupt`` here: what to do about the run is the caller's choice.
        """
        self.watch(run, max_interval=max_interval)
        with self._cond:
            watch = self._watches.get(id(run))
        if watch is None:  # known to have ended, or ended between watch() and here
            last = getattr(run, "last_state", None)
            return last if last is not None and last.is_terminal else self.poll_now(run)
        with self._cond:
            watch.waiters += 1
        try:
            self._wait_for_end(watch, timeout)
        finally:
            with self._cond:
                watch.waiters -= 1
                if not watch.waiters and not watch.listeners \
                        and self._watches.get(id(run)) is watch:
                    del self._watches[id(run)]  # a wait that timed out: nobody is watching
        return watch.state if watch.state is not None else self.poll_now(run)

    @staticmethod
    def _wait_for_end(watch: _Watch, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        # In slices: a pending Ctrl-C (also one raised by _thread.interrupt_main, which no
        # blocking wait notices) is handled within a quarter of a second.
        while not watch.ended.wait(WAIT_SLICE if deadline is None
                                   else max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))):
            if deadline is not None and time.monotonic() >= deadline:
                break

    def active(self) -> list:
        """The runs being watched."""
        with self._cond:
            return [w.run for w in self._watches.values()]

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (on ``%unload_ext`` and at exit); watching again restarts it."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._thread = None
            self._stopped = False

    # -- the thread ------------------------------------------------------------------------
    def _interval(self, watch: _Watch) -> float:
        delay = self.schedule[min(watch.polls, len(self.schedule) - 1)]
        if watch.pace is not None:
            delay = min(delay, watch.pace)
        return min(delay, watch.max_interval) if watch.max_interval else delay

    def _schedule(self, watch: _Watch, delay: float) -> None:
        watch.due = time.monotonic() + delay
        heapq.heappush(self._heap, (watch.due, next(self._tie), id(watch.run)))
        self._cond.notify_all()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _next_due(self) -> _Watch | None:
        """Wait (holding the condition) for the next run that is due; None when stopping."""
        while not self._stopped:
            while self._heap:
                due, _, key = self._heap[0]
                watch = self._watches.get(key)
                if watch is None or watch.due != due:  # ended, or rescheduled since
                    heapq.heappop(self._heap)
                    continue
                break
            else:
                self._cond.wait()
                continue
            left = due - time.monotonic()
            if left <= 0:
                heapq.heappop(self._heap)
                return watch
            self._cond.wait(left)
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                watch = self._next_due()
                if watch is None:
                    return
            self._poll(watch)
            with self._cond:
                if id(watch.run) in self._watches and not watch.ended.is_set():
                    watch.polls += 1
                    self._schedule(watch, self._interval(watch))

    def report(self, run, state: RunState) -> None:
        """``run`` learned ``state`` by itself (a local process ended): its listeners and
        waiters hear it now, without a poll and whatever the poller's thread is busy with."""
        with self._cond:
            watch = self._watches.get(id(run))
        if watch is not None:
            self._deliver(watch, state, None)

    def _poll(self, watch: _Watch, extra=None) -> RunState:
        with watch.lock:
            try:
                state = watch.run.status()
            except Exception as exc:  # noqa: BLE001 (a failed poll must not end the watching)
                last = watch.state or getattr(watch.run, "last_state", None) or RunState("PENDING")
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                state = RunState(last.status, f"status unavailable: {reason}")
            self.polls += 1
            return self._deliver(watch, state, extra)

    def _deliver(self, watch: _Watch, state: RunState, extra) -> RunState:
        """Keep ``state``, tell the listeners, and end the watch if the run ended."""
        watch.state = state
        with self._cond:
            listeners = list(watch.listeners)
            if extra is not None and extra not in listeners:
                listeners.append(extra)
            if state.is_terminal and self._watches.get(id(watch.run)) is watch:
                del self._watches[id(watch.run)]
        for listener in listeners:
            try:
                listener(watch.run, state)
            except Exception:  # noqa: BLE001 (a view's failure must not stop the others)
                logger.debug("run listener failed", exc_info=True)
        if state.is_terminal:
            watch.ended.set()
        return state


_shared: Poller | None = None
_shared_lock = threading.Lock()


def shared_poller() -> Poller:
    """The process's poller: every run of this process is watched by it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Poller()
            atexit.register(_shared.stop)
        return _shared
