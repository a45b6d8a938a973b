"""``python -m mlrun_magic``: plan and run MLflow Projects from a terminal or CI.

The flags mirror ``mlflow run`` so habits and copied commands carry over; the same argument
table (:mod:`mlrun_magic.arguments`) declares the ``%project_run`` magic, so the notebook and
the terminal agree.

Examples::

    python -m mlrun_magic plan example_notebooks/quickstart -P alpha=0.5 --json
    python -m mlrun_magic run example_notebooks/quickstart -P alpha=0.5
    python -m mlrun_magic run https://github.com/org/repo#projects/train -v v1.2 -e train
    python -m mlrun_magic compare 31db42 a8f0c1 --json
    python -m mlrun_magic doctor -b databricks -c cluster.json --code-location /Volumes/m/s/v
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from mlrun_magic.arguments import RUN_ARGUMENTS, SWEEP_ARGUMENTS, request_from_args, tail_count
from mlrun_magic.doctor_text import dry_run_lines, print_report
from mlrun_magic.errors import ArgumentsError, MlrunMagicError


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
                            ("run", "launch a run"),
                            ("doctor", "check everything that can fail the run, in parallel; "
                                       "exit 1 on any failed check")):
        p = sub.add_parser(name, help=help_text, description=help_text)
        for flags, kwargs in RUN_ARGUMENTS:
            if name != "run" and flags[0] in ("--wait", "--dry-run"):
                continue
            p.add_argument(*flags, **kwargs)
        p.add_argument("--json", action="store_true", help="Print one JSON object.")
        if name == "run":
            p.add_argument("--quiet", "-q", action="store_true",
                           help="With --wait: do not print the run's output as it is written.")
            p.add_argument("--sweep", default=None, metavar="FILE",
                           help="Launch a run per point of the sweep in FILE (YAML: a grid, a "
                                "list of points, or sweep: with parameters:, max_parallel:, "
                                "metric:, goal:); waits and prints the table.")
            for flags, kwargs in SWEEP_ARGUMENTS:
                p.add_argument(*flags, **kwargs)
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
            p.add_argument("--follow", "-f", action="store_true", help="Print the output as "
                           "it is written until the run ends; exit 0 if it FINISHED, else 1.")
        p.add_argument("--json", action="store_true", help="Print one JSON object.")
    from mlrun_magic.cli_compare import add_parser

    add_parser(sub)
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


def _service():
    from mlrun_magic.service import default_service

    return default_service()


def _warn(plan) -> None:
    """The plan's warnings as ``warning: ...`` lines on stderr (plan/--dry-run text has them)."""
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_plan(args) -> int:
    plan = _service().plan(request_from_args(args))
    if args.json:
        _warn(plan)
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.describe())
    return 0


def cmd_run(args) -> int:
    service = _service()
    if args.sweep:
        from mlrun_magic.cli_sweep import run_sweep

        return run_sweep(service, args)
    plan = service.plan(request_from_args(args))
    if args.dry_run:
        if args.json:
            _warn(plan)
        dry = service.dry_run(plan)
        out = dry.to_dict()
        print(json.dumps(out, indent=2) if args.json else
              plan.describe() + ("\n" + json.dumps(out.get("databricks"), indent=2)
                                 if "databricks" in out else ""))
        if not args.json:
            if dry.code_change:
                print(f"Code: {dry.code_change}")
            print("\n".join(dry_run_lines(dry.checks, plan.backend == "databricks")))
        return 0
    _warn(plan)
    # A local run is a child of this process: it is always waited for, as `mlflow run` does.
    wait = True if plan.backend == "local" else bool(args.wait)
    watched = None
    try:
        stream = not args.json and not args.quiet
        watched = service.launch(plan, echo=stream, progress=_terminal_progress())
        _print_links(watched.run)
        stream = stream and wait and plan.backend == "databricks"
        state = service.follow_logs(watched, _print_text) if stream else \
            service.wait(watched) if wait else watched.state
    except KeyboardInterrupt:
        if watched is not None:
            from mlrun_magic.tracking import deferred_interrupts

            with deferred_interrupts():  # a second Ctrl-C must not leave it half cancelled
                service.cancel(watched)  # a no-op when wait() already cancelled it
        # The backend has logged what it undid when the run was not started yet.
        print("Interrupted: the run was cancelled and marked KILLED." if watched is not None
              else "Interrupted.", file=sys.stderr)
        return 130
    run = watched.run
    if args.json:
        print(json.dumps({**run.to_dict(state), "warnings": list(plan.warnings)}))
    else:
        print(f"Run {run.run_id} {state.status}"
              f"{': ' + state.message if state.message else ''}.")
        if run.links.job_run:
            print(f"Databricks job run: {run.links.job_run}")
        print(f"MLflow run: {run.links.mlflow_run or run.run_id}")
        if wait and not stream and plan.backend == "databricks" and state.status != "FINISHED":
            print(service.logs(watched, tail=30), file=sys.stderr)
    if not wait:
        return 0 if state.status not in ("FAILED", "KILLED") else 1
    return 0 if state.status == "FINISHED" else 1


def cmd_doctor(args) -> int:
    report = _service().doctor(request_from_args(args))
    return print_report(report, as_json=args.json, stream=sys.stdout)


def _print_links(run) -> None:
    links = run.links
    if links.job_run:
        print(f"Databricks job run: {links.job_run}", file=sys.stderr)
    print(f"MLflow run: {links.mlflow_run or run.run_id}", file=sys.stderr)


def _attach(args):
    """The run ``args.run``: from the history of the project holding the current folder,
    else looked up on the workspace."""
    from pathlib import Path

    from mlrun_magic.project.uri import find_project_dir

    return _service().attach(args.run, project_dir=find_project_dir(Path.cwd()),
                             profile=args.profile, tracking_uri=args.tracking_uri,
                             ask_backend=True)


def cmd_status(args) -> int:
    watched = _attach(args)
    state = _service().refresh(watched)
    run = watched.run
    if args.json:
        print(json.dumps(run.to_dict(state)))
    else:
        print(f"{state.status}{': ' + state.message if state.message else ''}")
        for label, url in (("Databricks job run", run.links.job_run),
                           ("MLflow run", run.links.mlflow_run),
                           ("Experiment", run.links.experiment)):
            if url:
                print(f"{label}: {url}")
    return 0


def cmd_cancel(args) -> int:
    watched = _attach(args)
    state = _service().cancel(watched)
    print(json.dumps(watched.run.to_dict(state)) if args.json else
          f"{state.status}: {state.message}")
    return 0 if state.is_terminal else 1


def _print_text(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def cmd_logs(args) -> int:
    watched = _attach(args)
    if args.follow:  # Ctrl-C: main() says "Interrupted." and exits 130; the run goes on
        state = _service().follow_logs(watched, _print_text)
        print(f"Run {watched.run_id} {state.status}"
              f"{': ' + state.message if state.message else ''}.")
        return 0 if state.status == "FINISHED" else 1
    text = _service().logs(watched, tail=args.tail)
    print(json.dumps({"run_id": watched.run_id, "logs": text}) if args.json else text)
    return 0


def cmd_package(args) -> int:
    import shutil

    from mlrun_magic.errors import PackagingError
    from mlrun_magic.packaging import build_archive
    from mlrun_magic.planning import RunRequest, check_request, resolve_project_location

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


def cmd_compare(args) -> int:
    from mlrun_magic.cli_compare import cmd_compare as compare

    return compare(_service(), args)


def _terminal_progress():
    from mlrun_magic.packaging import TerminalProgress

    return TerminalProgress() if sys.stderr.isatty() else None


def wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` (or an abbreviation argparse accepts) is on the command line, so
    that even a usage error is printed as JSON."""
    return any(a.startswith("--j") and "--json".startswith(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 1 for a run that did not finish (or a failed doctor
    check), 2 for a user error (``--json``: one JSON object on stdout, ``{"error": {"type",
    "message", "hint"}}``)."""
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
               "logs": cmd_logs, "package": cmd_package, "doctor": cmd_doctor,
               "compare": cmd_compare}[args.command]
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
