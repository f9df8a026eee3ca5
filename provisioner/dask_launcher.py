"""``DaskLauncher``: executors as long-lived tasks on a Dask distributed cluster.

Each executor is one Dask task, ``run_executor(spec, executor_id)``, which calls the executor's
one entry, ``executor.worker.run``, in the Dask worker's process and returns the number of tasks
it ran when the executor stops (the job ended, ``idle_timeout`` without work, or ``time_limit``).
Any cluster a ``distributed.Client`` can reach works: ``dask scheduler`` / ``dask worker``
processes started by hand, dask-jobqueue's ``SLURMCluster``, ``PBSCluster``, ``SGECluster`` or
``LSFCluster``, dask-kubernetes, a ``LocalCluster`` (docs/deploy.md).

How the Dask task options are chosen:

- ``pure=False`` and a key of its own per executor (``npw-executor-<id>``): two executors of one
  spec are two tasks, never one result shared.
- ``resources`` (optional, e.g. ``{"npw_executor": 1}``): Dask then runs an executor only on a
  worker that declares the resource (``dask worker --resources npw_executor=1``), at most as
  many at once as the worker declares.  Without it an executor takes one worker thread.
- ``retries=0`` by default: an executor that raises is not re-run by Dask; the provisioner sees
  the failure (``reap``) and decides, as for any launcher (it fails the job after
  ``max_failed_starts`` failures in a row).  An executor whose Dask *worker* dies (a node lost,
  a batch job ended) is rescheduled by Dask on another worker, up to the scheduler's
  ``distributed.scheduler.allowed-failures``; that is safe: an executor is stateless, and the
  task it held reappears in the queue when its lease expires.
- The provisioner sees the futures: an executor is alive while its future is pending (queued on
  the scheduler, waiting for a worker, or running).

Stop and kill map to cancelling the futures (``Client.cancel(..., force=True)``).  An executor
not started yet never starts.  A running one cannot be interrupted by Dask (a task is a thread
of the worker); it stops at its next status check, within a second, once the job is no longer
running (done, failed or cancelled: the cases in which a provisioner stops its launcher), and
otherwise after ``idle_timeout`` without work or at ``time_limit``.  To bound an executor's life
on a batch cluster, set the provisioner's ``time_limit`` below the batch job's walltime.

The Dask workers need this package importable (the same environment as the client, which is how
dask-jobqueue runs its workers) and, for the speed of the kernels, one BLAS thread per executor:
start them with ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1`` and one thread per
worker process (``--nworkers K --nthreads 1``), as ``executor.spec.environment`` does for local ones.
"""

from __future__ import annotations

import threading
import time

from executor.spec import ExecutorSpec

from .launchers import ExitedExecutor, Launcher, new_executor_id


def run_executor(spec: ExecutorSpec, executor_id: str) -> int:
    """The Dask task of one executor: run it in this (worker) process until it stops; the tasks it ran."""
    from executor.worker import run

    return run(spec, executor_id)


class DaskLauncher(Launcher):
    """Executors as long-lived tasks on a Dask distributed cluster (see the module docstring).

    Parameters
    ----------
    cluster : distributed.Client, str or cluster object
        A client, a scheduler address (``"tcp://host:8786"``), or anything ``distributed.Client``
        accepts (a ``SLURMCluster``, a ``LocalCluster``...).  A client made here is closed by
        ``finish``/``stop``; one passed in is left open.
    resources : dict, optional
        Dask resources each executor needs, e.g. ``{"npw_executor": 1}``.
    max_executors : int, optional
        Default bound on live executors: by default the cluster's capacity when the launcher is made
        (the sum over its workers of ``resources``' first resource, else of their threads), at least 1.
    retries : int
        Dask retries of an executor that raised (default 0: the provisioner decides).
    priority : int
        Dask priority of the executor tasks (default 0).
    """

    def __init__(self, cluster, resources: dict[str, float] | None = None, max_executors: int | None = None,
                 retries: int = 0, priority: int = 0, start_timeout: float | None = None):
        super().__init__(start_timeout)
        from distributed import Client

        if isinstance(cluster, Client):
            self.client, self._own_client = cluster, False
        else:
            self.client, self._own_client = Client(cluster), True
        self.resources = dict(resources) if resources else None
        self.retries, self.priority = retries, priority
        self.default_max_executors = max_executors or max(1, self.capacity())
        self.futures: dict = {}  # executor id -> distributed.Future
        self._reaped: set[str] = set()
        self._cancelled: set[str] = set()
        self._lock = threading.RLock()

    def capacity(self) -> int:
        """How many executors the cluster can run at once now (resource units, else worker threads)."""
        if self.resources:
            name = next(iter(self.resources))
            info = self.client.scheduler_info()["workers"].values()
            per = self.resources[name]
            return int(sum(w.get("resources", {}).get(name, 0) // per for w in info))
        return int(sum(self.client.nthreads().values()))

    def launch(self, spec: ExecutorSpec, n: int) -> list[str]:
        ids = []
        with self._lock:
            for _ in range(max(0, n)):
                eid = new_executor_id()
                self.futures[eid] = self.client.submit(
                    run_executor, spec, eid, key=f"npw-executor-{eid}", pure=False, resources=self.resources,
                    retries=self.retries, priority=self.priority)
                self.launched[eid] = time.monotonic()
                ids.append(eid)
        return ids

    def alive(self, registry: dict[str, dict] | None = None) -> set[str]:
        with self._lock:
            return {eid for eid, f in self.futures.items() if not f.done()}

    def reap(self) -> list[ExitedExecutor]:
        """Executors whose futures ended since the last call: exit code 0 (finished), 1 (raised; the
        exception is ``error(executor)``), or cancelled by this launcher (``killed_by_launcher="stop"``)."""
        out = []
        with self._lock:
            for eid, f in self.futures.items():
                if eid in self._reaped or not f.done():
                    continue
                self._reaped.add(eid)
                if f.cancelled() or f.status == "cancelled":
                    out.append(ExitedExecutor(eid, -15, "stop" if eid in self._cancelled else None))
                elif f.status == "error":
                    out.append(ExitedExecutor(eid, 1))
                else:
                    out.append(ExitedExecutor(eid, 0))
        return out

    def error(self, executor_id: str) -> BaseException | None:
        """The exception an executor raised (None if it did not, or has not ended)."""
        f = self.futures.get(executor_id)
        if f is None or f.status != "error":
            return None
        return f.exception()

    def kill(self, executor_id: str) -> bool:
        """Cancel one executor's future: one not started never starts; a running one stops by itself (module
        docstring).  False if it had ended already."""
        with self._lock:
            f = self.futures.get(executor_id)
            if f is None or f.done():
                return False
            self._cancelled.add(executor_id)
            self.client.cancel([f], force=True)
            return True

    def stop(self) -> None:
        with self._lock:
            live = [eid for eid, f in self.futures.items() if not f.done()]
            self._cancelled.update(live)
            if live and self.client.status == "running":
                self.client.cancel([self.futures[e] for e in live], force=True)
        self._close_client()

    def finish(self) -> None:
        """The job has ended: its executors stop by themselves; close the client if it is ours."""
        self._close_client()

    def _close_client(self) -> None:
        if self._own_client and self.client.status not in ("closed", "closing"):
            self.client.close()
