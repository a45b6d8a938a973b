"""A ``%%project_run`` cell with a ``sweep:``: launch the sweep and show its live table.

The points come from the body's ``sweep:`` merged over its ``parameters:`` (and ``-P`` on
the line); ``--max-parallel``/``max_parallel:``, ``--metric``/``metric:`` and
``--goal``/``goal:`` say how it runs and is ranked (the line wins over the body). The table
is one display output, redrawn in place by the service's poller as the points change;
``--wait`` blocks until every point has ended (Ctrl-C cancels the sweep: a sentence, not a
traceback) and fails the cell if any did not finish. The cell's value is the sweep.
"""

from __future__ import annotations

from mlrun_magic.project.sweep import SweepError, parse_sweep


def launch_sweep_cell(magic, request, args, *, dry_run: bool, wait: bool):
    body = args.cell_body
    if body.sweep is None:
        raise SweepError("--max-parallel, --metric and --goal are for a sweep: "
                         "the cell body has no sweep:",
                         hint="Add sweep: with the values to try, e.g.\n"
                              "sweep:\n  alpha: [0.1, 0.3]")
    options = body.sweep_options
    metric = args.metric or options.get("metric")
    goal = args.goal or options.get("goal") or "min"
    spec = parse_sweep(body.sweep, request.parameters)
    if dry_run:
        from mlrun_magic.service.sweep_plan import plan_sweep

        plans = plan_sweep(magic.service, request, spec)
        print(f"Dry run (nothing was started): a sweep of {len(plans)} runs")
        for index, plan in enumerate(plans):
            print(f"  {spec.label(index)}: {plan.command}")
        return None
    sweep = magic.service.sweep(request, spec, metric=metric, goal=goal,
                                max_parallel=args.max_parallel or options.get("max_parallel"))
    if sweep.resumed:
        print(f"Sweep {sweep.run_id} of this cell was {sweep.resumed}; its other runs are "
              "launched now (none is started twice).")
    show_sweep(sweep)
    if wait:
        try:
            sweep.wait_for_success()
        except KeyboardInterrupt:  # Sweep.wait cancelled the sweep before this came
            counts = sweep.counts()
            raise SweepError(f"interrupted: sweep {sweep.run_id} was cancelled "
                             f"({counts['finished']} of {len(sweep.points)} runs had "
                             "finished; the others are KILLED or were never started)",
                             hint="Its table shows each run's end; launch the cell again "
                                  "for a new sweep.") from None
    return sweep


def show_sweep(sweep) -> None:
    """Display the sweep's table in this cell, redrawn in place as its points change."""
    from IPython.display import display

    from mlrun_magic.notebook.sweep_view import SweepView

    metric, goal = sweep.metric, sweep.goal
    handle = display(SweepView(sweep, metric, goal), display_id=True)
    if handle is not None and not sweep.ended:
        sweep.views.append(lambda s: handle.update(SweepView(s, metric, goal)))
