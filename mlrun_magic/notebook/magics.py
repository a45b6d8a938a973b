"""``%project_run`` and ``%%project_run``: launch the notebook's MLflow Project from a cell.

A thin front end: it parses the line (the same argument table as ``python -m mlrun_magic``)
and the YAML cell body, builds a :class:`~mlrun_magic.planning.RunRequest`, calls the launcher,
and shows the run's live view. Everything else lives in the core.
"""

from __future__ import annotations

import argparse
import os
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from mlrun_magic.arguments import RUN_ARGUMENTS, parse_param_list, tail_count
from mlrun_magic.errors import ArgumentsError, MlrunMagicError, RunFailedError

SUBCOMMANDS = ("status", "cancel", "logs", "list", "open", "panel")


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
    for flags, kwargs in reversed(RUN_ARGUMENTS):
        func = argument(*flags, **kwargs)(func)
    return func


class _SubParser(argparse.ArgumentParser):
    def error(self, message):
        raise ProjectRunUsageError(f"{self.prog}: {message}")


def _subparser(name: str, help_text: str, run_arg: bool = True) -> _SubParser:
    parser = _SubParser(prog=f"%project_run {name}", description=help_text, add_help=False)
    if run_arg:
        parser.add_argument("run", nargs="?", default=None,
                            help="MLflow run id (or a prefix), or Databricks job run id; "
                                 "default: the last run")
    return parser


@magics_class
class ProjectRunMagics(Magics):
    """The ``%project_run`` magic, bound to one settings object and one live-run registry."""

    def __init__(self, shell, settings, live):
        super().__init__(shell)
        self.settings = settings
        self.live = live

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

        Subcommands (RUN defaults to the last run)::

            %project_run status [RUN]     refresh the status view (re-attaches after a restart)
            %project_run cancel [RUN]     cancel the run; its MLflow run ends KILLED
            %project_run logs [RUN] [--tail N]
            %project_run list             this kernel's runs and the project's history
            %project_run open [RUN]       the links again
            %project_run panel            the launch panel (ipywidgets)

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
        if words and words[0] in SUBCOMMANDS:
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
        return self.launch(request, dry_run=args.dry_run,
                           wait=self.settings.wait if args.wait is None else args.wait)

    # -- launching -------------------------------------------------------------------------
    def build_request(self, args, cell):
        """Line flags over cell body over settings, as a RunRequest."""
        from mlrun_magic.notebook.cellbody import parse_cell_body
        from mlrun_magic.planning import RunRequest

        line_params = parse_param_list(args.param_list)
        body = parse_cell_body(cell)
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
            user_ns=self.shell.user_ns, cwd=os.getcwd())

    def launch(self, request, *, dry_run: bool = False, wait: bool = False):
        """Plan, submit and show a run in the cell's output (``--wait``: block until it ends)."""
        from IPython.display import display

        if dry_run:
            display(self.dry_run(request))
            return None
        tracked = self.submit(request, progress=self.progress_display())
        self.live.show(tracked, poll=not wait)
        if wait:
            state = self.live.wait(tracked)
            if state.status != "FINISHED":
                tracked.run.raise_for_status()
                raise RunFailedError(f"run {tracked.run.run_id} ended {state.status}")
        return tracked.run

    def dry_run(self, request):
        """The :class:`~mlrun_magic.notebook.render.PlanView` of a request; nothing starts."""
        from mlrun_magic.notebook.render import PlanView
        from mlrun_magic.planning import make_plan

        plan = make_plan(request)
        databricks = None
        if plan.backend == "databricks":
            from mlrun_magic.backends.databricks import dry_run as databricks_dry_run

            databricks = databricks_dry_run(plan)
        return PlanView(plan.to_dict(), databricks)

    def submit(self, request, *, progress=None):
        """Submit a run without displaying anything; return its live-registry entry.

        The shared path of the magic and the launch panel: plan, launch, record in the
        project's history, register for live updates, first status.
        """
        from mlrun_magic.history import record_submission
        from mlrun_magic.launcher import launch
        from mlrun_magic.planning import make_plan

        plan = make_plan(request)
        run = launch(plan, progress=progress)
        try:
            record_submission(plan.project_dir, run)
        except OSError:
            pass  # a read-only project folder: the run goes on, only the history is missing
        tracked = self.live.add(run, plan.project_dir)
        self.live.refresh(tracked)
        return tracked

    def progress_display(self):
        """A packaging progress bar in the cell (HTML, updated in place)."""
        from mlrun_magic.notebook.live import HtmlProgress

        return HtmlProgress()

    # -- subcommands -----------------------------------------------------------------------
    def _tracked(self, ref):
        tracked = self.live.find(ref)
        if tracked is not None:
            return tracked
        entry = self._history_entry(ref)
        if entry is None:
            raise MlrunMagicError(
                f"no run {ref!r} in this kernel or in the project's history" if ref else
                "no run yet in this kernel or in the project's history",
                hint="Launch one with %project_run, or see %project_run list.")
        if entry.get("backend") != "databricks":
            raise MlrunMagicError(f"run {entry['run_id']} ran locally in an earlier kernel; its "
                                  f"last known status is {entry.get('status')}",
                                  hint="Its output is in .mlrun_magic/logs/ in the project.")
        from mlrun_magic.backends.databricks import DatabricksSubmittedRun

        run = DatabricksSubmittedRun.attach(str(entry.get("job_run_id") or entry["run_id"]),
                                            profile=self.settings.profile,
                                            tracking_uri=self.settings.tracking_uri)
        run.info.entry_point = entry.get("entry_point", "")
        run.info.project = entry.get("project", run.info.project)
        return self.live.add(run, self._project_dir())

    def _project_dir(self):
        from mlrun_magic.project.uri import find_project_dir, locate_notebook_dir

        start, _ = locate_notebook_dir(user_ns=self.shell.user_ns)
        return find_project_dir(start)

    def _history_entry(self, ref):
        from mlrun_magic.history import read_history

        folder = self._project_dir()
        entries = read_history(folder) if folder else []
        if not ref:
            return entries[-1] if entries else None
        for entry in reversed(entries):
            if entry["run_id"].startswith(ref) or str(entry.get("job_run_id")) == ref:
                return entry
        return None

    def _cmd_status(self, words):
        args = _subparser("status", "Refresh and show a run's status.").parse_args(words)
        tracked = self._tracked(args.run)
        self.live.refresh(tracked)
        self.live.show(tracked)
        return tracked.run

    def _cmd_cancel(self, words):
        args = _subparser("cancel", "Cancel a run.").parse_args(words)
        tracked = self._tracked(args.run)
        tracked.state = tracked.run.cancel()
        self.live.refresh(tracked)
        self.live.update_views(tracked)
        self.live.show(tracked, poll=False)
        return tracked.run

    def _cmd_logs(self, words):
        parser = _subparser("logs", "Print the end of a run's output.")
        parser.add_argument("--tail", type=tail_count, default=100)
        args = parser.parse_args(words)
        tracked = self._tracked(args.run)
        print(tracked.run.logs(tail=args.tail))

    def _cmd_open(self, words):
        args = _subparser("open", "Show a run's links again.").parse_args(words)
        tracked = self._tracked(args.run)
        from IPython.display import display

        from mlrun_magic.notebook.render import RunView

        display(RunView(self.live.snapshot(tracked)))

    def _cmd_list(self, words):
        if words:
            raise ProjectRunUsageError("%project_run list takes no arguments")
        from IPython.display import display

        from mlrun_magic.history import read_history
        from mlrun_magic.notebook.render import RunListView

        folder = self._project_dir()
        runs = {e["run_id"]: e for e in (read_history(folder) if folder else [])}
        for tracked in self.live.runs.values():
            entry = runs.setdefault(tracked.run.run_id, {"run_id": tracked.run.run_id})
            entry.update(status=tracked.state.status, backend=tracked.run.backend,
                         entry_point=tracked.run.info.entry_point,
                         links=tracked.run.links.to_dict())
        display(RunListView(list(runs.values())))

    def _cmd_panel(self, words):
        from IPython.display import display

        from mlrun_magic.notebook.panel import LaunchPanel

        if len(words) > 1:
            raise ProjectRunUsageError("%project_run panel takes at most one URI")
        display(LaunchPanel(self, uri=words[0] if words else None))
