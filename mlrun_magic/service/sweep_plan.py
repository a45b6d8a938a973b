"""Planning a sweep: one plan per point, every point checked before anything happens.

The first point is planned in full (the project located, fetched if it is remote, loaded);
the others reuse that project and only resolve their own parameters and command, so a
20-point sweep of a git project clones it once. A point whose values the entry point refuses
stops the sweep here, before any archive is built, uploaded or submitted, with a sentence
naming the point and the key; up to :data:`ERRORS_SHOWN` bad points are named at once.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.project.sweep import SweepError, SweepSpec

ERRORS_SHOWN = 5


def plan_sweep(service, request, spec: SweepSpec) -> list:
    """The :class:`~mlrun_magic.planning.Plan` of every point of ``spec`` (in order)."""
    try:
        first = service.plan(replace(request, parameters=dict(spec.points[0])))
    except MlrunMagicError as exc:
        if not _about_parameters(exc):
            raise  # the project itself (not found, broken MLproject): nothing about points
        first, problems = None, [(0, exc)]
    else:
        problems = []
    plans = [first]
    for index, point in enumerate(spec.points[1:], 1):
        try:
            plans.append(plan_point(first, point) if first is not None else
                         service.plan(replace(request, parameters=dict(point))))
        except MlrunMagicError as exc:
            problems.append((index, exc))
    if problems:
        raise _sweep_error(spec, problems)
    return plans


def plan_point(first, parameters: dict):
    """``first`` (a plan of the same project and entry point) with other parameters."""
    from mlrun_magic.planning import make_plan
    from mlrun_magic.project.command import render_command, resolve_parameters

    request = replace(first.request, parameters=dict(parameters))
    if first.entry_point is None or first.project.env.type == "docker":
        return make_plan(request)  # a docker command or a spark job: planned in full
    project, entry_point = first.project, first.entry_point
    mlproject = str(project.mlproject_path) if project.mlproject_path else None
    params = resolve_parameters(project, entry_point, request.parameters,
                                resolve_paths=request.backend == "local",
                                cwd=Path(request.cwd or os.getcwd()))
    command = render_command(entry_point, params, file=mlproject)
    # Its warnings are the first point's: the same project, entry point and parameter names.
    return replace(first, request=request, parameters=params, command=command)


def _about_parameters(exc: MlrunMagicError) -> bool:
    """Whether the first point's failure is about its values (else: about the project)."""
    return "parameter" in exc.message.lower() or ".parameters" in (getattr(exc, "key", "") or "")


def _sweep_error(spec: SweepSpec, problems) -> SweepError:
    lines = [f"{spec.label(index)}: {exc.message}" for index, exc in problems[:ERRORS_SHOWN]]
    more = len(problems) - ERRORS_SHOWN
    if more > 0:
        lines.append(f"and {more} more point{'s' if more > 1 else ''}")
    count = len(problems)
    head = (f"{count} of the sweep's {len(spec)} points cannot run" if count > 1 else
            f"a point of the sweep cannot run")
    return SweepError(head + " (nothing was uploaded or started):\n  " + "\n  ".join(lines),
                      hint=problems[0][1].hint or "Fix the values in sweep: and run again.")
