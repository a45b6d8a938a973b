"""MLflow tracking for project runs: experiments, the run, its tags and params, its links.

- :mod:`~mlrun_magic.tracking.project_run`: the MLflow run of a project run
  (:func:`start_project_run`, :class:`MlflowRun`, :func:`finish_run`);
- :mod:`~mlrun_magic.tracking.exactly_once`: one submission never leaves two runs
  (:func:`create_run`), and a run whose code will never start is ended (:func:`abandon_run`);
- :mod:`~mlrun_magic.tracking.rest`: :class:`RestTracking`, MLflow's REST API for
  ``http(s)://`` servers (and, subclassed in :mod:`mlrun_magic.databricks.tracking`, for a
  Databricks workspace);
- :mod:`~mlrun_magic.tracking.local_store`: a folder or database store through the ``mlflow``
  library.

Which client a tracking URI means is decided in :mod:`mlrun_magic.backends.tracking_uri`
(it sees both this package and :mod:`mlrun_magic.databricks`; this package imports neither).
"""

from __future__ import annotations

from mlrun_magic.tracking.exactly_once import (CLIENT_TOKEN_TAG, STATE_MESSAGE_TAG, abandon_run,
                                               create_run, deferred_interrupts, reason_of,
                                               sweep_late_run)
from mlrun_magic.tracking.local_store import LocalStoreTracking
from mlrun_magic.tracking.project_run import (MlflowRun, check_params,
                                              finish_run, project_tags, resolve_experiment,
                                              start_project_run)
from mlrun_magic.tracking.rest import MAX_PARAMS_PER_BATCH, Experiment, RestTracking

__all__ = ["CLIENT_TOKEN_TAG", "MAX_PARAMS_PER_BATCH", "STATE_MESSAGE_TAG",
           "Experiment", "LocalStoreTracking", "MlflowRun", "RestTracking", "abandon_run",
           "check_params", "create_run", "deferred_interrupts", "finish_run", "project_tags",
           "reason_of", "resolve_experiment", "start_project_run",
           "sweep_late_run"]
