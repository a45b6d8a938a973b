"""``python -m mlrun_magic compare [RUN ...]``: what differs between runs, in a terminal.

RUN is an MLflow run id (or a unique prefix), a Databricks job run id, or a sweep's parent
run id (its points); with none, the project's last two runs. The project is the one holding
the current folder, or ``--project DIR``. Prints the table (``--json``: one object); exit 0,
or 2 with a sentence (``--json``: ``{"error": ...}``) for a bad ref or too few runs.
"""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    help_text = "compare runs: parameters that differ, final metrics, git, code changes"
    p = sub.add_parser("compare", help=help_text, description=help_text)
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="MLflow run ids (or prefixes), job run ids, or a sweep's id; "
                        "default: the project's last two runs")
    p.add_argument("--project", default=None, metavar="DIR",
                   help="The project folder whose history names the runs (default: the one "
                        "holding the current folder).")
    p.add_argument("--profile", default=None, metavar="NAME",
                   help="Databricks config profile (~/.databrickscfg).")
    p.add_argument("--tracking-uri", default=None, metavar="URI",
                   help="MLflow tracking URI of local runs (default: MLFLOW_TRACKING_URI).")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")


def cmd_compare(service, args) -> int:
    from types import SimpleNamespace

    from mlrun_magic.project.uri import find_project_dir
    from mlrun_magic.service.compare_text import describe

    service.settings = SimpleNamespace(profile=args.profile, tracking_uri=args.tracking_uri,
                                       poll_interval=30.0)
    project = Path(args.project) if args.project else find_project_dir(Path.cwd())
    comparison = service.compare(args.runs, project_dir=project)
    print(json.dumps(comparison.to_dict(), indent=2) if args.json else describe(comparison))
    return 0
