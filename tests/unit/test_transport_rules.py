"""The one retry policy (mlrun_magic.transport): what is retried, how long it waits, and
that a connection that never opened is tried again even for a POST."""

from __future__ import annotations

import socket
import time

import pytest

from mlrun_magic.transport import ApiError, HttpClient, TransportError, parse_retry_after


@pytest.mark.parametrize("value, seconds", [(None, None), ("", None), ("2", 2.0), ("1.5", 1.5),
                                            ("-3", 0.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 1.0)])
def test_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("status, code, message, throttled, transient", [
    (429, None, "slow down", True, False),
    (400, "REQUEST_LIMIT_EXCEEDED", "quota", True, False),
    (503, "TEMPORARILY_UNAVAILABLE", "later", False, True),
    (502, None, "<html>Bad gateway</html>", False, True),
    (501, "NOT_IMPLEMENTED", "no", False, False),
    (400, "INVALID_STATE", "ClusterNotReadyException: the cluster is starting", False, True),
    (404, "RESOURCE_DOES_NOT_EXIST", "gone", False, False),
    (400, "INVALID_STATE", "There were already 1000 jobs created", False, False),
])
def test_what_an_error_answer_allows(status, code, message, throttled, transient):
    error = ApiError(message, status_code=status, error_code=code)
    assert (error.throttled, error.transient) == (throttled, transient)


def test_backoff_grows_with_jitter_up_to_its_ceiling():
    client = HttpClient("http://127.0.0.1:9", backoff=1.0, max_backoff=10.0)
    for attempt in range(1, 12):
        ceiling = min(10.0, 2 ** (attempt - 1))
        delays = {client.retry_delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_connection_never_opened_is_retried_even_for_a_post_until_the_deadline():
    client = HttpClient(f"http://127.0.0.1:{_closed_port()}", deadline=0.5, backoff=0.01,
                        max_backoff=0.02)
    slept = []
    client.sleep = lambda seconds: (slept.append(seconds), time.sleep(seconds))
    with pytest.raises(TransportError) as info:
        client.call("POST", "/api/2.0/mlflow/runs/create", json={})
    assert info.value.never_sent and not info.value.no_answer
    assert "cannot reach" in info.value.message and slept
    assert info.value.gave_up_after == len(slept) + 1


def test_retry_false_makes_one_attempt():
    client = HttpClient(f"http://127.0.0.1:{_closed_port()}", deadline=5)
    slept = []
    client.sleep = slept.append
    with pytest.raises(TransportError):
        client.call("GET", "/x", retry=False)
    assert slept == []
