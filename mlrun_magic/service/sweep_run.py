"""Launching a sweep and seeing it through: ``RunService.sweep(request, spec, ...)``.

The order is what makes it safe: every point planned (a bad value stops everything before
an archive is built), then the parent MLflow run, then the points one by one from a
submitter thread (:mod:`.sweep_launch`), never more than ``max_parallel`` active. The sweep
is recorded in the project's ``.mlrun_magic/sweeps.jsonl`` (:mod:`.sweep_record`), so that a
kernel restarted mid-sweep shows it again and finishes it (:mod:`.sweep_resume`).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.service.sweep import Sweep, SweepPoint
from mlrun_magic.service.sweep_launch import record_end, see_through

#: Points active at once when not said (``%config ProjectRun.max_parallel``).
DEFAULT_MAX_PARALLEL = 4


def launch_sweep(service, request, spec, *, max_parallel: int | None = None,
                 metric: str | None = None, goal: str = "min") -> Sweep:
    """Plan every point of ``spec`` over ``request``, create the parent run, start
    launching; returns the :class:`~mlrun_magic.service.sweep.Sweep` at once.

    The same sweep launched again (the same cell re-run) after the process that launched it
    stopped before it ended is taken over instead: its points already started are not
    started again, the rest are launched (``sweep.resumed`` says so)."""
    from mlrun_magic.backends.sweep_parent import create_parent_run
    from mlrun_magic.service.sweep_plan import plan_sweep

    limit = max_parallel or getattr(service.settings, "max_parallel", None) \
        or DEFAULT_MAX_PARALLEL
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise MlrunMagicError(f"max_parallel must be a whole number of at least 1, not "
                              f"{limit!r}")
    plans = plan_sweep(service, request, spec)
    taken = _take_over(service, request, spec, plans, limit)
    if taken is not None:
        taken.metric, taken.goal = metric or taken.metric, goal or taken.goal
        return taken
    parent = create_parent_run(plans[0], spec, run_name=request.run_name)
    points = []
    for index, plan in enumerate(plans):
        tags = {**(plan.request.tags or {}), **parent.child_tags(index)}
        points.append(SweepPoint(index, spec.label(index),
                                 replace(plan, request=replace(plan.request, tags=tags))))
    sweep = Sweep(service, spec, points, parent, limit, metric=metric, goal=goal or "min",
                  project_dir=plans[0].project_dir)
    service._sweeps[parent.run_id] = sweep
    _record(sweep, request, plans[0])
    threading.Thread(target=see_through, args=(sweep,), daemon=True,
                     name=f"mlrun-magic-sweep-{parent.run_id[:8]}").start()
    return sweep


def _take_over(service, request, spec, plans, limit):
    """The unfinished sweep of the same request and definition whose process stopped,
    resumed; None when there is none."""
    from mlrun_magic.history import read_sweeps
    from mlrun_magic.service.sweep_record import fingerprint, request_fields, unfinished
    from mlrun_magic.service.sweep_resume import resume_sweep

    project_dir = plans[0].project_dir
    print_ = fingerprint(request_fields(request, project_dir),
                         {"kind": spec.kind, "definition": spec.definition})
    record = unfinished(read_sweeps(project_dir), print_)
    if record is None:
        return None
    sweep = resume_sweep(service, record, project_dir, request=request, spec=spec,
                         plans=plans, max_parallel=limit)
    if not sweep.resumed:  # it had ended after all (its end was not recorded): a new one
        record_end(sweep)
        return None
    return sweep


def _record(sweep: Sweep, request, plan) -> None:
    from mlrun_magic.history import record_sweep
    from mlrun_magic.service.sweep_record import make_record

    try:
        record_sweep(sweep.project_dir, make_record(sweep, request, plan))
    except OSError:
        sweep.project_dir = None  # a read-only project: the sweep runs, unrecorded


