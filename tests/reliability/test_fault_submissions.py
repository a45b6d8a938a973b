"""Faults: many Databricks submissions against one loopback workspace, each with one random
fault on a route a clean submission uses (Databricks and MLflow routes), then the
exactly-once invariant for each, and no duplicates, orphans or stuck runs overall.

The seed is printed (and shown with every failing case); set ``MLRUN_MAGIC_FAULT_SEED`` to
replay a run and ``MLRUN_MAGIC_FAULT_SUBMISSIONS`` to change how many there are (100, as in
the figures quoted in the README; about 30 s on two cores). No case starts after
``MLRUN_MAGIC_FAULT_SECONDS`` (default 150 s): a slow machine runs fewer, and the summary says so.
Jobs are held PENDING so nothing really runs; they are all cancelled at the end.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
import uuid
from pathlib import Path

import pytest

from mlrun_magic.backends.databricks import DatabricksBackend
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.planning import RunRequest, make_plan
from submission_invariant import (CLUSTER, LIVE, check_not_started, check_started,
                                  job_runs_for, mlflow_runs)

REPO = Path(__file__).resolve().parents[2]
SUBMISSIONS = int(os.environ.get("MLRUN_MAGIC_FAULT_SUBMISSIONS") or 100)
BUDGET = float(os.environ.get("MLRUN_MAGIC_FAULT_SECONDS") or 150)
#: (kind, weight): what a fault does. Status faults answer without doing the request;
#: respond-then-fail does it and then answers with an error.
KINDS = (("429", 2), ("500", 2), ("503", 2), ("400", 2), ("drop", 2), ("delay", 1),
         ("respond-then-fail", 3))
FAST = {"backoff": 0.01, "max_backoff": 0.05, "deadline": 20, "timeout": 10}


@pytest.fixture
def faulty(workspace_client):
    """The session workspace with jobs held PENDING, its credentials, one project."""
    workspace_client.configure(pending_seconds=3600)
    workspace_client.prefix = f"/Shared/faults-{uuid.uuid4().hex[:8]}"
    return workspace_client


def plan_for(ws, name: str, content: str | None = None):
    """A plan for the project; ``content`` changes it so its archive is uploaded anew."""
    if content is not None:
        (ws.project / "case.txt").write_text(content)
    return make_plan(RunRequest(uri=str(ws.project), backend="databricks",
                                backend_config=dict(CLUSTER), experiment_name=name,
                                parameters={"epochs": "1", "alpha": "0.25"}))


def clean_routes(ws) -> list[tuple[str, str, int]]:
    """``(method, path, occurrence)`` of every request a clean submission sends (after a
    first one, which also uploads the bootstrap)."""
    backend = DatabricksBackend(**FAST)
    warm = backend.submit(plan_for(ws, f"{ws.prefix}-warm", "warm-up\n"))
    first = len(ws.requests())
    clean = backend.submit(plan_for(ws, f"{ws.prefix}-clean", "clean\n"))
    seen: collections.Counter = collections.Counter()
    routes = []
    for entry in ws.requests()[first:]:
        key = (entry["method"], entry["path"])
        routes.append((*key, seen[key]))
        seen[key] += 1
    for run in (warm, clean):
        run.cancel(timeout=15)
    return routes


def random_fault(rng: random.Random, routes) -> dict:
    method, path, occurrence = rng.choice(routes)
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    rule = {"method": method, "path": path, "offset": occurrence, "times": 1}
    if kind == "drop":
        rule["action"] = "drop"
    elif kind == "delay":
        rule.update(action="delay", seconds=round(rng.uniform(0.05, 0.5), 2))
    elif kind == "respond-then-fail":
        rule.update(action="respond-then-fail", status=rng.choice((400, 429, 500, 503)))
    else:
        rule.update(action="status", status=int(kind))
        if kind == "429":
            rule["retry_after"] = rng.choice(("0", "1"))
    return rule


def describe(rule: dict) -> str:
    what = rule["action"] if rule["action"] in ("drop", "delay") else \
        f"{rule['action']} {rule['status']}"
    return f"{what} on {rule['method']} {rule['path']} (match #{rule['offset'] + 1})"


def run_case(ws, backend, mlflow_url, index: int, rule: dict) -> dict:
    """One faulted submission and the invariant for it."""
    name = f"{ws.prefix}-{index}"
    plan = plan_for(ws, name, f"case {index}\n")
    ws.add_fault(**rule)
    try:
        run, error = backend.submit(plan), None
    except MlrunMagicError as exc:
        run, error = None, exc
    except Exception as exc:  # noqa: BLE001 - a raw exception is itself a finding
        run, error = None, exc
    hits = sum(r["hits"] for r in ws.faults.describe())
    ws.clear_faults()
    if run is not None:
        problems = check_started(ws, mlflow_url, name, run)
    else:
        problems = check_not_started(ws, mlflow_url, name, error)
        if not isinstance(error, MlrunMagicError):
            problems.append(f"raw exception {type(error).__name__}: {error}")
    return {"index": index, "rule": rule, "hit": hits > 0, "run": run, "error": error,
            "name": name, "problems": problems}


def final_checks(ws, mlflow_url, cases) -> dict:
    """Duplicates, orphans and stuck runs over every case; returns the figures."""
    duplicates = orphans = stuck = 0
    for case in cases:
        runs = mlflow_runs(mlflow_url, case["name"])
        jobs = job_runs_for(ws, [r["run_id"] for r in runs])
        live = [j for j in jobs if j["state"]["life_cycle_state"] in LIVE]
        duplicates += max(len(runs) - 1, 0) + max(len(jobs) - 1, 0)
        if case["run"] is None:
            orphans += len(live)
        stuck += sum(1 for r in runs if r["status"] == "RUNNING" and not live)
    tokens = collections.Counter(job["idempotency_token"] for job in ws.runs())
    duplicates += sum(n - 1 for n in tokens.values() if n > 1)
    return {"duplicates": duplicates, "orphans": orphans, "stuck": stuck}


def cancel_started(cases) -> None:
    """Cancel every started run; its MLflow run ends KILLED through the backend."""
    for case in cases:
        if case["run"] is not None:
            case["run"].cancel(timeout=15)


def summary(seed, cases, figures, seconds) -> str:
    kinds = collections.Counter(c["rule"]["action"] + (f" {c['rule']['status']}" if
                                c["rule"]["action"] in ("status", "respond-then-fail") else "")
                                for c in cases)
    routes = collections.Counter(f"{c['rule']['method']} {c['rule']['path']}" for c in cases)
    outcomes = collections.Counter("started" if c["run"] else "failed (told)" for c in cases)
    lines = [f"fault suite: seed {seed}, {len(cases)} submissions in {seconds:.0f} s, "
             f"{sum(c['hit'] for c in cases)} faults hit",
             "  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
             "  faults by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
             "  faults by route: " + ", ".join(f"{k} {v}" for k, v in sorted(routes.items())),
             f"  duplicates {figures['duplicates']}, orphans {figures['orphans']}, "
             f"stuck MLflow runs {figures['stuck']}, invariant violations "
             f"{sum(bool(c['problems']) for c in cases)}"]
    lines += [f"  told it did not start: case {c['index']} ({describe(c['rule'])}): "
              f"{str(c['error']).splitlines()[0][:160]}" for c in cases if c["run"] is None]
    return "\n".join(lines)


@pytest.mark.slow
def test_faulted_submissions_keep_exactly_once(faulty, mlflow_server, capsys):
    seed = int(os.environ.get("MLRUN_MAGIC_FAULT_SEED") or random.randrange(2 ** 32))
    print(f"MLRUN_MAGIC_FAULT_SEED={seed}")
    rng = random.Random(seed)
    started = time.monotonic()
    routes = clean_routes(faulty)
    assert any(p.startswith("/api/2.0/mlflow/") for _, p, _ in routes), routes
    assert any(p == "/api/2.2/jobs/runs/submit" for _, p, _ in routes), routes
    backend = DatabricksBackend(**FAST)
    cases, note = [], ""
    for i in range(SUBMISSIONS):
        if time.monotonic() - started > BUDGET:
            note = f"\n  time budget of {BUDGET:.0f} s reached: {i} of {SUBMISSIONS} submissions run"
            break
        cases.append(run_case(faulty, backend, mlflow_server.url, i, random_fault(rng, routes)))
    figures = final_checks(faulty, mlflow_server.url, cases)
    cancel_started(cases)
    text = summary(seed, cases, figures, time.monotonic() - started) + note
    with capsys.disabled():
        print("\n" + text)
    failing = [f"case {c['index']} ({describe(c['rule'])}): " + "; ".join(c["problems"])
               for c in cases if c["problems"]]
    assert not failing, f"seed {seed}:\n" + "\n".join(failing)
    assert figures == {"duplicates": 0, "orphans": 0, "stuck": 0}, f"seed {seed}: {figures}"
    assert sum(c["hit"] for c in cases) >= len(cases) * 0.9, text
    stuck = [r for c in cases for r in mlflow_runs(mlflow_server.url, c["name"])
             if r["status"] == "RUNNING"]
    assert not stuck, f"seed {seed}: still RUNNING after cancelling: {stuck}"


@pytest.mark.slow
def test_concurrent_submissions_are_distinct_and_each_has_its_job_run(faulty, mlflow_server):
    name = f"{faulty.prefix}-concurrent"
    plan = plan_for(faulty, name)
    backend = DatabricksBackend(**FAST)
    backend.submit(plan).cancel(timeout=15)  # warms the archive cache, as a first run would
    results: list = [None] * 20

    def one(i):
        try:
            results[i] = backend.submit(plan)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if not hasattr(r, "job_run_id")]
    assert not errors, errors
    assert len({r.run_id for r in results}) == 20
    assert len({r.job_run_id for r in results}) == 20
    jobs = {j["idempotency_token"]: j for j in faulty.runs()}
    runs = {r["run_id"]: r for r in mlflow_runs(mlflow_server.url, name)}
    for run in results:
        assert jobs[run.run_id]["run_id"] == run.job_run_id
        assert jobs[run.run_id]["state"]["life_cycle_state"] == "PENDING"
        assert runs[run.run_id]["status"] == "RUNNING"
        assert runs[run.run_id]["tags"]["mlflow.databricks.shellJobRunID"] == str(run.job_run_id)
    assert len(runs) == 21 and len(faulty.runs()) == 21  # with the warm-up run
    for run in results:
        assert run.cancel(timeout=15).status == "KILLED"
