"""Live run views: one display handle per shown view, one poller thread per active run.

The only module that touches ``IPython.display``. Pollers never print: they call
``DisplayHandle.update`` (routed by display id, so it reaches the right cell even after the
cell finished) and append final statuses to the project's history. They stop when the run
ends, on ``%unload_ext`` and when the kernel exits. What they show and record goes through
:mod:`mlrun_magic.notebook.render` and is redacted like every URI (no ``user:password@``).
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.backends.base import RunState, SubmittedRun
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook.render import RunSnapshot, RunView

FIRST_POLL = 1.0
BACKOFF = 1.6


@dataclass
class Tracked:
    """A run this kernel launched or attached, and where its views are."""

    run: SubmittedRun
    project_dir: Path | None
    handles: list = field(default_factory=list)
    state: RunState = field(default_factory=lambda: RunState("PENDING"))
    ended_at: float | None = None
    thread: threading.Thread | None = None
    shown_in: int | None = None
    recorded: bool = False
    log_tail: str = ""


class LiveRuns:
    """This kernel's runs and their live views."""

    def __init__(self, settings, shell=None):
        self.settings = settings
        self.shell = shell
        self.runs: dict[str, Tracked] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    # -- registry ----------------------------------------------------------------------
    def add(self, run: SubmittedRun, project_dir=None) -> Tracked:
        with self._lock:
            tracked = self.runs.get(run.run_id)
            if tracked is None:
                tracked = Tracked(run, Path(project_dir) if project_dir else None)
                self.runs[run.run_id] = tracked
            return tracked

    def find(self, ref: str | None) -> Tracked | None:
        """By MLflow run id (or a unique prefix), Databricks job run id, or the last run."""
        if not self.runs:
            return None
        if not ref:
            return list(self.runs.values())[-1]
        for tracked in self.runs.values():
            if tracked.run.run_id == ref or str(getattr(tracked.run, "job_run_id", "")) == ref:
                return tracked
        matches = [t for t in self.runs.values() if t.run.run_id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    # -- views ---------------------------------------------------------------------------
    def snapshot(self, tracked: Tracked) -> RunSnapshot:
        run = tracked.run
        end = tracked.ended_at or time.time()
        return RunSnapshot(run_id=run.run_id, project=run.info.project,
                           entry_point=run.info.entry_point, backend=run.backend,
                           status=tracked.state.status, message=tracked.state.message,
                           elapsed=end - run.info.started_at, links=run.links.to_dict(),
                           run_name=run.info.run_name, parameters=run.info.parameters,
                           log_tail=tracked.log_tail)

    def refresh(self, tracked: Tracked) -> RunState:
        """Ask the backend for the state now; remember it; record a final state once."""
        try:
            state = tracked.run.status()
        except MlrunMagicError as exc:
            state = RunState(tracked.state.status, f"status unavailable: {exc.message}")
        tracked.state = state
        if state.is_terminal and tracked.ended_at is None:
            tracked.ended_at = time.time()
            if state.status != "FINISHED":
                try:
                    tracked.log_tail = tracked.run.logs(tail=15)
                except MlrunMagicError:
                    pass
        if state.is_terminal and not tracked.recorded and tracked.project_dir:
            from mlrun_magic.history import record_status
            from mlrun_magic.redact import redact_text

            try:
                record_status(tracked.project_dir, tracked.run.run_id, state.status,
                              redact_text(state.message))
                tracked.recorded = True
            except OSError:
                pass
        return state

    def show(self, tracked: Tracked, *, poll: bool = True) -> None:
        """Display a live view of ``tracked`` and keep it updated in the background."""
        from IPython.display import display

        handle = display(RunView(self.snapshot(tracked)), display_id=True)
        if handle is None:  # no IPython shell: plain text, no live updates
            return
        tracked.handles.append(handle)
        tracked.shown_in = getattr(self.shell, "execution_count", None)
        if poll and not tracked.state.is_terminal:
            self._start_poller(tracked)

    def attach(self, tracked: Tracked, handle) -> None:
        """Show ``tracked`` through ``handle`` (anything with ``update(view)``, e.g. a widget
        adapter) and keep it updated like a displayed view."""
        tracked.handles.append(handle)
        handle.update(RunView(self.snapshot(tracked)))
        if not tracked.state.is_terminal:
            self._start_poller(tracked)

    def update_views(self, tracked: Tracked) -> None:
        view = RunView(self.snapshot(tracked))
        for handle in list(tracked.handles):
            try:
                handle.update(view)
            except Exception:  # a display failure must never break the run or the kernel
                tracked.handles.remove(handle)

    def _start_poller(self, tracked: Tracked) -> None:
        if tracked.thread is not None and tracked.thread.is_alive():
            return
        tracked.thread = threading.Thread(target=self._poll, args=(tracked,), daemon=True,
                                          name=f"mlrun-magic-poll-{tracked.run.run_id[:8]}")
        tracked.thread.start()

    def _poll(self, tracked: Tracked) -> None:
        delay = FIRST_POLL
        while not self._stop.wait(delay):
            state = self.refresh(tracked)
            self.update_views(tracked)
            if state.is_terminal:
                return
            delay = min(delay * BACKOFF, self.settings.poll_interval)

    def wait(self, tracked: Tracked) -> RunState:
        """Block (in the cell) until the run ends, updating its views; Ctrl-C cancels it."""
        delay = FIRST_POLL
        try:
            while True:
                state = self.refresh(tracked)
                self.update_views(tracked)
                if state.is_terminal:
                    return state
                time.sleep(delay)
                delay = min(delay * BACKOFF, self.settings.poll_interval)
        except KeyboardInterrupt:
            tracked.state = tracked.run.cancel()
            self.refresh(tracked)
            self.update_views(tracked)
            raise

    def display_again(self, run: SubmittedRun) -> None:
        """``_ipython_display_`` of a run: a fresh live view, unless this very cell already
        shows one (the magic displays its view before returning the run)."""
        tracked = self.add(run)
        if tracked.shown_in is not None and tracked.shown_in == getattr(self.shell,
                                                                       "execution_count", None):
            return
        self.refresh(tracked)
        self.show(tracked)

    def stop_all(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for tracked in list(self.runs.values()):
            if tracked.thread is not None:
                tracked.thread.join(timeout)


class HtmlProgress:
    """Packaging and upload progress as an HTML bar in the cell, updated in place.

    Called as ``progress(done_bytes, total_bytes)``; draws only for work worth watching
    (over 8 MB), at most ten times a second.
    """

    MIN_BYTES = 8 * 1024 * 1024

    def __init__(self, label: str = "Packaging"):
        self.label = label
        self.handle = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if total < self.MIN_BYTES:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        from IPython.display import HTML, display

        from mlrun_magic.packaging.progress import human_bytes

        pct = 100.0 * done / total if total else 100.0
        html = HTML(f'<div style="font-family:system-ui,sans-serif;font-size:12px">{self.label} '
                    f'{human_bytes(done)} / {human_bytes(total)} <progress value="{pct:.0f}" '
                    f'max="100" style="width:240px"></progress> {pct:.0f}%</div>')
        if self.handle is None:
            self.handle = display(html, display_id=True)
        else:
            self.handle.update(html)
