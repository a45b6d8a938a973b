"""A sweep again after a kernel restart: its table rebuilt, its queue finished, no point twice.

The project's ``sweeps.jsonl`` says what the sweep was (:mod:`.sweep_record`); the tracking
server says what became of each point: the runs tagged with the parent's id and their point
numbers. A point whose run has a Databricks job run is attached to it; a point whose run was
made but not (known to be) submitted is submitted with that same MLflow run, whose id is the
``runs/submit`` idempotency token, so a submission that did land before the crash is found
again instead of made twice; a point with no run yet is launched in its turn. Only a sweep
whose launching process is gone is taken over: one that its owner still runs is shown as it
stands.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.service.sweep import Sweep, SweepPoint
from mlrun_magic.service.sweep_record import ENDED, owner_gone

logger = logging.getLogger("mlrun_magic.service")
JOB_RUN_TAG = "mlflow.databricks.shellJobRunID"
STATE_MESSAGE_TAG = "mlrun_magic.databricks.stateMessage"


def attach_sweep(service, ref: str, project_dir):
    """The sweep ``ref`` (its parent run id or a prefix) of the project's record, rebuilt;
    None when the project recorded no such sweep."""
    from mlrun_magic.history import read_sweeps
    from mlrun_magic.service.sweep_record import find_record

    record = find_record(read_sweeps(project_dir), ref)
    return None if record is None else resume_sweep(service, record, project_dir)


def resume_sweep(service, record: dict, project_dir, *, request=None, spec=None,
                 plans=None, max_parallel: int | None = None) -> Sweep:
    """Rebuild the sweep of ``record`` from the tracking server and, when its owner is gone
    and it has not ended, go on launching its points (``request``/``spec``/``plans``: the
    caller's, when it planned them already)."""
    from mlrun_magic.backends.sweep_parent import PARENT_TAG, open_sweep_tracking
    from mlrun_magic.project.sweep import parse_sweep
    from mlrun_magic.service.sweep_plan import plan_sweep
    from mlrun_magic.service.sweep_record import request_of

    if plans is None:
        request = request_of(record)
        definition = record.get("spec") if isinstance(record.get("spec"), dict) else {}
        spec = parse_sweep(definition.get("definition"), request.parameters)
        plans = plan_sweep(service, request, spec)
    tracking = open_sweep_tracking(plans[0])
    parent_id = record["run_id"]
    parent_run = tracking.get_run(parent_id)
    parent = _parent(parent_id, parent_run["experiment_id"], tracking)
    children = _children(tracking.runs_tagged(parent.experiment_id, PARENT_TAG, parent_id))
    sweep = Sweep(service, spec, [], parent, max_parallel or record.get("max_parallel") or 4,
                  metric=record.get("metric"), goal=record.get("goal") or "min",
                  project_dir=project_dir)
    for index, plan in enumerate(plans):
        tags = {**(plan.request.tags or {}), **parent.child_tags(index)}
        point = SweepPoint(index, spec.label(index),
                           replace(plan, request=replace(plan.request, tags=tags)))
        _take(service, point, children.get(index + 1), project_dir)
        sweep.points.append(point)
    service._sweeps[parent_id] = sweep
    for point in sweep.points:
        if point.watched is not None:
            _follow(service, sweep, point.watched)
    _start(sweep, record, parent_run)
    return sweep


def _parent(run_id, experiment_id, tracking):
    from mlrun_magic.backends.sweep_parent import ParentRun

    return ParentRun(run_id, str(experiment_id), tracking.run_url(experiment_id, run_id),
                     tracking.experiment_url(experiment_id), tracking)


def _children(runs: list[dict]) -> dict[int, dict]:
    """Point number -> its run (of two, the one that reached a job run; else the first)."""
    from mlrun_magic.backends.sweep_parent import POINT_TAG

    found: dict[int, dict] = {}
    for run in runs:
        number = run["tags"].get(POINT_TAG, "")
        if not number.isdigit():
            continue
        known = found.get(int(number))
        if known is None or (JOB_RUN_TAG in run["tags"] and JOB_RUN_TAG not in known["tags"]):
            found[int(number)] = run
    return found


def _take(service, point: SweepPoint, child: dict | None, project_dir) -> None:
    """Give ``point`` what became of it: its run attached, its submission to finish with
    the run it has, or why it will not run."""
    if child is None:
        return  # never started: launched in its turn
    run_id, tags = child["run_id"], child["tags"]
    if JOB_RUN_TAG in tags:
        try:
            point.watched = service.attach(run_id, project_dir=project_dir, ask_backend=True)
        except MlrunMagicError as exc:
            point.error = f"its run {run_id} cannot be found again: {exc.message}"
        return
    if child["status"] in ENDED:
        why = tags.get(STATE_MESSAGE_TAG) or "before it was submitted"
        point.error = f"its run {run_id} ended {child['status']}: {why}"
    elif point.plan.backend == "databricks":
        request = replace(point.plan.request, resume_run_id=run_id)
        point.plan = replace(point.plan, request=request)
    else:
        point.error = (f"its run {run_id} was left {child['status']} by the process that "
                       "stopped; a local run is not started again")


def _follow(service, sweep: Sweep, watched) -> None:
    """Redraw the sweep's table as the point's run changes; read an ended one's metrics."""
    from mlrun_magic.service.sweep_launch import changed

    service.watch(watched, lambda _: changed(sweep), output=False)
    if watched.state.is_terminal:
        try:
            service.feed_of(watched, output=False).finish()
        except Exception:  # noqa: BLE001 (its final metrics are a courtesy)
            logger.debug("no final metrics for %s", watched.run_id, exc_info=True)


def _start(sweep: Sweep, record: dict, parent_run: dict) -> None:
    """An ended sweep as it ended; one its owner runs as it stands; else, launching on."""
    from mlrun_magic.backends.sweep_parent import OUTCOME_TAG
    from mlrun_magic.service.sweep_launch import NOT_STARTED, see_through

    if parent_run["status"] in ENDED:
        for point in sweep.points:
            if point.watched is None and not point.error:
                point.error = NOT_STARTED
        sweep.status = parent_run["status"]
        sweep.outcome = parent_run["tags"].get(OUTCOME_TAG, "")
        sweep._done.set()
        return
    if not owner_gone(record):
        owner = record.get("owner") or {}
        sweep.outcome = (f"launched by process {owner.get('pid')} on {owner.get('machine')}, "
                         "which still runs it: this table is as it stands now")
        sweep._done.set()
        return
    done = sum(1 for p in sweep.points if p.watched is not None or p.error)
    sweep.resumed = (f"taken over from the process that stopped: {done} of "
                     f"{len(sweep.points)} runs had been started")
    threading.Thread(target=see_through, args=(sweep,), daemon=True,
                     name=f"mlrun-magic-sweep-{sweep.run_id[:8]}").start()
