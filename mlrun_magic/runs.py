"""The run types every layer shares: a run's state, its links and what a view shows of it.

Also the fixed vocabularies: the statuses a run goes through, the ones it ends in, the
backends and the environment managers. Everything here is plain data (no I/O, no imports of
ours), so the lowest modules may use it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

#: Statuses a run goes through, in the order they usually come.
STATUSES = ("PENDING", "QUEUED", "RUNNING", "TERMINATING", "FINISHED", "FAILED", "KILLED")
#: The statuses a run ends in (MLflow's terminal run statuses).
TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})

#: Where a run can go.
BACKENDS = ("local", "databricks")
#: How a run's Python environment is made (MLflow's ``--env-manager``).
ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")
#: The env manager when none is given. MLflow defaults to virtualenv (or conda for conda
#: projects), which needs pyenv and builds an env per run; in a notebook the kernel's own
#: environment is what users expect. Pass --env-manager for an isolated environment.
DEFAULT_ENV_MANAGER = "local"


@dataclass(frozen=True)
class RunState:
    """A status from :data:`STATUSES` and the backend's message about it.

    ``started_at`` and ``ended_at`` (epoch seconds) are the run's own times where the backend
    tells them (the job run's start and end on Databricks, the process's locally): a view's
    duration comes from them, not from when someone happened to look.
    """

    status: str
    message: str = ""
    started_at: float | None = field(default=None, compare=False)
    ended_at: float | None = field(default=None, compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class FailureReport:
    """Why a run ended FAILED or KILLED, as far as its backend tells; every text is redacted
    and bounded, and an empty one means "not known".

    ``message``: the run's state message. ``error``: the one-line error of the task's output
    (at most 1,000 characters). ``error_trace``: the head of its stack trace (at most 40
    lines and 8 KB, ending "(... N more lines)" when cut). ``never_started``: "the cluster
    never started: <reason code> (<type>): <parameters or message>" when the run ended
    before its code ran. ``cancelled_by``: "cancelled by <user>" or "cancelled: <why>" when
    the backend tells. ``output_tail``: the last lines of the output the backend kept (for
    when no live log was read).
    """

    message: str = ""
    error: str = ""
    error_trace: str = ""
    never_started: str = ""
    cancelled_by: str = ""
    output_tail: str = ""


@dataclass
class Links:
    """Where to see a run: the Databricks job run, the MLflow run and its experiment."""

    job_run: str | None = None
    mlflow_run: str | None = None
    experiment: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunInfo:
    """What a run view shows besides the status."""

    project: str
    entry_point: str
    backend: str
    run_name: str | None = None
    parameters: dict = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)


def workspace_key(host: str | None) -> str | None:
    """A workspace host as the history keys it: ``https://adb-1.2.azuredatabricks.net``,
    lower case, no trailing slash (``None`` stays ``None``)."""
    if not host:
        return None
    return host.strip().rstrip("/").lower()
