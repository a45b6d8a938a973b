"""Live run views in the notebook: display handles the run service keeps up to date.

The only module that touches ``IPython.display`` for runs. A view is a display handle (or
anything with ``update(view)``, like the panel's run area) subscribed to a
:class:`~mlrun_magic.service.WatchedRun`: the service's one poller tells it every state it
learns, and it redraws in place (routed by display id, so it reaches the right cell even
after the cell finished). Views never poll and never print. What they show goes through
:mod:`mlrun_magic.notebook.render` and is redacted like every URI (no ``user:password@``).
"""

from __future__ import annotations

from mlrun_magic.notebook.render import RunSnapshot, RunView


def snapshot(watched) -> RunSnapshot:
    """What a view of ``watched`` shows now."""
    run = watched.run
    return RunSnapshot(run_id=run.run_id, project=run.info.project,
                       entry_point=run.info.entry_point, backend=run.backend,
                       status=watched.state.status, message=watched.state.message,
                       elapsed=watched.elapsed, links=run.links.to_dict(),
                       run_name=run.info.run_name, parameters=run.info.parameters,
                       log_tail=watched.log_tail, checked_at=watched.checked_at)


class _HandleView:
    """Redraws one display handle (or widget adapter) with the run's latest view."""

    def __init__(self, handle):
        self.handle = handle

    def __call__(self, watched) -> None:
        self.handle.update(RunView(snapshot(watched)))


class LiveViews:
    """This kernel's run views, fed by one :class:`~mlrun_magic.service.RunService`."""

    def __init__(self, service, shell=None):
        self.service = service
        self.shell = shell

    def show(self, watched) -> None:
        """Display a view of ``watched`` in the current cell, kept up to date while it runs."""
        from IPython.display import display

        handle = display(RunView(snapshot(watched)), display_id=True)
        if handle is None:  # no IPython shell: plain text, no live updates
            return
        watched.shown_in = getattr(self.shell, "execution_count", None)
        self.service.watch(watched, _HandleView(handle))

    def attach(self, watched, handle) -> None:
        """Show ``watched`` through ``handle`` (anything with ``update(view)``) and keep it
        updated like a displayed view."""
        self.service.watch(watched, _HandleView(handle))

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
