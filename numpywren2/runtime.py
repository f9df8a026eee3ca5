"""Runtimes: which tile store, queue and state store a job uses, and where executors run.

With no configuration, an *embedded* runtime is created on first use: a
temporary directory holding the tiles (``LocalFileStore``) and one SQLite
database for the queues and job state; executors are local processes.  It shuts
down (executors stopped, directory removed) at interpreter exit.

``with npw.runtime(store=..., queue=..., state=..., workers=...):`` selects
backends by URL for the calls inside the block.

Each job's executors are started by a provisioner (``provisioner.Provisioner``),
running in this process, through a launcher: local processes by default, or
simulated Lambda, or AWS Lambda (``launcher=``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from .backends import LocalFileStore, SQLiteStateStore, SQLiteTaskQueue, StateStore, TaskQueue, TileStore


def open_store(url: str) -> TileStore:
    u = urlparse(url)
    if u.scheme == "file":
        return LocalFileStore(u.path)
    if u.scheme == "s3":
        from .backends.aws import S3TileStore

        return S3TileStore(url)
    raise ValueError(f"unsupported tile store URL {url!r} (supported: file://PATH, s3://BUCKET/PREFIX)")


def open_state(url: str) -> StateStore:
    u = urlparse(url)
    if u.scheme == "sqlite":
        return SQLiteStateStore(u.path)
    if u.scheme in ("redis", "rediss"):
        from .backends.redis import RedisStateStore

        return RedisStateStore(url)
    raise ValueError(f"unsupported state store URL {url!r} (supported: sqlite://PATH, redis://HOST:PORT/DB)")


def open_queue(url: str, name: str) -> TaskQueue:
    """The queue of one job: ``name`` is the job id."""
    u = urlparse(url)
    if u.scheme == "sqlite":
        prefix = parse_qs(u.query).get("prefix", [""])[0]
        return SQLiteTaskQueue(u.path, prefix + name)
    if u.scheme in ("redis", "rediss"):
        from .backends.redis import RedisTaskQueue

        return RedisTaskQueue(url, name)
    if u.scheme == "sqs":
        from .backends.aws import SQSTaskQueue

        return SQSTaskQueue(url, name)
    raise ValueError(f"unsupported queue URL {url!r} (supported: sqlite://PATH, redis://HOST:PORT/DB, sqs://)")


SHM = "/dev/shm"
SHM_MIN_FREE = 4 << 30  # bytes


def default_root_parent() -> str | None:
    """Where an embedded runtime puts its directory: ``$NPW_ROOT`` if set, else the RAM-backed
    ``/dev/shm`` when it exists with at least 4 GiB free, else the system's temporary directory.

    Creating a small file on a journalling disk file system costs far more than on tmpfs (0.7 ms
    against 0.04 ms per tile on this project's test machine), which bounds the task rate; tiles
    of a one-machine job pass through the page cache either way.  For matrices larger than memory,
    set ``NPW_ROOT`` (or ``npw.runtime(root=...)``) to a disk directory.
    """
    if os.environ.get("NPW_ROOT"):
        return os.environ["NPW_ROOT"]
    try:
        st = os.statvfs(SHM)
        if st.f_bavail * st.f_frsize >= SHM_MIN_FREE and os.access(SHM, os.W_OK):
            return SHM
    except OSError:
        pass
    return None


class Runtime:
    """Backends plus the executors launched for jobs.

    Parameters
    ----------
    store, queue, state : str, optional
        Backend URLs. All omitted: an embedded runtime in a temporary directory.
    workers : int, optional
        At most this many executor processes per job on this machine with the default
        launcher (default: the number of CPU cores); the provisioner starts them as the
        job's parallelism asks.  0 starts none: executors run elsewhere (``python -m
        executor``, ``python -m provisioner``, Lambda).
    launcher : callable, optional
        Makes the launcher of each job (e.g. ``lambda: SimulatedLambdaLauncher(lifetime=60)``);
        default: ``LocalProcessLauncher(max_workers=workers)``.
    provisioner : ProvisionerSettings, optional
        Default settings of each job's provisioner (scaling factor, idle timeout, ...).
    """

    def __init__(self, store: str | None = None, queue: str | None = None, state: str | None = None,
                 workers: int | None = None, root: str | None = None, launcher=None, provisioner=None):
        self._owned_root = None
        if store is None or queue is None or state is None:
            if any((store, queue, state)):
                raise ValueError("give all three of store, queue and state URLs, or none for an embedded runtime")
            if root is None:
                root = tempfile.mkdtemp(prefix="numpywren2-", dir=default_root_parent())
                self._owned_root = root
            rootp = Path(root).resolve()
            store, queue, state = f"file://{rootp / 'tiles'}", f"sqlite://{rootp / 'state.db'}", \
                f"sqlite://{rootp / 'state.db'}"
        self.urls = {"store": store, "queue": queue, "state": state}
        self.store = open_store(store)
        self.state = open_state(state)
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.launcher_factory = launcher
        self.provisioner_settings = provisioner
        self.provisioners: list = []  # one per job submitted here (provisioner.Provisioner)
        self._lock = threading.Lock()
        self.closed = False

    def queue(self, job: str) -> TaskQueue:
        return open_queue(self.urls["queue"], job)

    def make_launcher(self):
        """A new launcher for one job (the runtime's factory, or local processes)."""
        if self.launcher_factory is not None:
            return self.launcher_factory()
        from provisioner import LocalProcessLauncher

        return LocalProcessLauncher(max_workers=self.workers)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for prov in self.provisioners:
            prov.stop(stop_executors=True)
            prov.close()
        for b in (self.store, self.state):
            b.close()
        if self._owned_root:
            shutil.rmtree(self._owned_root, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<Runtime store={self.urls['store']} queue={self.urls['queue']} state={self.urls['state']}>"


_stack: list[Runtime] = []
_default: Runtime | None = None


def current_runtime() -> Runtime:
    """The runtime of the innermost ``with npw.runtime(...)``, else the embedded default."""
    global _default
    if _stack:
        return _stack[-1]
    if _default is None or _default.closed:
        _default = Runtime()
        atexit.register(_default.close)
    return _default


@contextlib.contextmanager
def runtime(store: str | None = None, queue: str | None = None, state: str | None = None,
            workers: int | None = None, root: str | None = None, launcher=None, provisioner=None):
    """Use these backends (by URL) for the calls inside the block; no URLs: a new embedded runtime.

    ``launcher`` and ``provisioner`` are as for ``Runtime``.
    """
    rt = Runtime(store, queue, state, workers, root, launcher, provisioner)
    _stack.append(rt)
    try:
        yield rt
    finally:
        _stack.remove(rt)
        rt.close()
