"""The executor's decisions, as small pure functions over explicit state: no I/O, no threads, no clock.

``executor.worker.Executor`` is the loop around them: it gathers the facts a decision needs (the
queue's messages, the state store's answers, the clock), calls the function, and carries out what
it returns.  Each function here is the whole of one rule, so the protocol can be read, and tested,
without processes or backends (``tests/test_decisions.py``).

The state the loop keeps between decisions (``LoopState``):

``started``      when the executor started (``time.monotonic()`` seconds);
``last_work``    when it last leased a message (for the idle timeout);
``next_status``  when the job's status is to be read next (it is read every ``status_interval``
                 seconds, and with every completion);
``task_s``       the moving average of a task's time here, None until one task has run: it sets how
                 many messages are leased at once (``lease_count``);
``read_s``       the moving average of a tile read's time: above ``CONCURRENT_READ_S`` a task's
                 tiles are read concurrently (``read_concurrently``).

The settings they are weighed against are ``Limits``.

The decisions, in the order a message meets them:

1. ``next_step``: before leasing, stop (time limit), read the job's status first, or lease how many;
   ``after_status``: stop unless the job is running; ``after_idle``: stop after the idle timeout.
2. ``canonical_task``: the task a message names, or why it is dropped (malformed, or not a task of
   the program: acknowledged unrun, logged, counted in ``tasks_dropped``).
3. ``on_leased``: a task the state store has done is forwarded (its completion is repeated, which
   re-enqueues its ready children and acknowledges it), any other is run.
4. ``after_error``: what an error reading an input, running the kernel or writing an output means:
   a missing input (examined by 5), an executor that gives up (transient errors that outlasted their
   retries: the provisioner replaces it), or a failed job (everything else).
5. ``after_missing_input``: a missing input tile of a task that is done is a second copy of it
   (forward, ``tasks_duplicate``); of an ended job, stop; whose writer is not done, a copy that came
   before its inputs (drop, ``tasks_premature``); otherwise read once more, then the tile is lost
   (fail the job, naming it).
   ``check_outputs`` decides whether a kernel's result fits its output slots (a misfit fails the job),
   and ``failure_record`` is what a failure says in the job record.
6. ``after_finish``: after the completion, go on while the job runs, else discard the scratch tiles
   the task wrote and stop.
7. ``finish_now``: after a task, whether to complete the tasks run since the last completion step
   (one step for them all); ``claim_count``: how many of the children that step makes ready the
   executor may lease to itself; ``prefetch``: whether to read the inputs of the next task leased with
   this one while its kernel runs.
"""

from __future__ import annotations

import enum
import errno
import traceback
from dataclasses import dataclass

from lambdapack import Task
from numpywren2.core.backends import BackendError, CorruptTileError, TileNotFoundError
from numpywren2.core.jobspec import describe_value, output_problem

# A task is leased alone within this many seconds of the time limit (no lease this executor will not run).
NEAR_LIMIT_S = 2.0
# Above this average read time (seconds) a task's input tiles are read concurrently; below it a thread
# hand-off costs more than the read (local files in the page cache).
CONCURRENT_READ_S = 0.002


class Action(enum.Enum):
    """What the loop does next with a message, or with itself."""

    RUN = "run"          # read the inputs, run the kernel, write the outputs, finish
    FORWARD = "forward"  # finish without running: the task is done (its completion is idempotent)
    DROP = "drop"        # acknowledge the message unrun
    RETRY = "retry"      # run the task once more (an input may have appeared meanwhile)
    MISSING = "missing"  # an input tile is missing: ask ``after_missing_input``
    FAIL = "fail"        # mark the job failed with the cause, and stop
    GIVE_UP = "give up"  # re-raise: this executor exits with the error
    STOP = "stop"        # stop leasing: the job ended, or this executor's time is up
    LEASE = "lease"      # lease messages
    STATUS = "status"    # read the job's status, then decide again
    GO_ON = "go on"      # continue with the next message


@dataclass(frozen=True)
class Decision:
    """An action, with what goes with it: a counter to increment, a message (the reason for a drop, the
    cause of a failure), the tile key a failure is about, or the number of messages to lease."""

    action: Action
    counter: str | None = None
    message: str | None = None
    key: str | None = None
    n: int = 0


@dataclass(frozen=True)
class Limits:
    """An executor's settings that the loop's decisions weigh (seconds unless said otherwise)."""

    idle_timeout: float
    time_limit: float | None = None
    status_interval: float = 1.0
    max_batch: int = 32  # messages (no-op tasks: fewer round trips per task; batch_target bounds the work held)
    batch_target: float = 0.02


@dataclass
class LoopState:
    """What the loop remembers between decisions (see the module docstring)."""

    started: float
    last_work: float
    next_status: float
    task_s: float | None = None
    read_s: float = 1.0  # concurrent reads until reads are known to be fast


def moving_average(old: float | None, new: float, weight: float = 0.2) -> float:
    """The exponential moving average of a time, starting at the first sample.

    >>> moving_average(None, 1.0), moving_average(0.0, 5.0)
    (1.0, 1.0)
    """
    return new if old is None else (1 - weight) * old + weight * new


def batch_size(task_s: float | None, limits: Limits) -> int:
    """How many messages to lease at once: 1 until a task's time is known, then as many as take about
    ``batch_target`` seconds, at most ``max_batch``.

    >>> limits = Limits(idle_timeout=10)
    >>> batch_size(None, limits), batch_size(0.0001, limits), batch_size(0.001, limits), batch_size(2.0, limits)
    (1, 32, 20, 1)
    """
    if task_s is None:
        return 1
    return max(1, min(limits.max_batch, int(limits.batch_target / max(task_s, 1e-6))))


def next_step(state: LoopState, limits: Limits, now: float) -> Decision:
    """Before leasing: stop at the time limit, read the job's status when it is due, else lease a batch
    (one message near the time limit).

    >>> limits = Limits(idle_timeout=10, time_limit=60)
    >>> next_step(LoopState(started=0, last_work=0, next_status=5, task_s=0.001), limits, now=1).n
    20
    >>> next_step(LoopState(started=0, last_work=0, next_status=5), limits, now=5).action
    <Action.STATUS: 'status'>
    >>> next_step(LoopState(started=0, last_work=0, next_status=70, task_s=0.001), limits, now=59).n
    1
    >>> next_step(LoopState(started=0, last_work=0, next_status=70), limits, now=61).action
    <Action.STOP: 'stop'>
    """
    if limits.time_limit is not None and now - state.started > limits.time_limit:
        return Decision(Action.STOP, message="time limit")
    if now >= state.next_status:
        return Decision(Action.STATUS)
    return _lease(state, limits, now)


def _lease(state: LoopState, limits: Limits, now: float) -> Decision:
    n = batch_size(state.task_s, limits)
    if limits.time_limit is not None and limits.time_limit - (now - state.started) < NEAR_LIMIT_S:
        n = 1  # near the time limit: hold no leases that this executor will not run
    return Decision(Action.LEASE, n=n)


def claim_count(state: LoopState, limits: Limits, now: float) -> int:
    """How many of the children its completion step makes ready an executor may lease to itself (run
    next, without a round trip through the queue): as many as it would lease at once, none near the
    time limit (it holds no lease it will not run).

    >>> limits = Limits(idle_timeout=10, time_limit=60)
    >>> claim_count(LoopState(0, 0, 0, task_s=0.001), limits, now=1), claim_count(LoopState(0, 0, 0), limits, now=1)
    (20, 1)
    >>> claim_count(LoopState(0, 0, 0, task_s=0.001), limits, now=59)
    0
    """
    if limits.time_limit is not None and limits.time_limit - (now - state.started) < NEAR_LIMIT_S:
        return 0
    return batch_size(state.task_s, limits)


def finish_now(pending_s: float, more: bool, limits: Limits) -> bool:
    """Whether to complete the tasks run since the last completion step now (one step for them all), after
    the one that just ran: when no leased message is left, or when the first of them has waited
    ``batch_target`` seconds (long tasks are completed one by one, so their children are not held back).

    >>> limits = Limits(idle_timeout=10)
    >>> finish_now(0.001, True, limits), finish_now(0.001, False, limits), finish_now(0.5, True, limits)
    (False, True, True)
    """
    return not more or pending_s >= limits.batch_target


def after_status(state: LoopState, limits: Limits, now: float, running: bool) -> Decision:
    """After reading the job's status: stop unless it is running; else schedule the next read and lease.

    >>> s = LoopState(started=0, last_work=0, next_status=0)
    >>> after_status(s, Limits(idle_timeout=10), now=3, running=True).action, s.next_status
    (<Action.LEASE: 'lease'>, 4.0)
    >>> after_status(s, Limits(idle_timeout=10), now=4, running=False).action
    <Action.STOP: 'stop'>
    """
    if not running:
        return Decision(Action.STOP, message="the job is not running")
    state.next_status = now + limits.status_interval
    return _lease(state, limits, now)


def after_idle(state: LoopState, limits: Limits, now: float) -> Decision:
    """After a lease that found no message: stop once idle for longer than ``idle_timeout``.

    >>> s = LoopState(started=0, last_work=5, next_status=0)
    >>> after_idle(s, Limits(idle_timeout=10), now=15).action, after_idle(s, Limits(idle_timeout=10), now=15.5).action
    (<Action.GO_ON: 'go on'>, <Action.STOP: 'stop'>)
    """
    if now - state.last_work > limits.idle_timeout:
        return Decision(Action.STOP, message="idle timeout")
    return Decision(Action.GO_ON)


def why_not_contained(bound, t: Task) -> str:
    """Why a well-formed task ``t`` is not one of ``bound``'s tasks (``BoundProgram.contains`` said no)."""
    stmt, idx = t
    if not 0 <= stmt < len(bound.stmts):
        return f"statement id {stmt} is not one of the program's 0..{len(bound.stmts) - 1}"
    s = bound.stmts[stmt]
    if len(idx) != len(s.vars):
        return (f"statement {s.label} has {len(s.vars)} loop variable(s) ({', '.join(s.vars) or 'none'}), "
                f"the message gives {len(idx)} value(s)")
    named = ", ".join(f"{v}={x}" for v, x in zip(s.vars, idx))
    return f"{s.label}({named}) is outside its loop bounds or guards: not a task of {bound!r}"


def canonical_task(bound, body: str) -> Task | Decision:
    """The task a message body names, canonical (its statement id carries its label), or a ``DROP``
    decision with the reason: a body that is not ``[int, [int, ...]]``, or names no task of ``bound``
    (statement id, number of loop values, loop bounds, guards).  From here on a task is known by its
    canonical text only (``Task.to_json``), so a re-formatted copy of a task is the same task."""
    try:
        raw = Task.from_json(body)
    except ValueError as e:
        reason = str(e)
    else:
        if bound.contains(raw):
            return bound.task(raw[0], raw[1])
        reason = why_not_contained(bound, raw)
    return Decision(Action.DROP, counter="tasks_dropped", message=reason)


def on_leased(was_done: bool) -> Decision:
    """A leased task that the state store has done is a duplicate, or a re-delivery after a crash
    between its completion and its acknowledgement: forward it (repeat the completion, which returns,
    and enqueues, its ready children, and acknowledge).  Any other is run.

    >>> on_leased(True).action, on_leased(False).action
    (<Action.FORWARD: 'forward'>, <Action.RUN: 'run'>)
    """
    return Decision(Action.FORWARD) if was_done else Decision(Action.RUN)


def after_error(step: str, e: BaseException) -> Decision:
    """What an error at one ``step`` of running a task (``"read"`` an input, ``"kernel"``, ``"write"`` an
    output) means.

    - read: a missing tile is examined (``after_missing_input``); a corrupt, truncated or unreadable one
      fails the job; a ``BackendError`` (transient errors that outlasted their retries) makes this
      executor give up (it exits with the error; the provisioner replaces it, and fails the job after
      several such exits in a row);
    - kernel: any exception (a kernel's own, or a bad input such as a NaN) fails the job;
    - write: a ``BackendError`` gives up; anything else (a full disk, a read-only store: no retry will
      help) fails the job.

    >>> after_error("read", TileNotFoundError("A/0/0")).action, after_error("read", BackendError()).action
    (<Action.MISSING: 'missing'>, <Action.GIVE_UP: 'give up'>)
    >>> after_error("read", CorruptTileError("bad")).action, after_error("kernel", ValueError()).action
    (<Action.FAIL: 'fail'>, <Action.FAIL: 'fail'>)
    >>> after_error("write", BackendError()).action, after_error("write", OSError(28, "full")).action
    (<Action.GIVE_UP: 'give up'>, <Action.FAIL: 'fail'>)
    """
    if step not in ("read", "kernel", "write"):
        raise ValueError(f"unknown step {step!r}")
    if step == "read" and isinstance(e, TileNotFoundError):
        return Decision(Action.MISSING)
    if step == "read" and isinstance(e, CorruptTileError):
        return Decision(Action.FAIL)
    if step != "kernel" and isinstance(e, BackendError):
        return Decision(Action.GIVE_UP)
    return Decision(Action.FAIL)


def after_overrun(task: Task, attempts: int, max_attempts: int, timeout: float) -> Decision:
    """What a task that has run past the task time limit (``timeout`` seconds) means, on its ``attempts``-th
    overrun of ``max_attempts`` allowed: the executor abandons it either way (stops renewing its lease, and
    exits: a kernel cannot be interrupted); before the last allowed attempt the task is left to be run
    elsewhere (``GIVE_UP``), at the last one the job fails naming it.

    >>> after_overrun(Task(0, (1,)), 1, 3, 60.0).action
    <Action.GIVE_UP: 'give up'>
    >>> d = after_overrun(Task(0, (1,)), 3, 3, 60.0); d.action, d.counter
    (<Action.FAIL: 'fail'>, 'tasks_timed_out')
    >>> d.message
    'ran past the task time limit (task_timeout = 60 s) on 3 of 3 attempts; abandoned'
    """
    if attempts < max_attempts:
        return Decision(Action.GIVE_UP, counter="tasks_timed_out",
                        message=f"ran past the task time limit (task_timeout = {timeout:g} s), attempt {attempts} "
                                f"of {max_attempts}; abandoned, to be run again elsewhere")
    return Decision(Action.FAIL, counter="tasks_timed_out",
                    message=f"ran past the task time limit (task_timeout = {timeout:g} s) on {attempts} of "
                            f"{max_attempts} attempts; abandoned")


def after_missing_input(where: str, task_done: bool, job_running: bool, writers: list[Task],
                        writers_done: list[bool], may_retry: bool) -> Decision:
    """What a missing input tile (``where`` names it) means, from what the state store says: whether the
    task is done, whether the job runs, the tasks that write the tile and whether each is done.

    >>> w = [Task(1, (0,))]
    >>> after_missing_input("tile 'A'", True, False, w, [False], True).counter  # a second copy of a done task
    'tasks_duplicate'
    >>> after_missing_input("tile 'A'", False, False, w, [True], True).action  # the job ended: scratch deleted
    <Action.STOP: 'stop'>
    >>> after_missing_input("tile 'A'", False, True, w, [False], True).counter  # came before its inputs
    'tasks_premature'
    >>> after_missing_input("tile 'A'", False, True, w, [True], True).action  # its writer finished meanwhile?
    <Action.RETRY: 'retry'>
    >>> print(after_missing_input("tile 'A'", False, True, [], [], True).message)
    input tile 'A' is missing: it was deleted, or never uploaded (the job reads it, no task writes it)
    >>> print(after_missing_input("tile 'A'", False, True, w, [True], False).message)
    tile 'A' is missing although s1(0), which writes it, is done: it was deleted while the job ran
    """
    if task_done:
        return Decision(Action.FORWARD, counter="tasks_duplicate")
    if not job_running:
        return Decision(Action.STOP, message="the job is not running")
    if not writers:
        return Decision(Action.FAIL, message=f"input {where} is missing: it was deleted, or never uploaded (the "
                                             "job reads it, no task writes it)")
    if not all(writers_done):
        return Decision(Action.DROP, counter="tasks_premature")
    if may_retry:
        return Decision(Action.RETRY)
    return Decision(Action.FAIL, message=f"{where} is missing although {writers[0]}, which writes it, is done: it "
                                         "was deleted while the job ran")


def after_finish(status: str | None) -> Decision:
    """After a task's completion, given the job's status read in the same step: go on while the job runs;
    otherwise the job ended while the task ran, and the executor deletes the scratch tiles the task wrote
    (the job's clean-up may have come before them) and stops.

    >>> after_finish("running").action, after_finish("done").action, after_finish(None).action
    (<Action.GO_ON: 'go on'>, <Action.STOP: 'stop'>, <Action.STOP: 'stop'>)
    """
    if status == "running":
        return Decision(Action.GO_ON)
    return Decision(Action.STOP, message="the job ended while the task ran")


def prefetch(read_s: float) -> bool:
    """Whether to read the input tiles of the next task leased in the same batch in the background while a
    kernel runs: when a read takes longer than a thread hand-off (a remote store).  No extra message is
    leased for it: an executor that held a second long task would keep it from an idle one.

    >>> prefetch(0.05), prefetch(0.0001)
    (True, False)
    """
    return read_s > CONCURRENT_READ_S


def read_concurrently(n_tiles: int, read_s: float) -> bool:
    """Whether to read a task's ``n_tiles`` input tiles concurrently, given the average read time.

    >>> read_concurrently(2, 0.05), read_concurrently(2, 0.0001), read_concurrently(1, 0.05)
    (True, False, False)
    """
    return n_tiles > 1 and read_s > CONCURRENT_READ_S


def freeable(tiles: list[tuple[str, tuple[int, ...], list[str]]], done: dict[str, bool]) -> list[tuple[str, tuple]]:
    """The scratch tiles a completed task read that may be deleted: those whose every other reader is done.

    ``tiles`` are ``(matrix, index, other readers)``; ``done`` answers for every other reader.  Safe against
    races and re-runs: a done task never reads its inputs again (a second copy of it that finds an input
    gone finds the task done).

    >>> freeable([("S", (0, 1), ["a", "b"]), ("S", (1, 1), ["a"]), ("T", (0,), [])], {"a": True, "b": False})
    [('S', (1, 1)), ('T', (0,))]
    """
    return [(m, idx) for m, idx, readers in tiles if all(done[r] for r in readers)]


def check_outputs(kernel: str, outs: list[tuple[str, tuple[int, ...]]], result, slot_of) -> list | Decision:
    """The output tiles of a kernel's ``result``, or a ``FAIL`` decision (cause: ``KernelOutputError``) if
    they do not fit the task's outputs ``outs`` (``(matrix, index)``): a tuple of one tile per output when
    there are several, each an ndarray of its slot's shape and dtype (``jobspec.output_problem``).

    ``slot_of(matrix, index)`` is ``(shape, dtype, problem, key)``: the slot (``jobspec.tile_slot``) and the
    tile's key, for the message.

    >>> import numpy as np
    >>> slot = lambda m, idx: ((2, 2), np.dtype("float64"), None, f"{m}/{idx[0]}")
    >>> len(check_outputs("chol", [("L", (0,))], np.zeros((2, 2)), slot))
    1
    >>> d = check_outputs("chol", [("L", (0,))], np.zeros((3, 2)), slot)
    >>> d.action, d.key, d.message.split("): ")[1]
    (<Action.FAIL: 'fail'>, 'L/0', 'expected an ndarray of shape (2, 2) and dtype float64, got shape (3, 2)')
    >>> check_outputs("qr", [("Q", (0,)), ("R", (0,))], np.zeros((2, 2)), slot).message.split("; ")[1]
    'expected a tuple of 2 tiles, for its outputs Q[0], R[0]'
    """
    if len(outs) > 1:
        if not isinstance(result, tuple) or len(result) != len(outs):
            names = ", ".join(f"{m}[{', '.join(map(str, idx))}]" for m, idx in outs)
            return Decision(Action.FAIL, message=f"kernel {kernel} returned {describe_value(result)}; expected a "
                                                 f"tuple of {len(outs)} tiles, for its outputs {names}")
        values = list(result)
    else:
        values = [result]
    for (m, idx), value in zip(outs, values):
        shape, dtype, problem, key = slot_of(m, idx)
        problem = problem or output_problem(value, shape, dtype)
        if problem is not None:
            return Decision(Action.FAIL, key=key, message=(
                f"kernel {kernel} returned a tile that does not fit its output {m}[{', '.join(map(str, idx))}]"
                f" (tile key {key!r}): {problem}"))
    return values


def failure_record(task: Task, line: int, filename: str, exc: BaseException, key: str | None = None,
                   doing: str | None = None) -> dict:
    """What a task's failure says in the job record (JSON): the task, its source line and file, the
    exception's type, message and traceback, the tile key and the errno name where there are ones.

    >>> r = failure_record(Task(0, (1,)), 18, "cholesky.py", OSError(28, "No space left on device"), key="L/1",
    ...                    doing="writing output tile 'L/1'")
    >>> r["message"], r["errno"], r["type"], r["line"]
    ("writing output tile 'L/1': ENOSPC (No space left on device)", 'ENOSPC', 'builtins.OSError', 18)
    """
    message = str(exc)
    error = {"task": str(task), "line": line, "file": filename,
             "type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": message,
             "traceback": "".join(traceback.format_exception(exc))}
    if key is not None:
        error["key"] = key
    if isinstance(exc, OSError) and exc.errno:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        error["errno"] = name
        error["message"] = f"{doing or 'tile ' + repr(key)}: {name} ({exc.strerror or exc})"
    elif doing:
        error["message"] = f"{doing}: {message}"
    return error


__all__ = ["Action", "Decision", "Limits", "LoopState", "after_error", "after_finish",
           "after_idle", "after_missing_input", "after_overrun", "after_status", "batch_size", "canonical_task",
           "check_outputs",
           "failure_record", "freeable", "moving_average", "next_step", "on_leased", "read_concurrently",
           "why_not_contained"]
