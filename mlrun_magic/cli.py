"""``python -m mlrun_magic``: plan and run MLflow Projects from a terminal or CI.

The flags mirror ``mlflow run`` so habits and copied commands carry over; the same argument
table declares the ``%project_run`` magic, so the notebook and the terminal agree.

Examples::

    python -m mlrun_magic plan example_notebooks/quickstart -P alpha=0.5 --json
    python -m mlrun_magic run example_notebooks/quickstart -P alpha=0.5
    python -m mlrun_magic run https://github.com/org/repo#projects/train -v v1.2 -e train
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from mlrun_magic.errors import ArgumentsError, MlrunMagicError

#: The arguments of a launch, shared by ``run``/``plan`` here and by ``%project_run``.
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
    (("-b", "--backend"), dict(default=None, choices=("local", "databricks"),
                               help="Where to run: local (default) or databricks.")),
    (("-m", "--mode"), dict(dest="backend", default=argparse.SUPPRESS,
                            choices=("local", "databricks"),
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
    (("--env-manager",), dict(default=None, choices=("local", "virtualenv", "uv", "conda"),
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
    (("--wait",), dict(action=argparse.BooleanOptionalAction, default=None,
                       help="Block until the run ends (local runs from a terminal always do).")),
    (("--dry-run",), dict(action="store_true",
                          help="Resolve and show everything; start nothing.")),
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
    """A :class:`~mlrun_magic.plan.RunRequest` from parsed :data:`RUN_ARGUMENTS`."""
    from mlrun_magic.plan import RunRequest

    fields = dict(uri=args.uri, entry_point=args.entry_point,
                  parameters=parse_param_list(args.param_list), version=args.version,
                  backend=args.backend or "local", backend_config=args.backend_config,
                  experiment_name=args.experiment_name, experiment_id=args.experiment_id,
                  env_manager=args.env_manager, run_name=args.run_name,
                  tracking_uri=args.tracking_uri, profile=args.profile,
                  code_location=args.code_location)
    fields.update(overrides)
    return RunRequest(**fields)


class UsageError(ArgumentsError):
    """argparse's own complaint about the command line (unknown flag, missing value...)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        super().__init__(f"{parser.prog}: {message}",
                         hint=f"See `{parser.prog} --help` for the flags.")
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # reported by main(): usage text, or a JSON error with --json
        raise UsageError(self, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mlrun_magic",
                     description="Plan and run MLflow Projects locally or on Databricks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for name, help_text in (("plan", "resolve a run and show it, without running anything"),
                            ("run", "launch a run")):
        p = sub.add_parser(name, help=help_text, description=help_text)
        for flags, kwargs in RUN_ARGUMENTS:
            if name == "plan" and flags[0] in ("--wait", "--dry-run"):
                continue
            p.add_argument(*flags, **kwargs)
        p.add_argument("--json", action="store_true", help="Print one JSON object.")
    for name, help_text in (("status", "show a run's status and links"),
                            ("cancel", "cancel a Databricks run and mark its MLflow run KILLED"),
                            ("logs", "print the end of a Databricks run's driver output")):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run", metavar="RUN", help="MLflow run id or Databricks job run id")
        p.add_argument("--profile", default=None, metavar="NAME",
                       help="Databricks config profile (~/.databrickscfg).")
        p.add_argument("--tracking-uri", default=None, metavar="URI",
                       help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or databricks).")
        if name == "logs":
            p.add_argument("--tail", type=tail_count, default=100,
                           help="How many lines (default 100).")
        p.add_argument("--json", action="store_true", help="Print one JSON object.")
    p = sub.add_parser("package", help="build the project archive a Databricks run uploads",
                       description="Build the reproducible project archive (the same code path "
                                   "as -b databricks) and show its SHA-256, size and exclusions.")
    p.add_argument("uri", nargs="?", default=None, metavar="URI", help=RUN_ARGUMENTS[0][1]["help"])
    p.add_argument("-v", "--version", default=None, help="Git branch, tag or commit SHA.")
    p.add_argument("--out", default=None, metavar="FILE", help="Also copy the archive to FILE.")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y/%m/%d %H:%M:%S"))
    root = logging.getLogger("mlrun_magic")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _fail(exc: MlrunMagicError, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": exc.to_dict()}))
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 2


def cmd_plan(args) -> int:
    from mlrun_magic.plan import make_plan

    plan = make_plan(request_from_args(args))
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.describe())
    return 0


def cmd_run(args) -> int:
    from mlrun_magic.launcher import launch
    from mlrun_magic.plan import make_plan

    plan = make_plan(request_from_args(args))
    if args.dry_run:
        out = plan.to_dict()
        if plan.backend == "databricks":
            from mlrun_magic.backends.databricks import dry_run

            out["databricks"] = dry_run(plan)
        print(json.dumps(out, indent=2) if args.json else
              plan.describe() + ("\n" + json.dumps(out.get("databricks"), indent=2)
                                 if "databricks" in out else ""))
        return 0
    for warning in plan.warnings:
        logging.getLogger("mlrun_magic").warning(warning)
    # A local run is a child of this process: it is always waited for, as `mlflow run` does.
    wait = True if plan.backend == "local" else bool(args.wait)
    run = None
    try:
        run = launch(plan, echo=not args.json, progress=_terminal_progress())
        _print_links(run)
        state = run.wait() if wait else run.status()
    except KeyboardInterrupt:
        if run is not None and wait:
            run.cancel()  # a no-op when wait() already cancelled it
        # The backend has logged what it undid when the run was not started yet.
        print("Interrupted: the run was cancelled and marked KILLED." if run is not None
              else "Interrupted.", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(run.to_dict()))
    else:
        print(f"Run {run.run_id} {state.status}"
              f"{': ' + state.message if state.message else ''}.")
        if run.links.job_run:
            print(f"Databricks job run: {run.links.job_run}")
        print(f"MLflow run: {run.links.mlflow_run or run.run_id}")
        if wait and plan.backend == "databricks" and state.status != "FINISHED":
            print(run.logs(tail=30), file=sys.stderr)
    if not wait:
        return 0 if state.status not in ("FAILED", "KILLED") else 1
    return 0 if state.status == "FINISHED" else 1


def _print_links(run) -> None:
    links = run.links
    if links.job_run:
        print(f"Databricks job run: {links.job_run}", file=sys.stderr)
    print(f"MLflow run: {links.mlflow_run or run.run_id}", file=sys.stderr)


def _attach(args):
    from mlrun_magic.backends.databricks import DatabricksSubmittedRun
    from mlrun_magic.errors import BackendError
    from mlrun_magic.backends.tracking_uri import open_tracking

    if not (args.run.isascii() and args.run.isdigit()):
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri and not uri.startswith("databricks"):
            tags = open_tracking(uri).get_run(args.run)["tags"]
            if "mlflow.databricks.shellJobRunID" not in tags:
                raise BackendError(f"run {args.run} is a local run: only Databricks runs can be "
                                   "re-attached from here",
                                   hint="Its output is in <project>/.mlrun_magic/logs/.")
    return DatabricksSubmittedRun.attach(args.run, profile=args.profile,
                                         tracking_uri=args.tracking_uri)


def cmd_status(args) -> int:
    run = _attach(args)
    state = run.status()
    if args.json:
        print(json.dumps(run.to_dict()))
    else:
        print(f"{state.status}{': ' + state.message if state.message else ''}")
        for label, url in (("Databricks job run", run.links.job_run),
                           ("MLflow run", run.links.mlflow_run),
                           ("Experiment", run.links.experiment)):
            if url:
                print(f"{label}: {url}")
    return 0


def cmd_cancel(args) -> int:
    run = _attach(args)
    state = run.cancel()
    print(json.dumps(run.to_dict()) if args.json else f"{state.status}: {state.message}")
    return 0 if state.is_terminal else 1


def cmd_logs(args) -> int:
    run = _attach(args)
    text = run.logs(tail=args.tail)
    print(json.dumps({"run_id": run.run_id, "logs": text}) if args.json else text)
    return 0


def cmd_package(args) -> int:
    import shutil

    from mlrun_magic.errors import PackagingError
    from mlrun_magic.packaging import build_archive
    from mlrun_magic.plan import RunRequest, check_request, resolve_project_location

    request = RunRequest(uri=args.uri, version=args.version)
    check_request(request)
    source = resolve_project_location(request)
    archive = build_archive(source.directory, progress=_terminal_progress())
    if args.out:
        try:
            shutil.copyfile(archive.path, args.out)
        except OSError as exc:
            raise PackagingError(f"cannot write the archive to {args.out}: "
                                 f"{exc.strerror or exc}",
                                 hint="Give a file path in a folder that exists and that you "
                                      "can write to.") from None
    print(json.dumps(archive.to_dict(), indent=2) if args.json else archive.summary())
    return 0


def _terminal_progress():
    from mlrun_magic.packaging import TerminalProgress

    return TerminalProgress() if sys.stderr.isatty() else None


def wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` (or an abbreviation argparse accepts) is on the command line, so
    that even a usage error is printed as JSON."""
    return any(a.startswith("--j") and "--json".startswith(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 1 for a run that did not finish, 2 for a user error
    (``--json``: one JSON object on stdout, ``{"error": {"type", "message", "hint"}}``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        if wants_json(argv):
            return _fail(exc, True)
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc.message.removeprefix(exc.parser.prog + ': ')}",
              file=sys.stderr)
        return 2
    _configure_logging()
    handler = {"plan": cmd_plan, "run": cmd_run, "status": cmd_status, "cancel": cmd_cancel,
               "logs": cmd_logs, "package": cmd_package}[args.command]
    try:
        return handler(args)
    except MlrunMagicError as exc:
        return _fail(exc, args.json)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
