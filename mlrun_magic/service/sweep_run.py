"""Launching a sweep and seeing it through: ``RunService.sweep(request, spec, ...)``.

The order is what makes it safe: every point planned (a bad value stops everything before
an archive is built), then the parent MLflow run, then the points one by one from a
submitter thread, never more than ``max_parallel`` active. A point that cannot be launched
is marked FAILED with its sentence and the others go on; a cancel stops the queue, cancels
what runs (also a point whose launch was under way) and ends the parent KILLED.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.service.sweep import Sweep, SweepPoint

logger = logging.getLogger("mlrun_magic.service")

#: Points active at once when not said (``%config ProjectRun.max_parallel``).
DEFAULT_MAX_PARALLEL = 4
NOT_STARTED = "not started: the sweep was cancelled"


def launch_sweep(service, request, spec, *, max_parallel: int | None = None) -> Sweep:
    """Plan every point of ``spec`` over ``request``, create the parent run, start
    launching; returns the :class:`~mlrun_magic.service.sweep.Sweep` at once."""
    from mlrun_magic.backends.sweep_parent import create_parent_run
    from mlrun_magic.service.sweep_plan import plan_sweep

    limit = max_parallel or getattr(service.settings, "max_parallel", None) \
        or DEFAULT_MAX_PARALLEL
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise MlrunMagicError(f"max_parallel must be a whole number of at least 1, not "
                              f"{limit!r}")
    plans = plan_sweep(service, request, spec)
    parent = create_parent_run(plans[0], spec, run_name=request.run_name)
    points = []
    for index, plan in enumerate(plans):
        tags = {**(plan.request.tags or {}), **parent.child_tags(index)}
        points.append(SweepPoint(index, spec.label(index),
                                 replace(plan, request=replace(plan.request, tags=tags))))
    sweep = Sweep(service, spec, points, parent, limit)
    service._sweeps[parent.run_id] = sweep
    threading.Thread(target=_see_through, args=(sweep,), daemon=True,
                     name=f"mlrun-magic-sweep-{parent.run_id[:8]}").start()
    return sweep


def _see_through(sweep: Sweep) -> None:
    try:
        for point in sweep.points:
            if not _wait_for_a_slot(sweep):
                break
            _launch(sweep, point)
        with sweep._changed:
            while not all(p.ended or p.watched is None for p in sweep.points):
                sweep._changed.wait(1.0)
    except Exception:  # noqa: BLE001 (a bug here must still end the parent)
        logger.exception("the sweep %s stopped launching", sweep.run_id)
    finally:
        _finish(sweep)


def _wait_for_a_slot(sweep: Sweep) -> bool:
    """Until fewer than ``max_parallel`` points are active; False once cancelled."""
    with sweep._changed:
        while not sweep.cancelled and sum(
                1 for p in sweep.points if p.watched is not None and not p.ended
        ) >= sweep.max_parallel:
            sweep._changed.wait(1.0)
        return not sweep.cancelled


def _launch(sweep: Sweep, point: SweepPoint) -> None:
    service = sweep.service
    try:
        watched = service.launch(point.plan)
    except MlrunMagicError as exc:
        point.error = exc.message
    except Exception as exc:  # noqa: BLE001 (one point's bug must not stop the others)
        logger.debug("point %s failed to launch", point.label, exc_info=True)
        point.error = f"{type(exc).__name__}: {exc}"
    else:
        point.watched = watched
        service.watch(watched, lambda _: _changed(sweep), output=False)
        if sweep.cancelled:  # cancelled while this one was being launched
            try:
                service.cancel(watched)
            except MlrunMagicError as exc:
                logger.warning("could not cancel run %s: %s", watched.run_id, exc)
    _changed(sweep)


def _changed(sweep: Sweep) -> None:
    with sweep._changed:
        sweep._changed.notify_all()
    sweep._tell()


def _finish(sweep: Sweep) -> None:
    """End the parent with what the points did (once every launched point has ended)."""
    from mlrun_magic.backends.sweep_parent import end_quietly

    for point in sweep.points:
        if point.watched is None and not point.error:
            point.error = NOT_STARTED
    counts = sweep.counts()
    total = len(sweep.points)
    failed = sum(1 for p in sweep.points if p.status in ("FAILED", "KILLED")
                 and p.error != NOT_STARTED)
    if sweep.cancelled:
        sweep.status = "KILLED"
        sweep.outcome = f"cancelled: {counts['finished']} of {total} runs finished"
    elif failed:
        sweep.status = "FAILED"
        sweep.outcome = f"{failed} of {total} runs did not finish"
    else:
        sweep.status = "FINISHED"
        sweep.outcome = f"all {total} runs finished"
    problem = end_quietly(sweep.parent, sweep.status, sweep.outcome)
    if problem:
        logger.warning("%s", problem)
    sweep._done.set()
    sweep._tell()
