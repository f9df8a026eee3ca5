"""Warm starts: executor processes forked from a *zygote* that has already imported numpy, scipy
and the executor.

A fresh ``python -m executor`` spends about half a second importing numpy, scipy and the
runtime before it leases its first task — a tenth of a 5-second job on two cores.  The
zygote is one ``python -m executor.warm`` process, started with one BLAS thread when a runtime
that will launch local executors is made (``WarmStarter.prestart``, in the background), else on
first use, that imports those modules and then waits for requests on its standard input.
Each request (a JSON line: ``python -m executor`` arguments and extra environment) is
answered by a ``fork``: the child runs the executor's ``main`` with those arguments and
exits with its return code.  Executors stay separate processes (own address space,
killable, exit codes); they start in milliseconds.

Protocol (JSON lines): request ``{"id": n, "argv": [...], "env": {...}}`` (``env``, if given, is
the child's whole environment, as for ``subprocess.Popen``; variables read at import time, such
as the BLAS thread count, are those the zygote started with: one thread); the zygote
answers ``{"id": n, "pid": p}`` once forked and ``{"pid": p, "exit": code}`` when the
child ends (negative: killed by that signal, as in ``subprocess``).  The zygote exits when
its standard input closes (the client went away).

A zygote may run behind a command prefix, e.g. ``ip netns exec HOST``: the zygote, and so every
executor it forks, then lives in that network namespace, while its protocol pipes reach the client
in its own (pipes belong to no network namespace).  ``WarmStarter.start(argv, env, prefix=...)``
keeps one zygote per prefix; the multi-host testbed's ``NamespaceLauncher(warm=True)`` uses it for
warm starts in worker hosts.

The client side is ``WarmStarter.start(argv, env)``, which returns a ``WarmProcess`` that
answers like ``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``returncode``,
``send_signal``, ``terminate``, ``kill``).  Nothing of the caller's ``__main__`` is
imported in the zygote or its children.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import ClassVar

from .spec import environment

log = logging.getLogger("executor")

PRELOAD = ["numpy", "scipy.linalg", "numpywren2.core.kernels", "numpywren2.core.backends", "executor.worker",
           "executor.__main__"]


# --------------------------------------------------------------------------- the zygote process


def _zygote() -> None:
    import importlib

    for m in PRELOAD:
        importlib.import_module(m)
    importlib.import_module("numpywren2.core.kernels._mkl").warm()  # MKL loaded and dispatched once, if in use
    out = sys.stdout.buffer
    fd_in = sys.stdin.fileno()
    children: set[int] = set()
    buf = b""

    def say(obj: dict) -> None:
        out.write(json.dumps(obj).encode() + b"\n")
        out.flush()

    say({"ready": True})
    while True:
        r, _, _ = select.select([fd_in], [], [], 0.05)
        if r:
            chunk = os.read(fd_in, 65536)
            if not chunk:  # the client is gone: stop (children keep running until they finish)
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(req["argv"], req.get("env") or {})
                children.add(pid)
                say({"id": req["id"], "pid": pid})
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                say({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})


def _child(argv: list[str], env: dict[str, str]) -> None:
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # the zygote's stdout is its protocol pipe
        if env:
            os.environ.clear()
            os.environ.update(env)
        from executor.__main__ import main

        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code or 0)


# --------------------------------------------------------------------------- the client side


class WarmProcess:
    """A forked executor, with the parts of ``subprocess.Popen``'s interface that launchers use."""

    def __init__(self, starter: WarmStarter, pid: int, args: list[str]):
        self._starter, self.pid, self.args = starter, pid, args

    @property
    def returncode(self) -> int | None:
        code = self._starter.exits.get(self.pid)
        if code is None and not self._starter.alive():
            # the zygote is gone (it reaped for us): the child is orphaned; alive or not is all we can tell
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return self._starter.exits.setdefault(self.pid, -1)
            except PermissionError:
                pass
        return code

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._starter.cond:
            while self.returncode is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                self._starter.cond.wait(0.2 if left is None else min(left, 0.2))
            return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmStarter:
    """One zygote per client process and command prefix (started on first use); ``start`` forks an executor
    from it."""

    _instances: ClassVar[dict[tuple[str, ...], WarmStarter]] = {}
    _instance_lock = threading.Lock()

    def __init__(self, python: str = sys.executable, prefix: tuple[str, ...] = ()):
        env = environment()
        self.prefix = tuple(prefix)
        self.proc = subprocess.Popen([*self.prefix, python, "-m", "executor.warm"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, start_new_session=False)
        self.exits: dict[int, int] = {}
        self.pids: dict[int, int] = {}
        self.cond = threading.Condition()
        self._next = 0
        self._send_lock = threading.Lock()
        first = self.proc.stdout.readline()
        if not first or not json.loads(first).get("ready"):
            raise RuntimeError("the executor zygote failed to start (see the error above)")
        threading.Thread(target=self._read, daemon=True, name="executor-zygote").start()

    @classmethod
    def shared(cls, prefix: tuple[str, ...] = ()) -> WarmStarter:
        """The zygote of ``prefix`` (none: this host), started anew if it is not running."""
        prefix = tuple(prefix)
        with cls._instance_lock:
            z = cls._instances.get(prefix)
            if z is None or not z.alive():
                z = cls._instances[prefix] = cls(prefix=prefix)
            return z

    @classmethod
    def prestart(cls, prefix: tuple[str, ...] = ()) -> threading.Thread:
        """Start the zygote of ``prefix`` in the background, if it is not running, so that the first job's
        executors do not wait for its imports (about 0.3 s): a runtime that will start local executors calls
        this when it is made.  ``shared`` waits for a zygote still starting; an error here is left for it to
        raise (it starts one anew)."""
        def run():
            try:
                cls.shared(prefix)
            except Exception as e:  # shared() raises it again for whoever needs the zygote
                log.debug("the executor zygote did not start in the background: %s", e)

        t = threading.Thread(target=run, daemon=True, name="executor-zygote-start")
        t.start()
        return t

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str] | None = None, timeout: float = 30.0,
              prefix: tuple[str, ...] = ()) -> WarmProcess:
        """Fork one executor running ``python -m executor`` with arguments ``argv``, from the zygote behind
        ``prefix``; its environment is ``env`` (default: this process's, now)."""
        return cls.shared(prefix)._start(argv, env, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _start(self, argv: list[str], env: dict[str, str] | None, timeout: float) -> WarmProcess:
        with self._send_lock:
            self._next += 1
            rid = self._next
            env = dict(os.environ) if env is None else env
            self.proc.stdin.write(json.dumps({"id": rid, "argv": list(argv), "env": env}).encode() + b"\n")
            self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self.cond:
            while rid not in self.pids:
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError("the executor zygote did not start an executor")
                self.cond.wait(0.2)
            return WarmProcess(self, self.pids.pop(rid), ["python", "-m", "executor", *argv])

    def _read(self) -> None:
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.cond:
                if "exit" in msg:
                    self.exits[msg["pid"]] = msg["exit"]
                else:
                    self.pids[msg["id"]] = msg["pid"]
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()


if __name__ == "__main__":
    _zygote()
