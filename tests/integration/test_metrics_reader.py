"""The live metrics of a run (issue 14 item 5) read from a real MLflow server, from Databricks'
MLflow through the loopback workspace (whose request log counts what the reader asked), and
from local stores: values, steps, history order, the bound on requests per read, paging, NaN."""

from __future__ import annotations

import math
import uuid
import xml.etree.ElementTree as ET

import pytest

from mlrun_magic.errors import TrackingError
from mlrun_magic.notebook.run_metrics import metrics_html
from mlrun_magic.tracking import LocalStoreTracking, RestTracking
from mlrun_magic.tracking.metrics import MAX_KEYS, MetricsReader

T0 = 1_700_000_000_000
BIGGEST = 1.7976931348623157e308  # what MLflow's SQL stores keep for an infinity


def new_run(tracking, prefix="/Shared/metrics-") -> str:
    experiment = tracking.create_experiment(prefix + uuid.uuid4().hex[:8])
    return tracking.create_run(experiment.experiment_id, {}, "metrics")


def log(tracking, run_id, *metrics) -> None:
    """Log ``(key, value, step, timestamp)`` metrics as a training script's MLflow does."""
    if isinstance(tracking, LocalStoreTracking):
        from mlflow.entities import Metric

        tracking.client.log_batch(run_id,
                                  metrics=[Metric(k, v, t, s) for k, v, s, t in metrics])
        return
    tracking.call("POST", "runs/log-batch", idempotent=True, json={"run_id": run_id, "metrics": [
        {"key": k, "value": json_number(v), "step": s, "timestamp": t}
        for k, v, s, t in metrics]})


def json_number(value: float):
    """JSON has no NaN or infinity: MLflow's REST API takes protobuf's names for them."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


@pytest.fixture
def server(mlflow_server):
    tracking = RestTracking(mlflow_server.url)
    return tracking, new_run(tracking)


@pytest.fixture
def databricks(workspace_client):
    """Databricks' MLflow through the loopback workspace, whose request log counts calls."""
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.tracking import databricks_tracking

    tracking = databricks_tracking("databricks", resolve_workspace())
    return tracking, new_run(tracking), workspace_client


@pytest.fixture(params=["sqlite", "folder"])
def local(request, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    if request.param == "sqlite":
        tracking = LocalStoreTracking(f"sqlite:///{tmp_path / 'mlflow.db'}",
                                      artifact_root=str(tmp_path / "artifacts"))
    else:
        tracking = LocalStoreTracking(str(tmp_path / "mlruns"))
    return tracking, new_run(tracking, "metrics-")


def test_latest_values_steps_and_history_oldest_first(server):
    tracking, run_id = server
    log(tracking, run_id, *[("loss", 1.0 / (s + 1), s, T0 + 10 * s) for s in range(10)])
    log(tracking, run_id, *[("acc", s / 10, s, T0 + 10 * s + 5) for s in range(5)])
    assert sorted(tracking.latest_metrics(run_id), key=lambda m: m["key"]) == [
        {"key": "acc", "value": 0.4, "step": 4, "timestamp": T0 + 45},
        {"key": "loss", "value": 0.1, "step": 9, "timestamp": T0 + 90}]
    points, more = tracking.metric_history(run_id, "loss", 100)
    assert [p["step"] for p in points] == list(range(10)) and more is False
    assert points[3] == {"value": 0.25, "step": 3, "timestamp": T0 + 30}

    reader = MetricsReader(tracking, run_id)
    acc, loss = reader.read()
    assert (acc.key, acc.value, acc.step, acc.timestamp) == ("acc", 0.4, 4, T0 + 45)
    assert acc.history == (0.0, 0.1, 0.2, 0.3, 0.4)
    assert (loss.key, loss.step) == ("loss", 9)
    assert loss.history == tuple(1.0 / (s + 1) for s in range(10))
    assert reader.requests == 3  # runs/get and the two histories


def test_requests_per_read_are_bounded_and_counted_by_the_server(databricks):
    tracking, run_id, ws = databricks
    log(tracking, run_id, *[(f"k{i}", float(i), 0, T0 + i) for i in range(6)])
    reader = MetricsReader(tracking, run_id, history_keys=3)

    def read():
        before = len(ws.requests(path="/api/2.0/mlflow/*"))
        asked = reader.requests
        got = {s.key: s for s in reader.read()}
        calls = ws.requests(path="/api/2.0/mlflow/*")[before:]
        assert len(calls) == reader.requests - asked  # the server saw exactly what was counted
        return got, [c["path"].rsplit("/", 1)[-1] for c in calls], [
            c["query"].get("metric_key") for c in calls if c["path"].endswith("get-history")]

    got, paths, keys = read()
    assert paths == ["get", "get-history", "get-history", "get-history"]
    assert sorted(keys) == ["k3", "k4", "k5"]  # the most recently logged
    assert len(got) == 6 and all(s.history == (s.value,) for s in got.values())

    _, paths, _ = read()  # nothing moved: the latest values only
    assert paths == ["get"]

    # Two values each for five keys since the last read: the three most recent are fetched
    # whole, the two others extended by their latest value (the one in between is not seen).
    log(tracking, run_id, *[(f"k{i}", 10.0 + i, 1, T0 + 100 + i) for i in range(5)])
    log(tracking, run_id, *[(f"k{i}", 20.0 + i, 2, T0 + 200 + i) for i in range(5)])
    got, paths, keys = read()
    assert paths == ["get"] + ["get-history"] * 3 and sorted(keys) == ["k2", "k3", "k4"]
    assert got["k4"].history == (4.0, 14.0, 24.0)
    assert got["k0"].history == (0.0, 20.0) and got["k1"].history == (1.0, 21.0)
    assert got["k5"].history == (5.0,) and got["k0"].step == 2
    assert reader.requests == 4 + 1 + 4


def test_a_history_longer_than_a_page_is_never_asked_again(server):
    tracking, run_id = server
    log(tracking, run_id, *[("long", float(s), s, T0 + s) for s in range(12)])
    log(tracking, run_id, *[("short", float(s), s, T0 + s) for s in range(3)])
    assert len(tracking.metric_history(run_id, "long", 5)[0]) == 5
    assert tracking.metric_history(run_id, "long", 5)[1] is True
    assert tracking.metric_history(run_id, "long", 12)[1] is False

    reader = MetricsReader(tracking, run_id, page=5)
    got = {s.key: s for s in reader.read()}
    assert reader.requests == 3
    assert got["long"].history == (11.0,)  # the first page holds the oldest values: not drawn
    assert got["short"].history == (0.0, 1.0, 2.0)
    for step in (12, 13):
        log(tracking, run_id, ("long", float(step), step, T0 + step),
            ("short", float(step), step, T0 + step))
        got = {s.key: s for s in reader.read()}
    # Both moved twice; only "short" had its history asked again, each time.
    assert reader.requests == 3 + 2 * 2
    assert got["long"].history == (11.0, 12.0, 13.0)
    assert got["short"].history == (0.0, 1.0, 2.0, 12.0, 13.0)


def test_history_and_tracked_metrics_are_bounded(server):
    tracking, run_id = server
    log(tracking, run_id, *[("loss", float(s), s, T0 + s) for s in range(10)])
    reader = MetricsReader(tracking, run_id, points=4, history_keys=1)
    assert reader.read()[0].history == (6.0, 7.0, 8.0, 9.0)
    for step in range(10, 16):
        log(tracking, run_id, ("other", 0.0, step, T0 + 1000 + step),
            ("loss", float(step), step, T0 + step))
        loss = [s for s in reader.read() if s.key == "loss"][0]
        assert len(loss.history) == 4 and loss.history[-1] == float(step)
    assert loss.history == (12.0, 13.0, 14.0, 15.0)

    keys = [(f"m{i:03d}", float(i), 0, T0 + 5000 + i) for i in range(MAX_KEYS + 5)]
    log(tracking, run_id, *keys)
    shown = [s.key for s in MetricsReader(tracking, run_id).read()]
    assert shown == [f"m{i:03d}" for i in range(5, MAX_KEYS + 5)]  # the 200 most recent


def test_nan_and_infinities_are_kept_and_rendered(server):
    tracking, run_id = server
    log(tracking, run_id, ("loss", 1.0, 0, T0), ("loss", float("nan"), 1, T0 + 1),
        ("loss", 0.5, 2, T0 + 2), ("gap", float("inf"), 0, T0), ("gap", float("nan"), 1, T0 + 1))
    gap, loss = MetricsReader(tracking, run_id).read()
    assert math.isnan(gap.value) and gap.history[0] in (math.inf, BIGGEST)
    assert loss.value == 0.5 and loss.history[0] == 1.0 and math.isnan(loss.history[1])
    table = ET.fromstring(metrics_html([gap, loss]))
    assert [tr.get("data-metric") for tr in table.iter("tr")] == ["gap", "loss"]
    assert "nan" in "".join(table.find("tr").itertext())


def test_a_failing_request_raises_and_leaves_the_reader_as_it_was(databricks):
    tracking, run_id, ws = databricks
    log(tracking, run_id, ("loss", 1.0, 0, T0))
    reader = MetricsReader(tracking, run_id)
    reader.read()
    log(tracking, run_id, ("loss", 2.0, 1, T0 + 1))
    ws.add_fault("/api/2.0/mlflow/metrics/get-history", "status", method="GET", status=400)
    with pytest.raises(TrackingError, match="get-history"):
        reader.read()
    assert reader.requests == 2 + 2
    [loss] = reader.read()  # the move is seen again, not half applied
    assert loss.history == (1.0, 2.0) and reader.requests == 6
    with pytest.raises(TrackingError):
        MetricsReader(tracking, uuid.uuid4().hex).read()


def test_local_stores(local):
    tracking, run_id = local
    log(tracking, run_id, *[("loss", 1.0 / (s + 1), s, T0 + s) for s in range(8)],
        ("acc", float("nan"), 0, T0), ("acc", 0.75, 1, T0 + 9))
    assert sorted(tracking.latest_metrics(run_id), key=lambda m: m["key"])[1] == {
        "key": "loss", "value": 0.125, "step": 7, "timestamp": T0 + 7}
    points, more = tracking.metric_history(run_id, "loss", 3)
    assert [p["step"] for p in points] == [0, 1, 2] and more is True

    reader = MetricsReader(tracking, run_id, page=5)
    acc, loss = reader.read()
    assert acc.value == 0.75 and math.isnan(acc.history[0]) and acc.history[1] == 0.75
    assert loss.history == (0.125,) and reader.requests == 3  # longer than a page
    log(tracking, run_id, ("loss", 0.1, 8, T0 + 20))
    assert reader.read()[1].history == (0.125, 0.1) and reader.requests == 4
    with pytest.raises(TrackingError):
        MetricsReader(tracking, uuid.uuid4().hex).read()
