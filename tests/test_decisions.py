"""The executor's decisions (``executor.decisions``), called directly: no processes, no backends, no clock.

Each test states the facts an executor would have gathered and checks what the rule makes of them;
``test_a_run_of_the_loop_decisions`` walks the loop's decisions over a scripted sequence of events.
"""

from __future__ import annotations

import doctest
import errno

import numpy as np
import pytest

import executor.decisions as decisions
import executor.upkeep as upkeep
import lambdapack as lp
from executor.decisions import (
    Action,
    Decision,
    Limits,
    LoopState,
    after_error,
    after_finish,
    after_idle,
    after_missing_input,
    after_status,
    batch_size,
    canonical_task,
    check_outputs,
    failure_record,
    freeable,
    next_step,
    on_leased,
)
from lambdapack import Task
from numpywren2.core.backends import BackendError, CorruptTileError, TileLostError, TileNotFoundError
from numpywren2.core.kernels import chol, syrk, trsm


@lp.program
def tiny(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, N: int):
    for k in range(N):
        L[k, k] = chol(A[k, k])
        for i in range(k + 1, N):
            L[i, k] = trsm(L[k, k], A[i, k])
            if i == k + 1:
                S[i, i] = syrk(A[i, i], L[i, k])


BOUND = tiny.bind(N=3)


@pytest.mark.parametrize("module", [decisions, upkeep])
def test_the_doctests_run_and_check_something(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 5


# --------------------------------------------------------------------------- a leased message


def test_a_message_of_a_task_of_the_program_is_canonicalised():
    task = canonical_task(BOUND, "[1,  [0, 2]]")  # re-formatted: the same task
    assert task == Task(1, (0, 2)) and task.to_json() == "[1,[0,2]]"
    assert str(task).startswith("trsm@"), "the canonical task carries its statement's label"


@pytest.mark.parametrize("body, reason", [
    ("not json", "JSON"),
    ('[0, "k"]', ""),
    ("[7, [0]]", "statement id 7 is not one of the program's 0..2"),
    ("[1, [0]]", "has 2 loop variable(s) (k, i), the message gives 1 value(s)"),
    ("[1, [0, 5]]", "(k=0, i=5) is outside its loop bounds or guards: not a task of"),
    ("[2, [0, 2]]", "(k=0, i=2) is outside its loop bounds or guards"),  # fails the guard i == k + 1
])
def test_a_message_that_names_no_task_is_dropped_with_the_reason(body, reason):
    d = canonical_task(BOUND, body)
    assert isinstance(d, Decision) and d.action is Action.DROP and d.counter == "tasks_dropped"
    assert reason in d.message


def test_a_done_task_is_forwarded_and_any_other_run():
    assert on_leased(True) == Decision(Action.FORWARD)
    assert on_leased(False) == Decision(Action.RUN)


# --------------------------------------------------------------------------- errors while running a task


@pytest.mark.parametrize("step, error, action", [
    ("read", TileNotFoundError("A/0/0"), Action.MISSING),
    ("read", CorruptTileError("checksum mismatch", "A/0/0"), Action.FAIL),
    ("read", BackendError("get failed after 6 attempts"), Action.GIVE_UP),
    ("read", IsADirectoryError(errno.EISDIR, "is a directory"), Action.FAIL),
    ("kernel", np.linalg.LinAlgError("not positive definite"), Action.FAIL),
    ("kernel", BackendError("raised by a kernel"), Action.FAIL),
    ("write", BackendError("put failed after 6 attempts"), Action.GIVE_UP),
    ("write", CorruptTileError("from a put"), Action.GIVE_UP),
    ("write", OSError(errno.ENOSPC, "No space left on device"), Action.FAIL),
])
def test_after_error(step, error, action):
    assert after_error(step, error).action is action


def test_after_error_knows_its_steps():
    with pytest.raises(ValueError, match="unknown step"):
        after_error("compute", ValueError())


WRITERS = [Task(0, (0,))]


@pytest.mark.parametrize("facts, action, counter", [
    # task done, job running, writers, writers done, may retry
    ((True, True, WRITERS, [True], True), Action.FORWARD, "tasks_duplicate"),
    ((True, False, [], [], False), Action.FORWARD, "tasks_duplicate"),  # done wins over everything
    ((False, False, WRITERS, [True], True), Action.STOP, None),
    ((False, True, WRITERS, [False], True), Action.DROP, "tasks_premature"),
    ((False, True, WRITERS + [Task(0, (1,))], [True, False], False), Action.DROP, "tasks_premature"),
    ((False, True, WRITERS, [True], True), Action.RETRY, None),
    ((False, True, WRITERS, [True], False), Action.FAIL, None),
    ((False, True, [], [], True), Action.FAIL, None),  # an input no task writes: no retry helps
])
def test_after_missing_input(facts, action, counter):
    d = after_missing_input("tile 'A/1/0'", *facts)
    assert d.action is action and d.counter == counter
    if action is Action.FAIL:
        assert "tile 'A/1/0'" in d.message and "missing" in d.message


def test_a_lost_tile_fails_the_job_with_a_message_naming_the_tile_and_its_writer():
    d = after_missing_input("tile 'L/1/0' (matrix L, tile (1, 0))", False, True, [BOUND.task(1, (0, 1))], [True],
                            may_retry=False)
    assert str(TileLostError(d.message)).startswith("tile 'L/1/0' (matrix L, tile (1, 0)) is missing although trsm@")


def test_after_finish():
    assert after_finish("running").action is Action.GO_ON
    for status in ("done", "failed", "cancelled", None):
        assert after_finish(status).action is Action.STOP


def test_check_outputs_against_the_slots():
    def slot(m, idx):
        return ((2, 2), np.dtype("float64"), "outside the grid" if idx == (9,) else None, f"{m}/{idx[0]}")

    two = [("Q", (0,)), ("R", (0,))]
    ok = check_outputs("qr", two, (np.zeros((2, 2)), np.ones((2, 2))), slot)
    assert isinstance(ok, list) and len(ok) == 2 and ok[1][0, 0] == 1
    wrong_dtype = check_outputs("qr", two, (np.zeros((2, 2)), np.ones((2, 2), np.float32)), slot)
    assert wrong_dtype.action is Action.FAIL and wrong_dtype.key == "R/0" and "dtype float32" in wrong_dtype.message
    assert "a tuple of 3 values" in check_outputs("qr", two, (1, 2, 3), slot).message
    assert "outside the grid" in check_outputs("chol", [("L", (9,))], np.zeros((2, 2)), slot).message


def test_failure_record():
    try:
        raise np.linalg.LinAlgError("1-th leading minor not positive definite")
    except np.linalg.LinAlgError as e:
        r = failure_record(Task(0, (1,)), 18, "cholesky.py", e)
    assert r["type"] == "numpy.linalg.LinAlgError" and r["message"] == "1-th leading minor not positive definite"
    assert r["task"] == "s0(1)" and r["line"] == 18 and "Traceback" in r["traceback"] and "key" not in r
    r = failure_record(Task(0, (1,)), 18, "cholesky.py", CorruptTileError("bad"), key="A/1", doing="reading A/1")
    assert r["message"] == "reading A/1: bad" and r["key"] == "A/1" and "errno" not in r


def test_freeable():
    tiles = [("T", (0, 0), ["a", "b"]), ("T", (0, 1), []), ("T", (1, 1), ["b"])]
    assert freeable(tiles, {"a": True, "b": True}) == [("T", (0, 0)), ("T", (0, 1)), ("T", (1, 1))]
    assert freeable(tiles, {"a": True, "b": False}) == [("T", (0, 1))]


# --------------------------------------------------------------------------- the loop


def test_batch_size_follows_the_task_time():
    limits = Limits(idle_timeout=10, max_batch=8, batch_target=0.02)
    assert [batch_size(t, limits) for t in (None, 0.0, 0.001, 0.004, 0.01, 0.02, 5.0)] == [1, 8, 8, 5, 2, 1, 1]


def test_a_run_of_the_loop_decisions():
    """An executor's loop, scripted: the clock and the answers of the backends are the test's."""
    limits = Limits(idle_timeout=3.0, time_limit=20.0, status_interval=1.0)
    s = LoopState(started=100.0, last_work=100.0, next_status=100.0)
    assert next_step(s, limits, 100.0).action is Action.STATUS  # the first step reads the status
    assert after_status(s, limits, 100.0, running=True) == Decision(Action.LEASE, n=1)
    assert s.next_status == 101.0
    s.task_s = 0.004  # a task ran: short tasks are leased several at a time
    assert next_step(s, limits, 100.5) == Decision(Action.LEASE, n=5)
    s.last_work = 100.5
    assert next_step(s, limits, 101.0).action is Action.STATUS
    assert after_status(s, limits, 101.0, running=True).n == 5
    assert after_idle(s, limits, 103.5).action is Action.GO_ON  # no message for 3 s: not yet idle
    assert after_idle(s, limits, 103.6).action is Action.STOP
    s.last_work = 117.5
    s.next_status = 200.0
    assert next_step(s, limits, 118.5) == Decision(Action.LEASE, n=1), "near the time limit: one at a time"
    assert next_step(s, limits, 120.5).action is Action.STOP
    s.next_status = 0.0
    assert after_status(s, limits, 105.0, running=False).action is Action.STOP


def test_a_status_interval_of_zero_still_leases():
    limits = Limits(idle_timeout=3.0, status_interval=0.0)
    s = LoopState(started=0.0, last_work=0.0, next_status=0.0)
    assert next_step(s, limits, 1.0).action is Action.STATUS
    assert after_status(s, limits, 1.0, running=True) == Decision(Action.LEASE, n=1)


def test_the_counter_buffer_rides_along_when_due_and_keeps_what_was_given_back():
    b = upkeep.CounterBuffer(interval=0.5)
    b.add({"kernel_s": 1.0})
    taken = b.take_due(now=1.0)
    assert taken == {"kernel_s": 1.0} and b.take_due(now=1.2) == {}
    b.add(taken)  # a completion that failed gives them back
    b.add({"kernel_s": 0.5})
    assert b.take_due(now=1.5) == {"kernel_s": 1.5}
