"""Small MLflow projects made on the fly for tests: one entry point per script."""

from __future__ import annotations

from pathlib import Path


def entry_point_project(folder: Path, name: str, entry_points: dict[str, str]) -> Path:
    """A project ``name`` in ``folder`` with an entry point per ``{name: python code}``,
    each run as ``python <name>.py``."""
    folder.mkdir(parents=True)
    lines = [f"name: {name}", "entry_points:"]
    for entry, code in entry_points.items():
        (folder / f"{entry}.py").write_text(code)
        lines += [f"  {entry}:", f"    command: \"python {entry}.py\""]
    (folder / "MLproject").write_text("\n".join(lines) + "\n")
    return folder


def most_at_once(runs) -> int:
    """The most job runs that were active at the same moment (from their start and end)."""
    events = []
    for run in runs:
        job = run.last_run
        events += [(job["start_time"], 1), (job["end_time"], -1)]
    active = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        active += step
        peak = max(peak, active)
    return peak
