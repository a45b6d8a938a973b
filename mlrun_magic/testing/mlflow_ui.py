"""MLflow's web UI for the loopback setup (``make demo``, ``make lab``), installed lean.

The UI's static build ships only in the full ``mlflow`` wheel; ``mlflow-skinny`` (what the
tests need) answers ``/`` with "Unable to display MLflow UI". The full wheel's own dependencies
(pandas, scipy, scikit-learn, matplotlib, pyarrow, docker...) are hundreds of MB a tracking
server never imports. In MLflow 3 that wheel holds the same package files as mlflow-skinny of
the same version (byte for byte) plus the UI build and a few data files, so::

    python -m mlrun_magic.testing.mlflow_ui

installs ``mlflow==<the installed mlflow-skinny version>`` with ``--no-deps``, then the one
dependency the UI needs from the server: ``graphene`` (the run page asks ``/graphql``), pinned
as that mlflow wheel pins it. ``pip check`` then lists mlflow's other requirements as missing;
nothing the tracking server runs imports them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

UI_MISSING = ("The MLflow UI is not installed (mlflow-skinny has no UI build): links to MLflow "
              "runs show 'Unable to display MLflow UI'. Run `make demo` or `make lab` once, or "
              "python -m mlrun_magic.testing.mlflow_ui, to add it.")


def ui_index() -> Path | None:
    """The UI's ``index.html`` that the MLflow server in this environment serves, or None."""
    spec = importlib.util.find_spec("mlflow")  # without importing mlflow (slow)
    if spec is None or not spec.submodule_search_locations:
        return None
    index = Path(list(spec.submodule_search_locations)[0]) / "server" / "js" / "build" / \
        "index.html"
    return index if index.is_file() else None


def ui_ready() -> bool:
    """Whether the UI build and what its pages ask of the server are installed."""
    return ui_index() is not None and importlib.util.find_spec("graphene") is not None


def mlflow_requirement() -> str:
    """``mlflow==V``, V the installed mlflow-skinny (pinned in pyproject.toml's test extras)."""
    return f"mlflow=={version('mlflow-skinny')}"


def graphene_requirement() -> str:
    """graphene as the installed full mlflow wheel requires it (``graphene<4``)."""
    try:
        wanted = requires("mlflow") or []
    except PackageNotFoundError:
        wanted = []
    spec = next((r.split(";")[0].strip() for r in wanted if r.lower().startswith("graphene")),
                "graphene<4")
    return spec.replace(" ", "")


def install_commands() -> list[list[str]]:
    """The pip commands, in order (the second reads what the first installed)."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts"]
    return [pip + ["--no-deps", mlflow_requirement()], pip + [graphene_requirement()]]


def main() -> int:
    for step in (0, 1):
        command = install_commands()[step]  # step 1 reads the mlflow step 0 installed
        print("+ " + " ".join(command[2:]), flush=True)
        if subprocess.call(command) != 0:
            print("error: could not install the MLflow UI (see pip's message above).",
                  file=sys.stderr)
            return 1
    if not ui_ready():
        print(f"error: {UI_MISSING}", file=sys.stderr)
        return 1
    print(f"MLflow UI installed: {ui_index()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
