"""mlrun_magic: launch the MLflow Project that holds your notebook, from the notebook.

In IPython or Jupyter::

    %load_ext mlrun_magic
    %project_run -e train -P alpha=0.5

From Python::

    import mlrun_magic
    mlrun_magic.plan("path/to/project", entry_point="train", parameters={"alpha": 0.5})
    run = mlrun_magic.run("path/to/project", parameters={"alpha": 0.5})

From a terminal: ``python -m mlrun_magic plan|run|status|cancel|logs|package``.

Importing this package is cheap on purpose: everything heavy (requests, git, yaml,
ipywidgets) is imported on first use, so ``%load_ext mlrun_magic`` costs almost nothing.
"""

from __future__ import annotations

from mlrun_magic.version import __version__

__all__ = ["__version__", "load_ipython_extension", "panel", "plan", "run", "sweep",
           "unload_ipython_extension"]

_loaded: dict = {}


def panel(uri=None):
    """The launch panel for ``uri`` (default: the project that holds the notebook).

    Make it a cell's value (or call ``.show()``) to display it. Works after
    ``%load_ext mlrun_magic`` and uses its settings (``%config ProjectRun...``); in a shell
    where the extension is not loaded yet, it loads it first. Needs IPython or Jupyter, and
    ipywidgets in the frontend to show the form (otherwise it says how to enable widgets).
    """
    from IPython import get_ipython

    from mlrun_magic.notebook.panel import LaunchPanel

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("mlrun_magic.panel() needs IPython or Jupyter")
    if _loaded.get("shell") is not shell:
        shell.extension_manager.load_extension("mlrun_magic")
        if _loaded.get("shell") is not shell:  # loaded under another name in sys.modules
            load_ipython_extension(shell)
    return LaunchPanel(_loaded["service"], _loaded["views"], _loaded["settings"], uri=uri)


def load_ipython_extension(ipython) -> None:
    """``%load_ext mlrun_magic``: register ``%project_run``. Touches no network, reads no
    credentials, and is safe to call again (``%reload_ext``)."""
    from mlrun_magic.backends.base import SubmittedRun
    from mlrun_magic.notebook.live import LiveViews
    from mlrun_magic.notebook.magics import ProjectRunMagics
    from mlrun_magic.service import service_for, set_default_service
    from mlrun_magic.settings import ProjectRun

    if _loaded.get("shell") is ipython:
        return
    settings = ProjectRun(parent=ipython)
    ipython.configurables.append(settings)
    service = service_for(ipython, settings)  # kept across %reload_ext
    views = LiveViews(service, ipython)
    ipython.register_magics(ProjectRunMagics(ipython, settings, service, views))
    SubmittedRun.display_hook = views.display_again
    set_default_service(service)  # mlrun_magic.run() in this kernel: the same runs and views
    _loaded.update(shell=ipython, settings=settings, service=service, views=views)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext mlrun_magic``: stop updating the views; remove the magic and its settings."""
    from mlrun_magic.backends.base import SubmittedRun
    from mlrun_magic.service import set_default_service

    if _loaded.get("shell") is not ipython:
        return
    _loaded["views"].stop_all()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("project_run", None)
    if _loaded["settings"] in ipython.configurables:
        ipython.configurables.remove(_loaded["settings"])
    SubmittedRun.display_hook = None
    set_default_service(None)
    _loaded.clear()


def plan(uri=None, **kwargs):
    """Resolve a project run without side effects and return the
    :class:`~mlrun_magic.planning.Plan`.

    Takes the same arguments as :class:`mlrun_magic.planning.RunRequest`: ``uri`` (a folder, a
    ``file://`` path, a git URI or a ``.zip`` file or link, with optional ``#subdirectory``;
    default: the project that holds the notebook or the current folder), ``entry_point``,
    ``parameters``, ``version``, ``env_manager``, ...
    """
    from mlrun_magic.planning import RunRequest
    from mlrun_magic.service import default_service

    return default_service().plan(RunRequest(uri=uri, **kwargs))


def run(uri=None, *, wait=False, echo=False, **kwargs):
    """Launch a project run and return its :class:`~mlrun_magic.backends.base.SubmittedRun`.

    Arguments are those of :func:`plan` plus ``backend`` ("local" by default),
    ``experiment_name``/``experiment_id``, ``run_name`` and ``tracking_uri``. The run is
    recorded in the project's history (``%project_run list`` shows it). With ``wait=True`` it
    returns once the run has ended and raises :class:`~mlrun_magic.errors.RunFailedError` if
    it failed; ``echo=True`` copies a local run's output to stdout.
    """
    from mlrun_magic.planning import RunRequest
    from mlrun_magic.service import default_service

    service = default_service()
    watched = service.launch(RunRequest(uri=uri, **kwargs), echo=echo)
    if wait:
        service.wait_for_success(watched)
    return watched.run


def sweep(uri=None, *, grid=None, points=None, parameters=None, max_parallel=None,
          wait=False, **kwargs):
    """Launch a run per point of a parameter sweep; returns the sweep.

    ``grid`` maps parameter names to lists of values (every combination is a point);
    ``points`` is a list of parameter mappings instead; both are merged over
    ``parameters``. Every point is checked against the entry point before anything is
    uploaded or started. One parent MLflow run holds a child run per point
    (``mlflow.parentRunId``); at most ``max_parallel`` (default 4, or
    ``%config ProjectRun.max_parallel``) run at once, the rest wait their turn. The sweep has
    ``.runs``, ``.wait()``, ``.cancel()``, ``.best(metric, goal)`` and ``.table()``; with
    ``wait=True`` it returns once every point ended and raises
    :class:`~mlrun_magic.errors.RunFailedError` if any did not finish. Other arguments are
    those of :func:`run`.
    """
    from mlrun_magic.planning import RunRequest
    from mlrun_magic.project.sweep import SweepError, parse_sweep
    from mlrun_magic.service import default_service

    if (grid is None) == (points is None):
        raise SweepError("give either grid= (values per parameter) or points= (a list of "
                         "parameter mappings)")
    spec = parse_sweep(grid if grid is not None else points, parameters)
    made = default_service().sweep(RunRequest(uri=uri, **kwargs), spec,
                                   max_parallel=max_parallel)
    if wait:
        made.wait_for_success()
    return made
