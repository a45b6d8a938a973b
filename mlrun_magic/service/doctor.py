"""The doctor: a preflight of every check that can fail a run, each a ✓/✗/! line.

``%project_run doctor``, ``python -m mlrun_magic doctor`` and the panel's Check button call
:func:`run_doctor` (through :meth:`RunService.doctor`); the dry run shows
:func:`cheap_checks`. The cheap checks need no network: the project resolves, its env file
parses, the archive's size and what it leaves out, the experiment name, the compute spec,
the code location and the tracking URI. The network checks (credentials, identity, the
workspace, the experiment, the code location, the compute against the workspace, the
tracking server's host) run in parallel, each bounded by ``timeout``; one check's failure
never stops another, and nothing they meet escapes as an exception: a check that breaks is
a failed check with a sentence. Nothing secret is ever in a report.
"""

from __future__ import annotations

from dataclasses import replace

from mlrun_magic.errors import ArgumentsError, MlrunMagicError
from mlrun_magic.service.doctor_report import Check, DoctorReport, guarded, ordered

__all__ = ["Check", "DoctorReport", "cheap_checks", "run_doctor", "service_doctor",
           "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 20.0


def run_doctor(plan_or_request, *, network: bool = True,
               timeout: float = DEFAULT_TIMEOUT) -> DoctorReport:
    """Check a :class:`~mlrun_magic.planning.RunRequest` (or a resolved ``Plan``) and
    report. ``network=False`` runs only the cheap checks. A project that does not resolve
    is a failed ``project`` check, not an error; only bad usage raises (ArgumentsError)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not timeout > 0 or timeout == float("inf"):
        raise ArgumentsError(f"doctor timeout must be a positive number of seconds, not "
                             f"{timeout!r}")
    facts = _facts(plan_or_request)
    checks = _cheap(facts, build=network)
    if network:
        from mlrun_magic.service.doctor_network import network_checks

        checks = _merge(checks, network_checks(facts, float(timeout)))
    return DoctorReport(ordered(checks), network=network)


def cheap_checks(plan, *, archive_size: int | None = None) -> tuple[Check, ...]:
    """The checks that need no network, for a plan (or a request), as the dry run shows
    them. Nothing is built: the archive's size is ``archive_size`` (the dry run built it),
    else what the manifest cache knows, else only the content's size is said."""
    facts = _facts(plan)
    facts.archive_size = archive_size
    return ordered(_cheap(facts, build=False))


def service_doctor(service, request, *, network: bool = True,
                   timeout: float = DEFAULT_TIMEOUT) -> DoctorReport:
    """:func:`run_doctor` with the profile and tracking URI a request does not give taken
    from the service's settings (``%config ProjectRun`` in a notebook), as
    :meth:`RunService.plan` takes them."""
    from mlrun_magic.planning import RunRequest

    if isinstance(request, RunRequest):
        settings = service.settings
        defaults = {name: getattr(settings, name, None) for name in ("profile", "tracking_uri")
                    if getattr(request, name) is None}
        request = replace(request, **{k: v for k, v in defaults.items() if v})
    return run_doctor(request, network=network, timeout=timeout)


def _facts(plan_or_request):
    from mlrun_magic.planning import Plan, RunRequest, check_request, make_plan
    from mlrun_magic.service.doctor_cheap import Facts

    if isinstance(plan_or_request, Plan):
        return Facts(plan_or_request.request, plan=plan_or_request)
    if not isinstance(plan_or_request, RunRequest):
        raise ArgumentsError(f"the doctor checks a RunRequest or a Plan, not "
                             f"{type(plan_or_request).__name__}")
    request = replace(plan_or_request, parameters=dict(plan_or_request.parameters or {}))
    check_request(request)  # bad usage (a field of the wrong type) raises, as for plan
    try:
        return Facts(request, plan=make_plan(request))
    except MlrunMagicError as exc:
        return Facts(request, error=exc)


def _cheap(facts, build: bool) -> list[Check]:
    from mlrun_magic.service.doctor_cheap import (compute_checks, experiment_check,
                                                  location_check, project_checks)
    from mlrun_magic.service.doctor_tracking import tracking_check

    steps = [("project", lambda: project_checks(facts, build)),
             ("tracking URI", lambda: tracking_check(facts)),
             ("experiment", lambda: experiment_check(facts))]
    if facts.databricks:
        steps[2:2] = [("compute", lambda: compute_checks(facts)),
                      ("code location", lambda: location_check(facts))]
    out: list[Check] = []
    for name, step in steps:
        out += guarded(name, step)
    for check in out:
        if check.status == "fail":
            facts.broken.add(check.name)
    return out


def _merge(cheap: list[Check], network: list[Check]) -> list[Check]:
    """A network check replaces the cheap check of the same name, unless that one failed
    (the cheap failure is the one to fix first)."""
    failed = {c.name for c in cheap if c.status == "fail"}
    taken = {c.name for c in network if c.name not in failed}
    return [c for c in cheap if c.name not in taken] + \
        [c for c in network if c.name not in failed]
