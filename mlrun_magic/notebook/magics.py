"""``%project_run`` and ``%%project_run``: launch the notebook's MLflow Project from a cell.

A thin front end: it parses the line (the same argument table as ``python -m mlrun_magic``)
and the YAML cell body into a :class:`~mlrun_magic.planning.RunRequest`, calls the run
service, and shows what it returns (live views through :mod:`mlrun_magic.notebook.live`).
"""

from __future__ import annotations

import argparse
import os
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from mlrun_magic.arguments import (RUN_ARGUMENTS, SWEEP_ARGUMENTS, parse_docker_args,
                                   parse_param_list, tail_count)
from mlrun_magic.errors import ArgumentsError

SUBCOMMANDS = ("status", "cancel", "logs", "list", "open", "panel", "doctor", "compare")


class ProjectRunUsageError(UsageError, ArgumentsError):
    """A malformed ``%project_run`` line.

    A ``UsageError`` (so ``pytest.raises(UsageError)`` and IPython users see what they
    expect), but not *the* ``UsageError`` class, which IPython only prints to stderr: this one
    goes through ``_render_traceback_``, so the kernel sends an ``error`` and the cell fails.
    """


def split_line(line: str) -> list[str]:
    """The magic line as words, split the way a POSIX shell splits them.

    Quotes group and are removed (``-P 'label=a b'`` is one word, ``label=a b``), a backslash
    escapes the next character, and ``#`` is an ordinary character. IPython has already
    replaced ``{name}`` and ``$name`` with the notebook variables when the magic sees the line.
    """
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        problem = ("has an unclosed quote" if "quotation" in str(exc)
                   else "ends with a lone backslash" if "escaped" in str(exc) else str(exc))
        raise ProjectRunUsageError(
            f"the %project_run line {problem}: {line.strip()[:120]}",
            hint="The line is split like a shell command line: close each ' or \" (a value "
                 "with an apostrophe goes in double quotes, \"it's\"), or put the values in "
                 "the cell body under parameters:.") from None


def _run_arguments(func):
    # magic_arguments builds its parser from decorators in source order; apply them reversed.
    for flags, kwargs in reversed(RUN_ARGUMENTS + SWEEP_ARGUMENTS):
        func = argument(*flags, **kwargs)(func)
    return func


class _HelpShown(Exception):
    """``-h``: the help was printed, nothing else is done."""


class _SubParser(argparse.ArgumentParser):
    def error(self, message):
        raise ProjectRunUsageError(f"{self.prog}: {message}",
                                   hint=f"See `{self.prog} -h` for its arguments.")

    def exit(self, status=0, message=None):  # after -h: back to the magic, not SystemExit
        raise _HelpShown

    def parse_args(self, args=None, namespace=None):
        """The parsed words, or ``None`` when ``-h`` printed the help."""
        try:
            return super().parse_args(args, namespace)
        except _HelpShown:
            return None


def _subparser(name: str, help_text: str, run_arg: bool = True) -> _SubParser:
    parser = _SubParser(prog=f"%project_run {name}", description=help_text)
    if run_arg:
        parser.add_argument("run", nargs="?", default=None,
                            help="MLflow run id (or a prefix), or Databricks job run id; "
                                 "default: the last run")
    return parser


def _usage_first(doc: str) -> str:
    """The help as ``%project_run?`` shows it: the usage line first, wrapped under its first
    flag. magic_arguments writes the usage as a reST literal block, after a lone ``::``."""
    usage, sep, rest = doc.removeprefix("::").lstrip("\n").partition("\n\n")
    first, *more = [line.strip() for line in usage.splitlines()]
    indent = " " * (len(first.split(" ")[0]) + 1)
    return "\n".join([first] + [indent + line for line in more]) + sep + rest


@magics_class
class ProjectRunMagics(Magics):
    """The ``%project_run`` magic, bound to one settings object and one live-run registry."""

    def __init__(self, shell, settings, service, views):
        super().__init__(shell)
        self.settings = settings
        self.service = service
        self.views = views

    @magic_arguments()
    @_run_arguments
    @line_cell_magic
    def project_run(self, line, cell=None):
        """Launch the MLflow Project that holds this notebook, locally or on Databricks.

        The project is found by walking up from the notebook's folder to the nearest MLproject
        (or give URI: a folder, file://, or git URL with #subdirectory). The cell shows the
        Databricks job-run URL, the MLflow run link and a status that keeps updating while
        you work on; the cell's value is the SubmittedRun (``run = _``; ``run.wait()``).

        Flags are those of ``mlflow run``. The line is split into words the way a POSIX shell
        splits a command line: quotes group and are removed (``-P 'label=two words'``,
        ``-P "note=it's"``), a backslash escapes the next character, an unclosed quote is an
        error. ``{name}`` in the line is first replaced by the notebook variable ``name``
        (IPython's expansion), so ``-P alpha={alpha}`` works; quote it when the value may
        hold spaces (``-P "label={label}"``), and put values with quotes of both kinds, or
        JSON, in the cell body rather than on the line. Settings (``%config ProjectRun.backend
        = "databricks"``, ``ProjectRun.profile``, ``cluster_spec``, ``code_location``,
        ``experiment_name``, ``poll_interval``) give the defaults; the line wins over the cell
        body, which wins over the settings. Credentials are never arguments: they come from
        ~/.databrickscfg profiles or DATABRICKS_* variables.

        Cell form: the body is YAML (never Python) with ``parameters:``, ``cluster:``,
        ``libraries:`` and other runs/submit keys; ``#`` lines are comments. Launch keys
        (``entry_point``, ``run_name``, ``version``, ...) are text (quote ``version: '1.10'``);
        ``wait`` is true/false (or yes/no).

        Subcommands (RUN defaults to the last run; each has ``-h``)::

            %project_run status [RUN]     refresh the status view (re-attaches after a restart)
            %project_run cancel [RUN]     cancel the run; its MLflow run ends KILLED
            %project_run logs [RUN] [--tail N | --follow]
            %project_run list             this kernel's runs and the project's history
            %project_run open [RUN]       the links again
            %project_run panel [URI]      the launch panel (ipywidgets)
            %project_run doctor [flags]   check all that can fail the run; fails on any ✗
            %project_run compare [RUN ...]  parameters, metrics, git and code changes side by side

        RUN is an MLflow run id (or a prefix) or a Databricks job run id; runs launched from
        a terminal (``python -m mlrun_magic run``) or ``mlrun_magic.run()`` are in the
        project's history too. The first word chooses a subcommand: to launch a project folder
        named like one (``status``, ``list``...), write it as a path, ``%project_run ./status``.

        Examples::

            %project_run --dry-run -P alpha=0.5
            %project_run -e train -P alpha={alpha} --experiment-name /Shared/demo
            %project_run https://github.com/org/repo#projects/train -v v1.2 -b databricks -c cluster.json

            %%project_run -b databricks --wait
            parameters:
              alpha: 0.5
            cluster:
              spark_version: 15.4.x-cpu-ml-scala2.12
              node_type_id: Standard_D4ds_v5
              num_workers: 1
        """
        words = split_line(line)
        if words in (["-h"], ["--help"]):  # the flags; %project_run? has the whole story
            print("usage: " + self.project_run.parser.format_help().lstrip(":\n ") +
                  "Subcommands: " + ", ".join(SUBCOMMANDS) + " (each takes -h). "
                  "See %project_run? for more.")
            return None
        if words and words[0] in SUBCOMMANDS:
            if words[0] == "doctor":  # the launch flags, and a cell body as a launch's
                return self._cmd_doctor(words[1:], cell)
            if cell is not None:
                raise ProjectRunUsageError(f"%%project_run {words[0]} takes no cell body")
            return getattr(self, f"_cmd_{words[0]}")(words[1:])
        try:
            args = self.project_run.parser.parse_args(words)
            request = self.build_request(args, cell)
        except ArgumentsError as exc:
            raise ProjectRunUsageError(exc.message, hint=exc.hint) from None
        except UsageError as exc:  # argparse's own complaints, from magic_arguments' parser
            raise ProjectRunUsageError(f"%project_run: {exc}",
                                       hint="See %project_run? for the flags.") from None
        wait = self.settings.wait if args.wait is None else args.wait
        if args.cell_body.sweep is not None or args.max_parallel or args.metric or args.goal:
            from mlrun_magic.notebook.sweep_cell import launch_sweep_cell

            return launch_sweep_cell(self, request, args, dry_run=args.dry_run, wait=wait)
        return self.launch(request, dry_run=args.dry_run, wait=wait)

    project_run.__doc__ = _usage_first(project_run.__doc__)

    # -- launching -------------------------------------------------------------------------
    def build_request(self, args, cell):
        """Line flags over cell body over settings, as a RunRequest."""
        from mlrun_magic.notebook.cellbody import parse_cell_body
        from mlrun_magic.planning import RunRequest

        line_params = parse_param_list(args.param_list)
        body = args.cell_body = parse_cell_body(cell)
        opts = body.options
        if "wait" in opts and args.wait is None:
            args.wait = bool(opts["wait"])
        s = self.settings
        return RunRequest(
            uri=args.uri or opts.get("uri"),
            entry_point=args.entry_point if args.entry_point != "main"
            else opts.get("entry_point", "main"),
            parameters={**body.parameters, **line_params},
            version=opts.get("version") if args.version is None else args.version,
            backend=args.backend or opts.get("backend") or s.backend,
            backend_config=args.backend_config or body.backend_config or s.cluster_spec,
            experiment_name=args.experiment_name or opts.get("experiment_name") or (
                None if args.experiment_id or opts.get("experiment_id") else s.experiment_name),
            experiment_id=args.experiment_id or opts.get("experiment_id"),
            env_manager=args.env_manager or opts.get("env_manager") or s.env_manager,
            run_name=args.run_name or opts.get("run_name"),
            tracking_uri=args.tracking_uri or opts.get("tracking_uri") or s.tracking_uri,
            profile=args.profile or opts.get("profile") or s.profile,
            code_location=args.code_location or opts.get("code_location") or s.code_location,
            docker_args=parse_docker_args(args.docker_args) or None, build_image=args.build_image,
            user_ns=self.shell.user_ns, cwd=os.getcwd())

    def launch(self, request, *, dry_run: bool = False, wait: bool = False):
        """Launch a run and show its live view in the cell (``--wait``: block until it ends);
        ``dry_run``: show the plan instead, starting nothing."""
        from IPython.display import display

        from mlrun_magic.notebook.progress import HtmlProgress
        from mlrun_magic.notebook.render import PlanView

        if dry_run:
            display(PlanView.of(self.service.dry_run(request)))
            return None
        plan = self.service.plan(request)
        if plan.warnings:  # before the run starts, where they can still change the line
            from mlrun_magic.notebook.notices import WarningsView

            display(WarningsView(plan.warnings))
        watched = self.service.launch(plan, progress=HtmlProgress())
        self.views.show(watched)
        if wait:
            self.service.wait_for_success(watched)
        return watched.run

    # -- subcommands -----------------------------------------------------------------------
    def _attach(self, ref):
        """The run ``ref`` (default: the latest) of this kernel or of the project's history."""
        return self.service.attach(ref, project_dir=self._project_dir())

    def _sweep(self, ref):
        """The sweep ``ref`` of this kernel or of the project's record (after a restart:
        rebuilt, and launching its remaining points if its kernel stopped), else None."""
        if not ref:
            return None
        return self.service.find_sweep(ref) or self.service.find_sweep(
            ref, project_dir=self._project_dir())

    def _project_dir(self):
        from mlrun_magic.project.uri import find_project_dir, locate_notebook_dir

        start, _ = locate_notebook_dir(user_ns=self.shell.user_ns)
        return find_project_dir(start)

    def _cmd_status(self, words):
        args = _subparser("status", "Refresh and show a run's status (re-attaches to a run of "
                                    "the project's history after a restart).").parse_args(words)
        if args is None:
            return None
        if (sweep := self._sweep(args.run)) is not None:
            from mlrun_magic.notebook.sweep_cell import show_sweep

            show_sweep(sweep)
            return sweep
        watched = self._attach(args.run)
        self.service.refresh(watched)
        self.views.show(watched)
        return watched.run

    def _cmd_cancel(self, words):
        args = _subparser("cancel", "Cancel a run; its MLflow run ends KILLED.").parse_args(words)
        if args is None:
            return None
        if (sweep := self._sweep(args.run)) is not None:
            from mlrun_magic.notebook.sweep_cell import show_sweep

            sweep.cancel()  # every active point, and the queue
            show_sweep(sweep)
            return sweep
        watched = self._attach(args.run)
        self.service.cancel(watched)
        self.views.show(watched)
        return watched.run

    def _cmd_logs(self, words):
        parser = _subparser("logs", "Print the end of a run's output.")
        parser.add_argument("--tail", type=tail_count, default=100,
                            help="How many lines (default 100).")
        parser.add_argument("--follow", action="store_true", help="Stream the output until "
                            "the run ends (Ctrl-C stops following, not the run).")
        args = parser.parse_args(words)
        if args is None:
            return None
        if args.follow:
            from mlrun_magic.notebook.follow_view import follow_in_cell

            follow_in_cell(self.service, self._attach(args.run))
            return None
        print(self.service.logs(self._attach(args.run), tail=args.tail))
        return None

    def _cmd_open(self, words):
        args = _subparser("open", "Show a run's links again.").parse_args(words)
        if args is None:
            return
        from IPython.display import display

        from mlrun_magic.notebook.live import snapshot
        from mlrun_magic.notebook.run_view import RunView

        display(RunView(snapshot(self._attach(args.run))))

    def _cmd_list(self, words):
        from mlrun_magic.service.listing import DEFAULT_LIMIT

        parser = _subparser("list", "This kernel's runs and the project's history, newest "
                                    "first, each in its current state.", run_arg=False)
        parser.add_argument("--all", action="store_true",
                            help=f"every run in the history (default: the newest {DEFAULT_LIMIT})")
        args = parser.parse_args(words)
        if args is None:
            return
        from IPython.display import display

        from mlrun_magic.notebook.render import RunListView

        runs = self.service.runs(self._project_dir(), refresh=True)
        shown = runs if args.all else runs[-DEFAULT_LIMIT:]
        display(RunListView(shown, hidden=len(runs) - len(shown)))

    def _cmd_compare(self, words):
        from mlrun_magic.notebook.compare_view import COMPARE_HELP, CompareView

        parser = _subparser("compare", COMPARE_HELP, run_arg=False)
        parser.add_argument("runs", nargs="*", metavar="RUN", help="the runs (or a sweep)")
        args = parser.parse_args(words)
        if args is None:
            return None
        return CompareView(self.service.compare(args.runs, project_dir=self._project_dir()))

    def _cmd_panel(self, words):
        parser = _subparser("panel", "The launch panel (ipywidgets) for the notebook's project "
                                     "or URI.", run_arg=False)
        parser.add_argument("uri", nargs="?", default=None, help="The project (default: the "
                                                                 "notebook's).")
        args = parser.parse_args(words)
        if args is None:
            return
        from IPython.display import display

        from mlrun_magic.notebook.panel import LaunchPanel

        display(LaunchPanel(self.service, self.views, self.settings, uri=args.uri))

    def _cmd_doctor(self, words, cell=None):
        from mlrun_magic.notebook.doctor_view import DOCTOR_HELP, doctor_arguments, show_doctor

        args = doctor_arguments(_subparser("doctor", DOCTOR_HELP, run_arg=False)).parse_args(words)
        if args is not None:
            show_doctor(lambda: self.service.doctor(self.build_request(args, cell)))
