"""The one way to launch a run, shared by the magic, the panel, the CLI and the Python API."""

from __future__ import annotations

from mlrun_magic.planning import Plan, RunRequest, make_plan


def launch(request: RunRequest | Plan, *, wait: bool | None = False, echo: bool = False,
           tracking=None, progress=None):
    """Plan ``request`` (unless it is a plan already), submit it, optionally wait.

    Returns the :class:`~mlrun_magic.backends.base.SubmittedRun`. With ``wait=True`` it blocks
    until the run ends and raises :class:`~mlrun_magic.errors.RunFailedError` if it failed.
    """
    from mlrun_magic.backends import get_backend

    plan = request if isinstance(request, Plan) else make_plan(request)
    run = get_backend(plan.backend).submit(plan, tracking=tracking, echo=echo, progress=progress)
    if wait:
        run.wait()
        run.raise_for_status()
    return run
