"""The doctor's network checks, run in parallel, each bounded by the timeout.

First the credentials (which source of the Databricks SDK's config chain, never the secret)
and one ``scim/v2/Me`` request (the workspace answers; who you are). If the workspace did
not answer or refused the credentials, every check that needs it says it was not checked;
otherwise the experiment, the code location and the compute are checked at once. The
tracking server's host is resolved meanwhile. A check that breaks or runs out of time is a
failed check with a sentence; it never stops the others.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from mlrun_magic.service.doctor_report import Check, fail, guarded, in_background, ok, warn

AUTH_TYPES = {"pat": "personal access token", "oauth-m2m": "OAuth M2M (service principal)",
              "databricks-cli": "OAuth U2M (databricks auth login)", "azure-cli": "Azure CLI",
              "external-browser": "OAuth in the browser", "basic": "user name and password",
              "metadata-service": "metadata service", "azure-client-secret":
              "Azure service principal", "azure-msi": "Azure managed identity",
              "github-oidc": "GitHub OIDC", "google-credentials": "Google credentials",
              "google-id": "Google ID", "runtime": "Databricks runtime"}


@dataclass
class Session:
    """What the first step learned: the client, and who the caller is."""

    client: object
    user: str | None


class Runner:
    """Checks run at once, each in its own daemon thread; :meth:`results` waits for each at
    most ``timeout`` seconds after it started (a late one is a failed check; its request
    ends on its own deadline, and nobody waits for it)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.jobs: list = []

    def submit(self, name: str, step) -> None:
        self.jobs.append((name, in_background(name, lambda: guarded(name, step)),
                          time.monotonic()))

    def wait(self, job) -> list[Check]:
        name, future, started = job
        try:
            return future.result(timeout=max(0.0, started + self.timeout - time.monotonic()))
        except FutureTimeout:
            return [fail(name, f"no answer within {self.timeout:g} s",
                         "Check the network, or run the doctor again with a longer timeout.")]

    def results(self) -> list[Check]:
        return [check for job in self.jobs for check in self.wait(job)]


def network_checks(facts, timeout: float) -> list[Check]:
    """Every network check the request needs, as one list (in no particular order)."""
    from mlrun_magic.service.doctor_tracking import resolve_check

    runner = Runner(timeout)
    if facts.tracking_host and "tracking URI" not in facts.broken:
        runner.submit("tracking URI", lambda: resolve_check(facts, timeout))
    out: list[Check] = []
    if facts.databricks or facts.workspace_tracking:
        holder: dict = {}
        gate = Runner(timeout)
        gate.submit("credentials", lambda: _connect(facts, timeout, holder))
        first = gate.results()
        done = "checks" in holder  # else it ran out of time: say where it was
        out += first if done else _late(holder, timeout)
        session = holder.get("session") if done else None
        steps = _workspace_steps(facts)
        if session is None:
            why = _why_not(out)
            out += [warn(name, f"not checked: {why}", "Fix the check above first.")
                    for name, _ in steps]
        else:
            for name, step in steps:
                runner.submit(name, lambda step=step: step(facts, session))
    return out + runner.results()


def _late(holder: dict, timeout: float) -> list[Check]:
    """What a first step that ran out of time got to: the config, or the request."""
    if "source" not in holder:
        return [fail("credentials", f"the Databricks configuration did not resolve within "
                     f"{timeout:g} s (the SDK asks the workspace host while resolving it)",
                     "Check DATABRICKS_HOST or the profile's host and your network, or run "
                     "the doctor with a longer timeout.")]
    return [ok("credentials", holder["source"]),
            fail("workspace", f"{holder['host']} did not answer within {timeout:g} s",
                 "Check the workspace host and your network.")]


def _why_not(checks: list[Check]) -> str:
    failed = [c for c in checks if c.status == "fail"]
    names = {c.name for c in failed}
    if "credentials" in names and "workspace" not in names:
        return "the workspace refused the credentials" if any(
            "refused" in c.found for c in failed) else "no usable credentials"
    return "the workspace did not answer" if "workspace" in names else "no workspace session"


def _workspace_steps(facts) -> list:
    from mlrun_magic.service.doctor_compute import compute_steps
    from mlrun_magic.service.doctor_storage import location_step

    steps = []
    if facts.workspace_tracking and "experiment" not in facts.broken:
        steps.append(("experiment", experiment_step))
    if facts.databricks and "code location" not in facts.broken:
        steps.append(("code location", location_step))
    if facts.databricks:
        steps += compute_steps(facts)
    return steps


def _connect(facts, timeout: float, holder: dict) -> list[Check]:
    """``credentials``, ``workspace`` and ``identity``: the config chain, then one request.
    ``holder`` learns the stages (``source``, ``host``), the ``session`` and the ``checks``."""
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient
    from mlrun_magic.errors import MlrunMagicError

    started = time.monotonic()
    budget = timeout * 0.8  # the client gives up before the check's time is up
    request = facts.request
    try:
        # The SDK probes the host while resolving: a short retry budget leaves the rest for
        # the request that says whether the workspace answers.
        auth = resolve_workspace(request.profile, request.tracking_uri,
                                 retry_seconds=max(1.0, budget / 4))
    except MlrunMagicError as exc:
        checks = [fail("credentials", exc.message, exc.hint or ""),
                  warn("workspace", "not checked: no usable credentials",
                       "Fix credentials first."),
                  warn("identity", "not checked: no usable credentials",
                       "Fix credentials first.")]
    else:
        holder["source"], holder["host"] = credential_source(auth), auth.host
        left = max(0.5, budget - (time.monotonic() - started))
        client = DatabricksClient(auth, timeout=min(left, 60.0), deadline=left, backoff=0.2,
                                  max_backoff=2.0)
        checks = _ask_me(client, holder)
    holder["checks"] = checks
    return checks


def _ask_me(client, holder: dict) -> list[Check]:
    """One ``scim/v2/Me``: the workspace answers, accepts the credentials, and who you are."""
    from mlrun_magic.databricks.client import ME
    from mlrun_magic.databricks.errors import PermissionDenied, Unauthenticated
    from mlrun_magic.transport import ApiError

    source, host = holder["source"], holder["host"]
    try:
        me = client.call("GET", ME)
    except (Unauthenticated, PermissionDenied) as exc:
        return [fail("credentials", f"{source}: the workspace refused them "
                     f"(HTTP {exc.status_code}: {exc.api_message})", exc.hint or ""),
                ok("workspace", f"{host} answers"),
                warn("identity", "not checked: the workspace refused the credentials",
                     "Fix credentials first.")]
    except ApiError as exc:
        if exc.status_code is None:  # no answer at all
            return [ok("credentials", source),
                    fail("workspace", f"{host} did not answer: {exc.reason or exc.message}",
                         exc.hint or "Check the workspace host and your network."),
                    warn("identity", "not checked: the workspace did not answer",
                         "Fix the workspace check first.")]
        holder["session"] = Session(client, None)
        return [ok("credentials", source), ok("workspace", f"{host} answers"),
                fail("identity", exc.message, exc.hint or "Try again; if it persists, the "
                     "workspace's SCIM API is failing.")]
    user = (me.get("userName") if isinstance(me, dict) else None) or None
    holder["session"] = Session(client, user)
    return [ok("credentials", source), ok("workspace", f"{host} answers"),
            ok("identity", user or "(no user name)")]


def credential_source(auth) -> str:
    """Which source of the SDK's config chain gave the credentials: the auth type, the
    profile and its file, the ``DATABRICKS_*`` variables set (names only, never values)."""
    config = auth.config
    kind = AUTH_TYPES.get(auth.auth_type, auth.auth_type)
    envs = sorted(name for name in os.environ
                  if name.startswith(("DATABRICKS_", "ARM_")) and os.environ.get(name))
    if auth.profile:
        where = f"profile [{auth.profile}] of {getattr(config, 'config_file', None) or '~/.databrickscfg'}"
        if envs:
            where += f" (also set: {', '.join(envs)})"
    elif envs:
        where = f"environment variables {', '.join(envs)}"
    else:
        where = "the SDK's default chain"
    return f"{kind} ({auth.auth_type}) from {where} for {auth.host}"


def experiment_step(facts, session) -> Check:
    """``experiment``: it exists, or can be created (its folder exists)."""
    from mlrun_magic.databricks import catalog
    from mlrun_magic.databricks.tracking import DatabricksTracking

    tracking = DatabricksTracking(facts.tracking_uri or "databricks", session.client)
    if facts.experiment_id:
        return _experiment_by_id(tracking, str(facts.experiment_id))
    name = facts.experiment_name
    if not name:
        if not session.user:
            return warn("experiment", "not checked: your user name is unknown (identity)",
                        "Pass --experiment-name /Users/<you>/<name> or /Shared/<name>.")
        plan = facts.plan
        project = (plan.project.name or plan.project_dir.name) if plan else "mlflow-project"
        name = f"/Users/{session.user}/{project}"
    existing = tracking.get_experiment_by_name(name)
    if existing is not None:
        return ok("experiment", f"{name} exists (id {existing.experiment_id})")
    parent = name.rsplit("/", 1)[0] or "/"
    status = catalog.workspace_status(session.client, parent)
    if status is None or status.get("object_type") not in (None, "DIRECTORY"):
        what = "does not exist" if status is None else f"is a {status.get('object_type')}"
        return fail("experiment", f"{name} does not exist and cannot be created: its folder "
                    f"{parent} {what}",
                    f"Create the folder (databricks workspace mkdirs {parent}) or use "
                    f"/Users/{session.user or '<you>'}/<name> or /Shared/<name>.")
    owner = name.split("/")[2] if name.startswith("/Users/") and name.count("/") >= 3 else None
    if owner and session.user and owner.lower() != session.user.lower():
        return warn("experiment", f"{name} would be created in {owner}'s folder, not yours "
                    f"({session.user})", f"Creating it needs CAN MANAGE on {parent}; else use "
                    f"/Users/{session.user}/<name> or /Shared/<name>.")
    return ok("experiment", f"{name} will be created (folder {parent} exists)")


def _experiment_by_id(tracking, experiment_id: str) -> Check:
    from mlrun_magic.errors import TrackingError

    try:
        found = tracking.get_experiment(experiment_id)
    except TrackingError as exc:
        if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return fail("experiment", f"no experiment with id {experiment_id}",
                        "Check --experiment-id (or MLFLOW_EXPERIMENT_ID), or pass "
                        "--experiment-name instead.")
        raise
    return ok("experiment", f"experiment {found.experiment_id} ({found.name})")
