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
