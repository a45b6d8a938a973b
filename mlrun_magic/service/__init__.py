"""The run service: the one life cycle of a run, for every front end.

The ``%project_run`` magic, the launch panel, ``python -m mlrun_magic`` and
``mlrun_magic.run()/plan()/panel()`` parse their input into a
:class:`~mlrun_magic.planning.RunRequest`, call a :class:`RunService` and render what it
returns; nothing else. The service plans, dry-runs, launches, attaches (from the project's
history, after a kernel restart or from another process), refreshes, waits, cancels and
reads logs; it is the only writer of the project's history, and it watches every active run
with the process's one :class:`~mlrun_magic.poller.Poller`, telling each run's views about
every state it learns. One service per kernel or process (:func:`default_service`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path

from mlrun_magic.errors import MlrunMagicError, RunFailedError
from mlrun_magic.planning import Plan, RunRequest, make_plan
from mlrun_magic.poller import shared_poller
from mlrun_magic.redact import redact_text
from mlrun_magic.runs import RunState
from mlrun_magic.service.feeding import feed_step, read_end
from mlrun_magic.service.preview import DryRun, dry_run
from mlrun_magic.service.watched import WatchedRun

__all__ = ["DryRun", "RunService", "WatchedRun", "default_service", "service_for",
           "set_default_service"]

logger = logging.getLogger("mlrun_magic.service")
#: How long the current workspace's host, once resolved, is taken as known.
HOST_CACHE_SECONDS = 60.0


class _Defaults:
    """Used when a service is made without settings: nothing set, polls at most 30 s apart."""

    profile = tracking_uri = None
    poll_interval = 30.0


class RunService:
    """This kernel's or process's runs and their life cycle.

    ``settings`` is anything with ``profile``, ``tracking_uri`` and ``poll_interval``
    attributes (the notebook's ``%config ProjectRun`` object), read when used, so a changed
    setting applies to the next action.
    """

    def __init__(self, settings=None, *, poller=None):
        self.settings = settings if settings is not None else _Defaults()
        self.poller = poller or shared_poller()
        self._runs: dict[str, WatchedRun] = {}
        self._sweeps: dict = {}  # parent MLflow run id -> Sweep, launched by this process
        self._lock = threading.RLock()
        self._host_cache = None

    # -- planning --------------------------------------------------------------------------
    def plan(self, request: RunRequest | Plan) -> Plan:
        """Resolve ``request`` without side effects; a profile or tracking URI it does not
        give comes from the settings (``%config ProjectRun`` in a notebook), whichever front
        end made it (``mlrun_magic.run()`` included)."""
        if isinstance(request, Plan):
            return request
        defaults = {name: getattr(self.settings, name, None)
                    for name in ("profile", "tracking_uri") if getattr(request, name) is None}
        return make_plan(replace(request, **{k: v for k, v in defaults.items() if v}))

    def dry_run(self, request: RunRequest | Plan) -> DryRun:
        """The plan and, for Databricks, the ``runs/submit`` request it would send."""
        return dry_run(self.plan(request), fetched_here=not isinstance(request, Plan))

    def doctor(self, request, **options):
        """Every check that can fail ``request``'s run, as a
        :class:`~mlrun_magic.service.doctor_report.DoctorReport`."""
        from mlrun_magic.service.doctor import service_doctor

        return service_doctor(self, request, **options)

    # -- launching -------------------------------------------------------------------------
    def launch(self, request: RunRequest | Plan, *, progress=None, echo: bool = False,
               watch: bool = False) -> WatchedRun:
        """Plan and submit a run and record it in the project's history.

        ``progress(done_bytes, total_bytes)`` hears packaging; ``echo`` copies a local run's
        output to stdout. Returns the :class:`WatchedRun` (its ``run`` is the handle). The
        run is polled once; from then on only while a view shows it or someone waits for it
        (or with ``watch=True``): nobody pays for requests nobody reads.
        """
        from mlrun_magic.backends import get_backend

        plan = self.plan(request)
        run = get_backend(plan.backend).submit(plan, echo=echo, progress=progress)
        try:
            watched = self._register(run, plan.project_dir)
            self._record_submission(watched, plan)
            self.refresh(watched)  # the first view shows the run's real state and links
            if watch or not run.remote:  # a local run's state costs no request
                self._watch(watched)
        except BaseException:
            # Ctrl-C before the caller holds the run: nobody else could stop it.
            from mlrun_magic.tracking import deferred_interrupts

            with deferred_interrupts():
                state = run.cancel()
            if run.run_id in self._runs:
                self._on_state(run, state)
            raise
        return watched

    def launch_many(self, requests, **options) -> list[WatchedRun]:
        """:meth:`launch` each request in turn; the first failure stops the rest."""
        return [self.launch(request, **options) for request in requests]

    # -- finding ---------------------------------------------------------------------------
    def find(self, ref: str | None = None) -> WatchedRun | None:
        """A run of this process by MLflow run id (or a unique prefix) or Databricks job run
        id; the latest run without ``ref``."""
        with self._lock:
            runs = list(self._runs.values())
        if not ref:
            return runs[-1] if runs else None
        exact = [w for w in runs if w.matches(ref)]
        if exact:
            return exact[-1]
        prefixed = [w for w in runs if w.run_id.startswith(ref)]
        return prefixed[0] if len(prefixed) == 1 else None

    def attach(self, ref: str | None = None, *, project_dir=None, profile: str | None = None,
               tracking_uri: str | None = None, ask_backend: bool = False) -> WatchedRun:
        """The run ``ref`` (default: the latest): from this process, else from the history of
        ``project_dir``, else (``ask_backend``) looked up on the workspace."""
        from mlrun_magic.service.attach import attach_run, current_workspace, history_entry

        watched = self.find(ref)
        if watched is not None:
            return watched
        profile = profile or self.settings.profile
        tracking_uri = tracking_uri or self.settings.tracking_uri
        entry = history_entry(project_dir, ref, lambda: current_workspace(profile, tracking_uri))
        if entry is None and not ref:
            raise MlrunMagicError("no run yet in this kernel or in the project's history",
                                  hint="Launch one with %project_run, or see %project_run list.")
        run = attach_run(ref, entry, profile=profile, tracking_uri=tracking_uri,
                         ask_backend=ask_backend)
        with self._lock:
            known = self._runs.get(run.run_id)
        if known is not None:
            return known
        watched = self._register(run, project_dir if entry is not None else None)
        self.refresh(watched)
        return watched

    def find_sweep(self, ref: str | None, project_dir=None):
        """A sweep by its parent MLflow run id (or a unique prefix): of this process, else
        (``project_dir``) one the project recorded, rebuilt and, if the process that launched
        it stopped before it ended, launching its remaining points."""
        if not ref:
            return None
        found = [sweep for run_id, sweep in list(self._sweeps.items()) if run_id.startswith(ref)]
        if found or project_dir is None:
            return found[0] if len(found) == 1 else None
        from mlrun_magic.service.sweep_resume import attach_sweep

        return attach_sweep(self, ref, project_dir)

    # -- life cycle ------------------------------------------------------------------------
    def refresh(self, target) -> RunState:
        """Ask for the run's state now; every view of it hears the answer."""
        watched = self.get(target)
        self.poller.poll_now(watched.run, self._on_poll)
        return watched.state

    def wait(self, target, timeout: float | None = None,
             max_interval: float | None = None) -> RunState:
        """Block until the run ends (or ``timeout`` passes); Ctrl-C cancels the run."""
        watched = self.get(target)
        self._watch(watched)
        watched.run.wait(timeout, max_interval or self.settings.poll_interval)
        return watched.state

    def wait_for_success(self, target, timeout: float | None = None) -> RunState:
        """:meth:`wait`, then raise :class:`RunFailedError` unless the run FINISHED."""
        watched = self.get(target)
        state = self.wait(watched, timeout)
        if state.is_terminal and state.status != "FINISHED":
            watched.run.raise_for_status(state)
            raise RunFailedError(f"run {watched.run_id} ended {state.status}")
        return state

    def cancel(self, target) -> RunState:
        """Cancel the run and wait for it to end; its MLflow run ends KILLED."""
        watched = self.get(target)
        self._on_state(watched.run, watched.run.cancel())
        return watched.state

    def logs(self, target, tail: int = 100) -> str:
        """The last ``tail`` lines of the run's output: while it runs, as far as the driver
        has published it (its live log); once it ended, as its backend keeps it."""
        from mlrun_magic.service.feeding import output_so_far

        watched = self.get(target)
        return output_so_far(watched, tail) or watched.run.logs(tail=tail)

    from mlrun_magic.service.follow import follow_logs  # (target, on_text, *, stop) -> RunState
    from mlrun_magic.service.feeding import feed_of, release_feed, watch_feed

    def sweep(self, request, spec, **options):
        """Launch the points of ``spec`` over ``request`` (see
        :func:`~mlrun_magic.service.sweep_run.launch_sweep`); the running sweep."""
        from mlrun_magic.service.sweep_run import launch_sweep

        return launch_sweep(self, request, spec, **options)

    def compare(self, refs=(), **options):
        """Runs side by side (see :func:`~mlrun_magic.service.compare.compare_runs`)."""
        from mlrun_magic.service.compare import compare_runs

        return compare_runs(self, refs, **options)

    def watch(self, target, view, *, output: bool = True) -> WatchedRun:
        """Call ``view(watched)`` now and after every change of the run, until it ends;
        while it runs, its metrics and (``output``) its output are read for the view too."""
        watched = self.get(target)
        self.feed_of(watched, output)
        with watched.lock:
            if view not in watched.views:
                watched.views.append(view)
        self._tell(watched, [view])
        if not watched.state.is_terminal:
            self._watch(watched)
        return watched

    def runs(self, project_dir=None, *, refresh: bool = False,
             limit: int | None = None) -> list[dict]:
        """This process's runs merged over the project's history, oldest first, as entries
        (``run_id``, ``status``, ``backend``, ``entry_point``, ``links``, ``submitted``,
        ``started``, ``host``, ``workspace``, ...); the newest ``limit`` only if given.

        ``refresh``: first learn the current state of every run among the newest
        :data:`~mlrun_magic.service.listing.DEFAULT_LIMIT` that had not ended, in one batch
        (the job runs of the current workspace at once; runs of another workspace keep their
        last known state and say so)."""
        from mlrun_magic.service.attach import current_auth
        from mlrun_magic.service.listing import (DEFAULT_LIMIT, mark_not_refreshed,
                                                 mark_workspaces, merged_runs, refresh_entries)

        with self._lock:
            live = list(self._runs.values())
        entries = merged_runs(live, project_dir)
        if limit:
            entries = entries[-limit:]
        profile, tracking_uri = self.settings.profile, self.settings.tracking_uri
        auth = current_auth(profile, tracking_uri, quick=True) if refresh else None
        mark_workspaces(entries, self._current_workspace((profile, tracking_uri), live,
                                                         auth, refresh))
        if refresh:
            live_ids = {w.run_id for w in live}
            refresh_entries(self, entries[-DEFAULT_LIMIT:], live_ids, auth=auth,
                            record_end=lambda entry: self._record_entry_end(project_dir, entry))
            mark_not_refreshed(entries[:-DEFAULT_LIMIT], live_ids)
        return entries

    def _current_workspace(self, key, live, auth, resolved: bool) -> str | None:
        """The current workspace's host. Resolving it reads the SDK's config chain, which may
        ask the workspace, so only ``list`` does (``resolved``, giving ``auth``); otherwise
        the host last resolved (for a minute) or that of this process's latest Databricks
        run."""
        from mlrun_magic.service.attach import host_of

        if resolved:
            self._host_cache = (key, time.monotonic(), host_of(auth))
        cached = self._host_cache
        if cached is not None and cached[0] == key \
                and time.monotonic() - cached[1] < HOST_CACHE_SECONDS:
            return cached[2]
        hosts = [w.run.workspace_host for w in live if w.run.workspace_host]
        return hosts[-1] if hosts else None

    def _record_entry_end(self, project_dir, entry: dict) -> None:
        from mlrun_magic.history import record_status

        if project_dir is None:
            return
        try:
            record_status(project_dir, entry["run_id"], entry["status"],
                          redact_text(entry.get("message") or ""), host=entry.get("host"),
                          started=entry.get("started"), ended=entry.get("ended"))
        except OSError:
            pass  # a read-only project folder: the list still shows the state

    def active(self) -> list[WatchedRun]:
        """The runs of this process that have not ended (as far as is known)."""
        with self._lock:
            return [w for w in self._runs.values() if not w.state.is_terminal]

    def close(self) -> None:
        """Forget every view and stop polling remote runs (``%unload_ext``); the runs go on,
        stay known, and still record their end when anyone learns it."""
        with self._lock:
            runs = list(self._runs.values())
        for watched in runs:
            with watched.lock:
                watched.views.clear()
            if watched.run.remote:
                self.poller.unwatch(watched.run, self._on_poll)

    def get(self, target) -> WatchedRun:
        """The :class:`WatchedRun` of ``target``: one already, a run id of this process (or
        ``None`` for the latest), or a backend's run handle (taken under watch if new)."""
        if isinstance(target, WatchedRun):
            return target
        if isinstance(target, str) or target is None:
            watched = self.find(target)
            if watched is None:
                raise MlrunMagicError(f"no run {target!r} in this process" if target else
                                      "no run yet in this process")
            return watched
        return self._register(target, None)  # a backend's SubmittedRun

    # -- inside ----------------------------------------------------------------------------
    def _register(self, run, project_dir) -> WatchedRun:
        with self._lock:
            watched = self._runs.get(run.run_id)
            if watched is None:
                run.poller = self.poller
                run.state_hook = self._on_state
                watched = WatchedRun(run, Path(project_dir) if project_dir else None)
                last = getattr(run, "last_state", None)
                if last is not None:
                    watched.learn(last)
                self._runs[run.run_id] = watched
            elif project_dir and watched.project_dir is None:
                watched.project_dir = Path(project_dir)
            return watched

    def _watch(self, watched: WatchedRun) -> None:
        self.poller.watch(watched.run, self._on_poll, max_interval=self.settings.poll_interval)

    def _on_poll(self, run, state: RunState) -> None:
        """The poller's answer. A state the run learned has already come through its
        ``state_hook``; only a failed poll (a state the poller made) is new here."""
        if state is not run.last_state:
            self._on_state(run, state, learned=False)
        watched = self._runs.get(run.run_id)
        if watched is not None and watched.run is run:
            feed_step(self, watched, state)

    def _on_state(self, run, state: RunState, learned: bool = True) -> None:
        """Every status learned (poll, wait, cancel, refresh, a direct ``run.status()``) ends
        here: remember it, record the end once, tell every view. ``learned=False``: a
        failed poll's state, which says why the status is unavailable and is no newer."""
        watched = self._runs.get(run.run_id)
        if watched is None or watched.run is not run:
            return
        if watched.state.is_terminal and not state.is_terminal:
            return  # an end is final: a later failed poll does not make the run live again
        first_end = state.is_terminal and watched.ended_at is None
        same = state == watched.state
        watched.learn(state, learned=learned)
        if first_end:
            read_end(watched, state)
        if state.is_terminal:
            self._record_end(watched)
        elif same and watched.feed is not None:
            return  # no news: the feed's read after this poll redraws the views, once
        self._tell(watched, list(watched.views))

    def _tell(self, watched: WatchedRun, views) -> None:
        for view in views:
            try:
                view(watched)
            except Exception:  # noqa: BLE001 (a broken view is dropped, the run goes on)
                logger.debug("run view failed", exc_info=True)
                with watched.lock:
                    if view in watched.views:
                        watched.views.remove(view)

    def _record_submission(self, watched: WatchedRun, plan: Plan) -> None:
        from mlrun_magic.history import record_submission
        from mlrun_magic.service.code_change import mark_code, previous_change

        try:
            run = watched.run
            mark_code(plan, run)  # its sweep and code manifest, for the history
            record_submission(plan.project_dir, run)
            watched.code_change = previous_change(plan.project_dir, run)
        except OSError:
            pass  # a read-only project folder: the run goes on, only the history is missing

    def _record_end(self, watched: WatchedRun) -> None:
        from mlrun_magic.history import record_status

        with watched.lock:
            if watched.recorded or watched.project_dir is None:
                return
            watched.recorded = True
        try:
            record_status(watched.project_dir, watched.run_id, watched.state.status,
                          redact_text(watched.state.message), host=watched.run.workspace_host,
                          started=watched.started_at, ended=watched.ended_at)
        except OSError:
            watched.recorded = False


_default: RunService | None = None
#: One service per owner (an IPython shell): it outlives ``%reload_ext``, which re-imports
#: the package, so the kernel's runs stay known.
_by_owner: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def service_for(owner, settings) -> RunService:
    """The run service of ``owner`` (made on first use), now reading ``settings``."""
    service = _by_owner.get(owner)
    if service is None:
        service = _by_owner[owner] = RunService(settings)
    service.settings = settings
    return service


def default_service() -> RunService:
    """The process's run service (the notebook extension installs its own with
    :func:`set_default_service`, bound to ``%config ProjectRun``)."""
    global _default
    if _default is None:
        _default = RunService()
    return _default


def set_default_service(service: RunService | None) -> None:
    """Make ``service`` the one ``mlrun_magic.run()`` and friends use (``None``: a fresh one)."""
    global _default
    _default = service
