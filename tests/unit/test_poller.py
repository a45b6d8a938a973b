"""The one poller: one thread for every run, one backoff schedule, listeners told every state."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from mlrun_magic.poller import Poller
from mlrun_magic.runs import RunState


class ScriptedRun:
    """A run whose states come from a script; it counts and times its status calls."""

    def __init__(self, states, run_id="r"):
        self.states = list(states)
        self.run_id = run_id
        self.calls: list[float] = []

    def status(self):
        self.calls.append(time.monotonic())
        item = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(item, Exception):
            raise item
        return RunState(item)


def poller_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("test-poller"))


def test_one_thread_watches_many_runs_until_each_ends():
    poller = Poller((0.01, 0.02), name="test-poller")
    runs = [ScriptedRun(["RUNNING"] * (i % 5 + 1) + ["FINISHED"], f"r{i}") for i in range(30)]
    finals = {}
    for run in runs:
        poller.watch(run, lambda r, s: finals.setdefault(r.run_id, []).append(s.status)
                     if s.is_terminal else None)
    assert poller_threads() == 1
    for run in runs:
        assert poller.wait(run, timeout=10).status == "FINISHED"
    assert all(finals[r.run_id] == ["FINISHED"] for r in runs)  # told once, at the end
    assert poller.active() == []
    poller.stop()
    assert poller_threads() == 0


def test_intervals_follow_the_schedule_and_the_cap():
    poller = Poller((0.05, 0.1, 0.2, 0.4), name="test-poller")
    run = ScriptedRun(["RUNNING"] * 6 + ["FINISHED"])
    poller.watch(run, max_interval=0.15)
    poller.wait(run, timeout=10)
    gaps = [b - a for a, b in zip(run.calls, run.calls[1:])]
    assert len(run.calls) == 7
    assert gaps[0] == pytest.approx(0.1, abs=0.06)
    assert all(gap < 0.15 + 0.06 for gap in gaps)  # capped
    assert gaps == sorted(gaps, key=lambda g: round(g, 1)) or max(gaps) < 0.25
    poller.stop()


def test_a_pace_caps_the_backed_off_schedule_and_none_restores_it():
    poller = Poller((0.05, 0.4), name="test-poller")
    run = ScriptedRun(["RUNNING"] * 8 + ["FINISHED"])

    def listener(r, state):  # like a live log: quick for a while, then the schedule again
        poller.pace(r, 0.05 if len(r.calls) < 5 else None)

    poller.watch(run, listener)
    poller.wait(run, timeout=10)
    gaps = [b - a for a, b in zip(run.calls, run.calls[1:])]
    assert all(gap < 0.2 for gap in gaps[:4]), gaps  # paced, though the schedule is at 0.4
    assert all(gap > 0.3 for gap in gaps[4:]), gaps
    poller.stop()


def test_a_failed_poll_keeps_the_last_status_and_polling_goes_on():
    poller = Poller((0.01,), name="test-poller")
    boom = RuntimeError("connection reset")
    run = ScriptedRun(["RUNNING", boom, boom, "FINISHED"])
    seen = []
    poller.watch(run, lambda r, s: seen.append((s.status, s.message)))
    assert poller.wait(run, timeout=10).status == "FINISHED"
    assert seen[1] == ("RUNNING", "status unavailable: RuntimeError: connection reset")
    assert seen[-1] == ("FINISHED", "")
    poller.stop()


def test_a_broken_listener_does_not_stop_the_others():
    poller = Poller((0.01,), name="test-poller")
    run = ScriptedRun(["RUNNING", "FINISHED"])
    heard = []

    def broken(r, s):
        raise ValueError("view closed")

    poller.watch(run, broken)
    poller.watch(run, lambda r, s: heard.append(s.status))
    assert poller.wait(run, timeout=10).status == "FINISHED"
    assert heard == ["RUNNING", "FINISHED"]
    poller.stop()


def test_wait_with_a_timeout_returns_the_latest_state():
    poller = Poller((0.01,), name="test-poller")
    run = ScriptedRun(["RUNNING"])
    start = time.monotonic()
    assert poller.wait(run, timeout=0.2).status == "RUNNING"
    assert time.monotonic() - start < 2
    assert poller.active() == []  # nobody listens or waits any more: not polled
    poller.stop()


def test_poke_polls_at_once_whatever_the_schedule():
    poller = Poller((100,), name="test-poller")
    run = ScriptedRun(["RUNNING", "KILLED"])
    poller.watch(run)
    time.sleep(0.05)
    assert run.calls == []
    poller.poke(run)
    deadline = time.monotonic() + 5
    while not run.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(run.calls) == 1
    poller.poke(run)
    assert poller.wait(run, timeout=5).status == "KILLED"
    poller.stop()


def test_an_ended_run_is_not_watched_again():
    poller = Poller((0.01,), name="test-poller")
    run = ScriptedRun(["FINISHED"])
    run.last_state = RunState("FINISHED")
    heard = []
    poller.watch(run, lambda r, s: heard.append(s.status))
    assert heard == ["FINISHED"] and poller.active() == [] and run.calls == []
    assert poller.wait(run).status == "FINISHED" and run.calls == []


def test_ctrl_c_in_wait_reaches_the_caller_and_the_poller_still_works():
    poller = Poller((0.02,), name="test-poller")
    run = ScriptedRun(["RUNNING"])
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        poller.wait(run, timeout=10)
    timer.cancel()
    assert run.calls  # it was being polled; the caller decides what to do with the run
    run.states = ["FINISHED"]
    assert poller.wait(run, timeout=5).status == "FINISHED"
    poller.stop()


def test_polls_are_bounded_for_many_runs():
    """Twenty runs for one second on a (0.1, 0.2, 0.4) schedule: about 3 polls each."""
    poller = Poller((0.1, 0.2, 0.4), name="test-poller")
    runs = [ScriptedRun(["RUNNING"], f"r{i}") for i in range(20)]
    for run in runs:
        poller.watch(run)
    time.sleep(1.0)
    poller.stop()
    assert all(1 <= len(run.calls) <= 4 for run in runs), [len(r.calls) for r in runs]
    assert poller.polls <= 80


def test_stop_then_watch_starts_again():
    poller = Poller((0.01,), name="test-poller")
    poller.stop()
    run = ScriptedRun(["RUNNING", "FINISHED"])
    poller.watch(run)
    assert poller.wait(run, timeout=5).status == "FINISHED"
    poller.stop()


def test_a_run_nobody_listens_to_is_not_polled_any_more():
    poller = Poller((0.01,), name="test-poller")
    run = ScriptedRun(["RUNNING"])

    def view(r, s):
        pass

    poller.watch(run, view)
    time.sleep(0.1)
    poller.unwatch(run, view)
    calls = len(run.calls)
    time.sleep(0.1)
    assert poller.active() == [] and len(run.calls) <= calls + 1
    poller.stop()
