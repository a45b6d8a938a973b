"""The arguments of a launch, shared by ``python -m mlrun_magic run|plan`` and ``%project_run``.

One table (:data:`RUN_ARGUMENTS`) declares the flags of both front ends, so the notebook and
the terminal agree; the flags mirror ``mlflow run`` so habits and copied commands carry over.
"""

from __future__ import annotations

import argparse

from mlrun_magic.errors import ArgumentsError
from mlrun_magic.runs import BACKENDS, ENV_MANAGERS

#: The arguments of a launch, shared by ``run``/``plan`` of the CLI and by ``%project_run``.
#: Each entry is the positional arguments and the keyword arguments of ``add_argument``.
RUN_ARGUMENTS: list[tuple[tuple, dict]] = [
    (("uri",), dict(nargs="?", default=None, metavar="URI",
                    help="The project: a folder, a file:// path or a git URI with an optional "
                         "#subdirectory. Default: the project that holds the notebook (or the "
                         "current folder), found by walking up to the nearest MLproject.")),
    (("-e", "--entry-point"), dict(default="main", metavar="NAME",
                                   help="Entry point in the MLproject, or a .py/.sh file in the "
                                        "project (default: main).")),
    (("-P", "--param-list"), dict(action="append", default=[], metavar="NAME=VALUE",
                                  dest="param_list",
                                  help="A parameter of the entry point; repeat for more. "
                                       "Undeclared ones are passed as --NAME VALUE.")),
    (("-v", "--version"), dict(default=None, metavar="VERSION",
                               help="Git branch, tag or commit SHA to run (git projects).")),
    (("-b", "--backend"), dict(default=None, choices=BACKENDS,
                               help="Where to run: local (default) or databricks.")),
    (("-m", "--mode"), dict(dest="backend", default=argparse.SUPPRESS,
                            choices=BACKENDS,
                            help="Older spelling of --backend.")),
    (("-c", "--backend-config"), dict(default=None, metavar="JSON_OR_FILE",
                                      help="Databricks cluster spec: a .json/.yaml file or "
                                           "inline JSON.")),
    (("--cluster-spec",), dict(dest="backend_config", default=argparse.SUPPRESS,
                               metavar="JSON_OR_FILE", help="Older spelling of --backend-config.")),
    (("--experiment-name",), dict(default=None, metavar="NAME",
                                  help="MLflow experiment to log to (created if missing; "
                                       "env MLFLOW_EXPERIMENT_NAME).")),
    (("--experiment-id",), dict(default=None, metavar="ID",
                                help="MLflow experiment id (env MLFLOW_EXPERIMENT_ID).")),
    (("--env-manager",), dict(default=None, choices=ENV_MANAGERS,
                              help="How to build the project's environment. Default: local "
                                   "(this Python environment).")),
    (("--run-name",), dict(default=None, metavar="NAME", help="Name of the MLflow run.")),
    (("--tracking-uri",), dict(default=None, metavar="URI",
                               help="MLflow tracking URI (default: MLFLOW_TRACKING_URI).")),
    (("--profile",), dict(default=None, metavar="NAME",
                          help="Databricks config profile (~/.databrickscfg).")),
    (("--code-location",), dict(default=None, metavar="PATH",
                                help="Where to upload the code on Databricks: /Volumes/..., "
                                     "/Workspace/... or dbfs:/...")),
    (("-A", "--docker-args"), dict(action="append", default=[], metavar="NAME=VALUE",
                                   dest="docker_args",
                                   help="A `docker run` option of a docker_env project: -A "
                                        "gpus=all gives --gpus all, -A t gives -t; repeat for "
                                        "more.")),
    (("--build-image",), dict(action="store_true",
                              help="docker_env projects: build an image FROM the MLproject's "
                                   "image with the project copied in (default: run that "
                                   "image as is).")),
    (("--wait",), dict(action=argparse.BooleanOptionalAction, default=None,
                       help="Block until the run ends (local runs from a terminal always do).")),
    (("--dry-run",), dict(action="store_true",
                          help="Resolve and show everything; start nothing.")),
]


def positive_count(text: str) -> int:
    """A whole number from 1 (``--max-parallel``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


#: The flags of a sweep (a ``sweep:`` in the cell body).
SWEEP_ARGUMENTS: list[tuple[tuple, dict]] = [
    (("--max-parallel",), dict(type=positive_count, default=None, metavar="N",
                               help="A sweep's runs active at once (default: "
                                    "ProjectRun.max_parallel, 4).")),
    (("--metric",), dict(default=None, metavar="NAME",
                         help="The metric a sweep's table shows and ranks its runs by.")),
    (("--goal",), dict(default=None, choices=("min", "max"),
                       help="Whether the best run has the lowest or highest --metric "
                            "(default: min).")),
]


def parse_param_list(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``, with MLflow's error messages."""
    params: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ArgumentsError(f"Invalid format for -P parameter: '{item}'. Use -P name=value.")
        if name in params:
            raise ArgumentsError(f"Repeated parameter: '{name}'")
        params[name] = value
    return params


def parse_docker_args(items: list[str] | None) -> dict:
    """``-A``: ``["gpus=all", "t"]`` -> ``{"gpus": "all", "t": True}``, with MLflow's messages."""
    from mlrun_magic.project.docker import check_docker_args

    out: dict = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if name in out:
            raise ArgumentsError(f"Repeated parameter: '{name}'")
        out[name] = value if sep else True
    return check_docker_args(out)


def tail_count(text: str) -> int:
    """``--tail N``: how many lines, a whole number of at least 1."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number of lines, at least 1, "
                                         f"not {text!r}")
    return count


def request_from_args(args, **overrides):
    """A :class:`~mlrun_magic.planning.RunRequest` from parsed :data:`RUN_ARGUMENTS`."""
    from mlrun_magic.planning import RunRequest

    fields = dict(uri=args.uri, entry_point=args.entry_point,
                  parameters=parse_param_list(args.param_list), version=args.version,
                  backend=args.backend or "local", backend_config=args.backend_config,
                  experiment_name=args.experiment_name, experiment_id=args.experiment_id,
                  env_manager=args.env_manager, run_name=args.run_name,
                  tracking_uri=args.tracking_uri, profile=args.profile,
                  code_location=args.code_location, build_image=args.build_image,
                  docker_args=parse_docker_args(args.docker_args) or None)
    fields.update(overrides)
    return RunRequest(**fields)
