"""A Jobs API ``runs/get`` answer in our terms: every life cycle and result state Databricks
documents, the newer ``status`` object, missing keys; and which task's run id ``get-output``
wants. See /work/shared/reference/databricks-api.md, section 1.5."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_magic.databricks.jobs import TASK_KEY, run_state, task_run_id
from mlrun_magic.runs import STATUSES, TERMINAL, RunState

LIFE_CYCLES = ("QUEUED", "PENDING", "RUNNING", "TERMINATING", "TERMINATED", "SKIPPED",
               "INTERNAL_ERROR", "BLOCKED", "WAITING_FOR_RETRY")
RESULTS = ("SUCCESS", "FAILED", "TIMEDOUT", "CANCELED", "MAXIMUM_CONCURRENT_RUNS_REACHED",
           "EXCLUDED", "SUCCESS_WITH_FAILURES", "UPSTREAM_FAILED", "UPSTREAM_CANCELED", "DISABLED")


def state(life=None, result=None, message=None) -> dict:
    fields = {"life_cycle_state": life, "result_state": result, "state_message": message}
    return {"state": {k: v for k, v in fields.items() if v is not None}}


@pytest.mark.parametrize("life,status", [
    ("QUEUED", "QUEUED"), ("BLOCKED", "QUEUED"),
    ("PENDING", "PENDING"), ("WAITING_FOR_RETRY", "PENDING"),
    ("RUNNING", "RUNNING"), ("TERMINATING", "TERMINATING"),
    ("TERMINATED", "FAILED"), ("SKIPPED", "FAILED"), ("INTERNAL_ERROR", "FAILED"),
])
def test_each_life_cycle_without_a_result_maps_to_one_status(life, status):
    assert run_state(state(life)).status == status


@pytest.mark.parametrize("result,status", [
    ("SUCCESS", "FINISHED"), ("SUCCESS_WITH_FAILURES", "FINISHED"),
    ("CANCELED", "KILLED"), ("UPSTREAM_CANCELED", "KILLED"),
    ("FAILED", "FAILED"), ("TIMEDOUT", "FAILED"), ("MAXIMUM_CONCURRENT_RUNS_REACHED", "FAILED"),
    ("EXCLUDED", "FAILED"), ("UPSTREAM_FAILED", "FAILED"), ("DISABLED", "FAILED"),
])
@pytest.mark.parametrize("life", ["TERMINATED", "INTERNAL_ERROR", "SKIPPED"])
def test_each_result_state_of_an_ended_run_maps_to_one_status(life, result, status):
    assert run_state(state(life, result)).status == status


@pytest.mark.parametrize("result", RESULTS)
def test_a_result_state_ends_the_run_whatever_the_life_cycle_says(result):
    # MLflow's rule: a result_state is only there once the run ended.
    assert run_state(state("RUNNING", result)).is_terminal


@pytest.mark.parametrize("answer,expected", [
    (state("TERMINATED", "FAILED", "Task failed: boom"), RunState("FAILED", "Task failed: boom")),
    (state("TERMINATED", "TIMEDOUT"), RunState("FAILED", "TIMEDOUT")),
    (state("INTERNAL_ERROR"), RunState("FAILED", "INTERNAL_ERROR")),
    (state("TERMINATED", "CANCELED"), RunState("KILLED", "cancelled")),
    (state("TERMINATED", "CANCELED", "Cancelled by a@b"), RunState("KILLED", "Cancelled by a@b")),
    (state("TERMINATED", "SUCCESS"), RunState("FINISHED", "")),
    (state("PENDING", message="Waiting for cluster"), RunState("PENDING", "Waiting for cluster")),
    (state("QUEUED", message="Queued: limit"), RunState("QUEUED", "Queued: limit")),
])
def test_the_state_message_is_kept_and_an_ended_run_without_one_says_why(answer, expected):
    assert run_state(answer) == expected


@pytest.mark.parametrize("life", ["SOMETHING_NEW", "WAITING", 5, ["TERMINATED"], {"x": 1}])
def test_an_unknown_life_cycle_counts_as_still_running(life):
    # "Additional states might be introduced": never end a run on a state we do not know.
    assert not run_state(state(life)).is_terminal


@pytest.mark.parametrize("answer", [{}, {"state": None}, {"state": {}}, {"status": None},
                                    {"state": {}, "status": {}}, {"run_id": 7, "tasks": []}])
def test_an_answer_without_a_state_is_pending(answer):
    assert run_state(answer) == RunState("PENDING", "")


# -- the newer `status` object (`state` is marked deprecated) ------------------------------

def status(state_, code=None, message="", **extra) -> dict:
    details = {"termination_details": {"code": code, "type": "SUCCESS", "message": message}}
    return {"status": {"state": state_, **(details if code else {}), **extra}}


@pytest.mark.parametrize("state_,expected", [
    ("BLOCKED", "QUEUED"), ("QUEUED", "QUEUED"), ("PENDING", "PENDING"), ("WAITING", "PENDING"),
    ("RUNNING", "RUNNING"), ("TERMINATING", "TERMINATING"),
])
def test_status_state_alone_maps_like_the_life_cycle(state_, expected):
    assert run_state(status(state_)).status == expected


def test_status_queue_details_message_explains_a_queued_run():
    answer = status("QUEUED", queue_details={"code": "MAX_CONCURRENT_RUNS_REACHED",
                                             "message": "Queued: 3 runs active"})
    assert run_state(answer) == RunState("QUEUED", "Queued: 3 runs active")


@pytest.mark.parametrize("code,message,expected", [
    ("USER_CANCELED", "Run cancelled", RunState("KILLED", "Run cancelled")),
    ("USER_CANCELED", "", RunState("KILLED", "cancelled")),
    ("DRIVER_ERROR", "Driver crashed", RunState("FAILED", "Driver crashed")),
    ("INTERNAL_ERROR", "", RunState("FAILED", "INTERNAL_ERROR")),
])
def test_status_termination_details_give_the_outcome_and_message(code, message, expected):
    assert run_state(status("TERMINATED", code, message)) == expected


def test_user_canceled_in_status_means_killed_even_next_to_a_failed_result():
    answer = {**state("TERMINATED", "FAILED"), **status("TERMINATED", "USER_CANCELED")}
    assert run_state(answer).status == "KILLED"


def test_the_deprecated_state_object_wins_over_status_when_both_are_given():
    answer = {**state("RUNNING", message="from state"), **status("TERMINATED", "DRIVER_ERROR",
                                                                 "from status")}
    assert run_state(answer) == RunState("RUNNING", "from state")


@pytest.mark.parametrize("code", ["SUCCESS", "SUCCESS_WITH_FAILURES"])
def test_status_only_success_is_finished(code):
    assert run_state(status("TERMINATED", code)).status == "FINISHED"


def test_status_only_canceled_code_is_killed():
    assert run_state(status("TERMINATED", "CANCELED")).status == "KILLED"


@pytest.mark.parametrize("answer", [{"state": "TERMINATED"}, {"status": "TERMINATED"},
                                    {"state": ["TERMINATED"]}])
def test_a_state_that_is_not_an_object_gives_a_run_state(answer):
    assert run_state(answer).status in STATUSES


# -- properties ------------------------------------------------------------------------------

TEXT = st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(life=st.none() | st.sampled_from(LIFE_CYCLES) | TEXT,
       result=st.none() | st.sampled_from(RESULTS) | TEXT,
       message=st.none() | TEXT,
       new_state=st.none() | st.sampled_from(LIFE_CYCLES + ("WAITING",)) | TEXT)
def test_any_answer_of_the_documented_shape_maps_to_one_of_our_statuses(life, result, message,
                                                                         new_state):
    answer = {**state(life, result, message), "status": {"state": new_state}}
    got = run_state(answer)
    assert got.status in STATUSES
    assert isinstance(got.message, str)
    if result:
        assert got.is_terminal
    if life not in (None, "", "WAITING", *LIFE_CYCLES) and not result:
        assert got.status == "RUNNING"


@pytest.mark.parametrize("status_", STATUSES)
def test_is_terminal_is_true_exactly_for_finished_failed_and_killed(status_):
    assert RunState(status_).is_terminal is (status_ in {"FINISHED", "FAILED", "KILLED"})
    assert TERMINAL <= set(STATUSES)


@pytest.mark.parametrize("status_", ["SUBMITTING", "", "finished", "UNKNOWN"])
def test_a_status_outside_the_vocabulary_is_not_terminal(status_):
    assert not RunState(status_).is_terminal


# -- task_run_id -----------------------------------------------------------------------------

@pytest.mark.parametrize("run,expected", [
    ({"tasks": [{"task_key": TASK_KEY, "run_id": 11}]}, 11),
    ({"tasks": [{"task_key": "other", "run_id": 1}, {"task_key": TASK_KEY, "run_id": 2}]}, 2),
    ({"tasks": [{"task_key": "other", "run_id": 1}, {"task_key": "more", "run_id": 2}]}, 1),
    ({"tasks": [{"run_id": 5}]}, 5),
    ({"tasks": [{"task_key": TASK_KEY}]}, None),
    ({"tasks": [{}]}, None),
    ({"tasks": []}, None),
    ({"tasks": None}, None),
    ({}, None),
])
def test_task_run_id_is_our_task_s_else_the_first_task_s_else_none(run, expected):
    assert task_run_id(run) == expected


def test_task_run_id_is_not_the_parent_run_id():
    run = {"run_id": 100, "tasks": [{"task_key": TASK_KEY, "run_id": 101}]}
    assert task_run_id(run) == 101
