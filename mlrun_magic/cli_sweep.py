"""``python -m mlrun_magic run [URI] --sweep FILE``: a sweep from a terminal.

It plans every point (a bad value exits 2 before anything is made), launches the sweep,
waits for every point to end and prints its table (``--json``: one object with the parent's
id, status, outcome and a row per point). Exit 0 when every point FINISHED, 1 otherwise,
130 on Ctrl-C, which cancels the sweep. ``--dry-run`` prints each point's command.
"""

from __future__ import annotations

import json
import sys


def run_sweep(service, args) -> int:
    from mlrun_magic.arguments import request_from_args
    from mlrun_magic.project.sweep import load_sweep_file, parse_sweep

    definition, parameters, options = load_sweep_file(args.sweep)
    request = request_from_args(args)
    spec = parse_sweep(definition, {**parameters, **request.parameters})
    if args.dry_run:
        from mlrun_magic.service.sweep_plan import plan_sweep

        plans = plan_sweep(service, request, spec)
        rows = [{"point": i + 1, "label": spec.label(i), "command": p.command}
                for i, p in enumerate(plans)]
        print(json.dumps({"sweep": rows}, indent=2) if args.json else
              f"Dry run (nothing was started): a sweep of {len(plans)} runs\n" +
              "\n".join(f"  {r['label']}: {r['command']}" for r in rows))
        return 0
    sweep = service.sweep(request, spec, metric=args.metric or options.get("metric"),
                          goal=args.goal or options.get("goal") or "min",
                          max_parallel=args.max_parallel or options.get("max_parallel"))
    if sweep.resumed:
        print(f"Sweep {sweep.run_id} was {sweep.resumed}; launching the rest (none twice).",
              file=sys.stderr)
    print(f"Sweep {sweep.run_id}: {len(spec)} runs, at most {sweep.max_parallel} at once"
          + (f"; parent MLflow run: {sweep.parent.run_url}" if sweep.parent.run_url else ""),
          file=sys.stderr)
    try:
        status = sweep.wait()
    except KeyboardInterrupt:
        print(f"Interrupted: the sweep {sweep.run_id} was cancelled (its runs KILLED).",
              file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({"run_id": sweep.run_id, "status": status, "outcome": sweep.outcome,
                          "runs": sweep.table(sweep.metric)}, default=str))
    else:
        print(sweep.describe())
    return 0 if status == "FINISHED" else 1
