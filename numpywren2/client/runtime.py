"""Runtimes: which tile store, queue and state store a job uses, and where executors run.

With no configuration, an *embedded* runtime is created on first use: a
temporary directory holding the tiles (``LocalFileStore``) and one SQLite
database for the queues and job state; executors are local processes.  It shuts
down (executors stopped, directory removed) at interpreter exit, and on SIGTERM.

Directories of embedded runtimes are named ``numpywren2-XXXXXXXX`` and hold a lock file,
``lock``, on which the owning process (and every executor that opens the directory's tile
store) holds a shared ``flock`` for its lifetime.  A process that dies without cleaning up
(SIGKILL, a crash) releases its lock with its last file descriptor; the next embedded runtime
created in the same parent directory removes every directory named like this whose lock it can
take exclusively, and only those (``clean_stale_roots``).

``with npw.runtime(store=..., queue=..., state=..., executors=...):`` selects
backends by URL for the calls inside the block.

Each job's executors are started by a provisioner (``provisioner.Provisioner``),
running in this process, through a launcher: local processes by default, or
simulated Lambda, or AWS Lambda (``launcher=``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import threading
import weakref
from pathlib import Path

from ..core.backends import TaskQueue, TileStore, open_queue, open_state, open_store
from ..core.backends.local import _ROOT_NAME, LOCK_NAME, ROOT_PREFIX
from ..core.deprecation import renamed_options, warn_renamed
from ..core.signing import load_secret, make_runtime_secret, redact_url, trusted_from_env


def _make_root(parent: str | None) -> tuple[str, object]:
    """A new directory for an embedded runtime, with its lock file already locked (shared) by us.

    The lock file is locked under a temporary name and then renamed, so that a cleaner never
    sees the directory's lock free while we own it."""
    root = tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=parent)
    tmp = os.path.join(root, f".{LOCK_NAME}.{os.getpid()}")
    f = open(tmp, "wb")
    fcntl.flock(f.fileno(), fcntl.LOCK_SH)
    os.rename(tmp, os.path.join(root, LOCK_NAME))
    return root, f


def clean_stale_roots(parent: str | None = None) -> list[str]:
    """Remove the directories of embedded runtimes whose processes have all ended.

    Only directories of ``parent`` (default: where a new embedded runtime would go) named like
    ours (``numpywren2-XXXXXXXX``) and holding a lock file that nobody holds are removed;
    directories without a lock file (made by older versions) are left alone.

    Returns
    -------
    list of str
        The directories removed.
    """
    parent = parent or default_root_parent() or tempfile.gettempdir()
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for name in names:
        d = os.path.join(parent, name)
        if not _ROOT_NAME.fullmatch(name) or os.path.islink(d):
            continue
        try:
            fd = os.open(os.path.join(d, LOCK_NAME), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # no lock file, not a directory, not ours to read
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: a process still uses the directory
                continue
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        finally:
            os.close(fd)
    return removed


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
    executors : int, optional
        At most this many executor processes per job on this machine with the default
        launcher (default: the number of CPU cores); the provisioner starts them as the
        job's parallelism asks.  0 starts none: executors run elsewhere (``python -m
        executor``, ``python -m provisioner``, Lambda).
    launcher : callable, optional
        Makes the launcher of each job (e.g. ``lambda: SimulatedLambdaLauncher(lifetime=60)``);
        default: ``LocalProcessLauncher(max_executors=executors)``.
    provisioner : ProvisionerSettings, optional
        Default settings of each job's provisioner (scaling factor, idle timeout, ...).
    trusted_modules : list of str, optional
        Modules whose kernels travel by reference (``module:name``, imported by executors from their own
        installation) instead of by value; executors import kernels from these (and their submodules)
        and the built-ins only.  Added to ``$NPW_TRUSTED_MODULES``.

    Jobs are signed (``core.signing``, ``docs/security.md``): an embedded runtime makes its own key
    (``secret`` in its directory, mode 0600); any other needs one in ``$NPW_SECRET`` or a key file,
    else ``submit`` raises ``SigningKeyError`` saying how to set one.
    """

    @renamed_options(workers="executors")
    def __init__(self, store: str | None = None, queue: str | None = None, state: str | None = None,
                 executors: int | None = None, root: str | None = None, launcher=None, provisioner=None,
                 trusted_modules=None):
        self._owned_root = None
        self._root_lock = None
        self._pid = os.getpid()
        self.closed = False
        self.running_jobs: dict = {}  # job id -> Job, while it runs (a Job holds its matrices alive)
        self._owned: weakref.WeakSet = weakref.WeakSet()  # BigMatrix freed when collected (matrix.py)
        self.provisioners: list = []  # one per job submitted here (provisioner.Provisioner)
        if store is None or queue is None or state is None:
            if any((store, queue, state)):
                raise ValueError("give all three of store, queue and state URLs, or none for an embedded runtime")
            if root is None:
                parent = default_root_parent()
                clean_stale_roots(parent)
                root, self._root_lock = _make_root(parent)
                self._owned_root = root
                _embedded.add(self)
                _install_sigterm_cleanup()
            rootp = Path(root).resolve()
            rootp.mkdir(parents=True, exist_ok=True)
            make_runtime_secret(rootp)  # this runtime's key, read by its executors next to the database
            store, queue, state = f"file://{rootp / 'tiles'}", f"sqlite://{rootp / 'state.db'}", \
                f"sqlite://{rootp / 'state.db'}"
        self.urls = {"store": store, "queue": queue, "state": state}
        try:
            self.store = open_store(store)
            self.state = open_state(state)
        except BaseException:
            self._remove_root()
            raise
        self.executors = executors if executors is not None else (os.cpu_count() or 1)
        self.launcher_factory = launcher
        self.provisioner_settings = provisioner
        self.trusted_modules = (*trusted_from_env(), *(trusted_modules or ()))
        self._lock = threading.Lock()
        if launcher is None and self.executors != 0 and not os.environ.get("NPW_COLD_START"):
            # its jobs' executors fork from the warm zygote (provisioner.LocalProcessLauncher): start it now,
            # while the caller makes its matrices, rather than at the first job's launch
            from executor.warm import WarmStarter

            WarmStarter.prestart()

    def secret(self) -> bytes:
        """The key this runtime's jobs are signed with (``core.signing.load_secret``); raises
        ``SigningKeyError`` saying how to set one when none is configured."""
        return load_secret(self.urls["state"])

    @property
    def workers(self) -> int:
        """Deprecated name of ``executors``."""
        warn_renamed("Runtime", "workers", "executors", stacklevel=2)
        return self.executors

    @property
    def owns_root(self) -> bool:
        """An embedded runtime in a temporary directory of its own, removed when it closes."""
        return self._owned_root is not None

    def queue(self, job: str) -> TaskQueue:
        return open_queue(self.urls["queue"], job)

    def make_launcher(self):
        """A new launcher for one job (the runtime's factory, or local processes)."""
        if self.launcher_factory is not None:
            return self.launcher_factory()
        from provisioner import LocalProcessLauncher

        return LocalProcessLauncher(max_executors=self.executors)

    def close(self) -> None:
        """Stop this runtime's executors, free the matrices it still owns, close the backends; an
        embedded runtime's directory is removed.  Idempotent.  In a process forked from the one
        that made the runtime, only marks it closed (the resources are the parent's)."""
        if self.closed:
            return
        self.closed = True
        if os.getpid() != self._pid:
            return
        try:
            for prov in self.provisioners:
                prov.stop(stop_executors=True)
                prov.close()
            for m in list(self._owned):  # anonymous matrices still referenced (an embedded root goes below)
                m._release(free=self._owned_root is None)
            for b in (self.store, self.state):
                b.close()
        finally:
            self._remove_root()

    def _remove_root(self) -> None:
        if self._owned_root:
            shutil.rmtree(self._owned_root, ignore_errors=True)
        for lock in (self._root_lock, getattr(getattr(self, "store", None), "_root_lock", None)):
            if lock is not None:
                lock.close()
        self._root_lock = None

    def __repr__(self) -> str:
        u = {k: redact_url(v) for k, v in self.urls.items()}
        return f"<Runtime store={u['store']} queue={u['queue']} state={u['state']}>"


_stack: list[Runtime] = []
_default: Runtime | None = None
_embedded: weakref.WeakSet[Runtime] = weakref.WeakSet()  # embedded runtimes with a directory of their own


def current_runtime() -> Runtime:
    """The runtime of the innermost ``with npw.runtime(...)``, else the embedded default."""
    global _default
    if _stack:
        return _stack[-1]
    if _default is None or _default.closed:
        _default = Runtime()
    return _default


def runtime_of(store: TileStore) -> Runtime | None:
    """The open runtime (of a ``with`` block, or the default) whose tile store is ``store``, if any."""
    for rt in (*reversed(_stack), _default):
        if rt is not None and not rt.closed and rt.store is store:
            return rt
    return None


@atexit.register
def _close_embedded() -> None:
    """At exit: close every embedded runtime still open (executors stopped, directories removed)."""
    for rt in list(_embedded):
        rt.close()


_sigterm = {"installed": False, "previous": None}


def _install_sigterm_cleanup() -> None:
    """Make SIGTERM remove the embedded runtimes' directories before the process dies.

    Installed once, from the main thread only (Python's rule for signal handlers), unless
    SIGTERM is ignored.  A handler installed before it is chained; one installed after it
    replaces it (the directory is then removed at exit, or at the next start-up).
    """
    if _sigterm["installed"] or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_IGN, None):  # ignored, or a handler not installed from Python: leave it
        return
    _sigterm["previous"] = previous
    signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm["installed"] = True


def _on_sigterm(signum, frame) -> None:
    """With a handler of the user's: call it (if it exits the process, the directories are removed
    at exit; if it returns, the process goes on and keeps its runtimes).  Otherwise: close the
    embedded runtimes, then die of SIGTERM as the default action would (exit status -15)."""
    previous = _sigterm["previous"]
    if callable(previous):
        previous(signum, frame)
        return
    for rt in list(_embedded):
        with contextlib.suppress(Exception):
            rt.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


@renamed_options(workers="executors")
@contextlib.contextmanager
def runtime(store: str | None = None, queue: str | None = None, state: str | None = None,
            executors: int | None = None, root: str | None = None, launcher=None, provisioner=None,
            trusted_modules=None):
    """Use these backends (by URL) for the calls inside the block; no URLs: a new embedded runtime.

    ``launcher``, ``provisioner`` and ``trusted_modules`` are as for ``Runtime``.
    """
    rt = Runtime(store, queue, state, executors, root, launcher, provisioner, trusted_modules)
    _stack.append(rt)
    try:
        yield rt
    finally:
        _stack.remove(rt)
        rt.close()
