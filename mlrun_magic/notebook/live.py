"""Live run views in the notebook: display handles the run service keeps up to date.

The only module that touches ``IPython.display`` for runs. A view is a display handle (or
anything with ``update(view)``, like the panel's run area) subscribed to a
:class:`~mlrun_magic.service.WatchedRun`: the service's one poller tells it every state it
learns, and it redraws in place (routed by display id, so it reaches the right cell even
after the cell finished). Views never poll and never print. What they show goes through
:mod:`mlrun_magic.notebook.render` and is redacted like every URI (no ``user:password@``).
"""

from __future__ import annotations

from mlrun_magic.notebook.run_view import RunSnapshot, RunView


#: Lines of output a live view shows when ``%config ProjectRun.tail_lines`` is not set.
TAIL_LINES = 20


def tail_lines(settings) -> int:
    """``%config ProjectRun.tail_lines`` (0 shows no output while the run is live)."""
    lines = getattr(settings, "tail_lines", None)
    return TAIL_LINES if lines is None else lines


def snapshot(watched, tail_lines: int = TAIL_LINES) -> RunSnapshot:
    """What a view of ``watched`` shows now: a run that did not finish shows its last
    lines of output as its end left them; a live one, its newest ``tail_lines`` lines."""
    run, feed, state = watched.run, watched.feed, watched.state
    failed = state.is_terminal and state.status != "FINISHED"
    if feed is not None and feed.tail and not failed:
        tail = "\n".join(feed.tail.last(tail_lines))
    else:
        tail = watched.log_tail
    note = ""
    if feed is not None and not tail and state.status == "RUNNING":
        note = "Waiting for the run's first output..."
    return RunSnapshot(run_id=run.run_id, project=run.info.project,
                       entry_point=run.info.entry_point, backend=run.backend,
                       status=state.status, message=state.message,
                       elapsed=watched.elapsed, links=run.links.to_dict(),
                       run_name=run.info.run_name, parameters=run.info.parameters,
                       log_tail=tail, checked_at=watched.checked_at,
                       metrics=tuple(feed.metrics) if feed is not None else (),
                       failure=watched.failure, log_note=note,
                       code_change=getattr(watched, "code_change", None) or "")


class _HandleView:
    """Redraws one display handle (or widget adapter) with the run's latest view."""

    def __init__(self, handle, settings=None):
        self.handle = handle
        self.settings = settings

    def __call__(self, watched) -> None:
        self.handle.update(RunView(snapshot(watched, tail_lines(self.settings))))


class LiveViews:
    """This kernel's run views, fed by one :class:`~mlrun_magic.service.RunService`."""

    def __init__(self, service, shell=None):
        self.service = service
        self.shell = shell

    def show(self, watched) -> None:
        """Display a view of ``watched`` in the current cell, kept up to date while it runs."""
        from IPython.display import display

        handle = display(RunView(snapshot(watched, tail_lines(self.service.settings))),
                         display_id=True)
        if handle is None:  # no IPython shell: plain text, no live updates
            return
        watched.shown_in = getattr(self.shell, "execution_count", None)
        self.service.watch(watched, _HandleView(handle, self.service.settings))

    def attach(self, watched, handle) -> None:
        """Show ``watched`` through ``handle`` (anything with ``update(view)``) and keep it
        updated like a displayed view."""
        self.service.watch(watched, _HandleView(handle, self.service.settings))

    def display_again(self, run) -> None:
        """``_ipython_display_`` of a run handle: a fresh live view, unless this very cell
        already shows one (the magic displays its view before returning the run)."""
        watched = self.service.get(run)
        if watched.shown_in is not None and \
                watched.shown_in == getattr(self.shell, "execution_count", None):
            return
        self.service.refresh(watched)
        self.show(watched)

    def stop_all(self) -> None:
        """Stop updating every view (``%unload_ext``, kernel exit); the runs go on."""
        self.service.close()
