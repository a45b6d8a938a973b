"""Seeing a sweep's points through: launched in order, at most ``max_parallel`` active.

A point that cannot be launched is marked FAILED with its sentence and the others go on; a
cancel stops the queue, cancels what runs (also a point whose launch was under way) and ends
the parent KILLED; when every launched point has ended the parent ends with what they did,
and the project's record of the sweep says so.
"""

from __future__ import annotations

import logging

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.service.sweep import Sweep, SweepPoint

logger = logging.getLogger("mlrun_magic.service")

NOT_STARTED = "not started: the sweep was cancelled"


def record_end(sweep: Sweep) -> None:
    """Append the sweep's end to the project's record of it (if it is recorded)."""
    from mlrun_magic.history import record_sweep_end

    if sweep.project_dir is None:
        return
    try:
        record_sweep_end(sweep.project_dir, sweep.run_id, sweep.status, sweep.outcome)
    except OSError:
        pass


def see_through(sweep: Sweep) -> None:
    """Launch the sweep's points not started yet, in order, ``max_parallel`` at most active;
    end the parent when every launched point has ended."""
    try:
        for point in sweep.points:
            if point.watched is not None or point.error:
                continue  # started by the process this sweep was taken over from
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
        service.watch(watched, lambda _: changed(sweep), output=False)
        if sweep.cancelled:  # cancelled while this one was being launched
            try:
                service.cancel(watched)
            except MlrunMagicError as exc:
                logger.warning("could not cancel run %s: %s", watched.run_id, exc)
    changed(sweep)


def changed(sweep: Sweep) -> None:
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
    record_end(sweep)
    sweep._done.set()
    sweep._tell()
