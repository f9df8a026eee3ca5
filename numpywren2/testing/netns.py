"""A multi-host testbed on one machine: network namespaces on a virtual bridge (root only).

``Testbed`` makes a small network of "hosts", each a network namespace (``ip netns``) with one
interface, ``eth0``, whose other end (a veth pair) is plugged into one bridge in the root namespace:

```text
   svc (.1)      redis-server, moto_server (S3, SQS)
   client (.2)   the process that submits jobs and runs their provisioner
   w1 (.11) ...  executors
   root (.254)   the test itself, on the bridge too: it watches the state store and pulls cables
```

All of it lives in one private /24 (``10.A.B.0/24``, chosen to overlap no route of this machine), and
every name carries a tag unique to the testbed (``npw<pid>x<hex>-w1``; interfaces ``nb<hex>``,
``nv<hex><i>``), so several test suites can run at once.  ``close()`` (and the context manager)
kills the processes left in the testbed's namespaces (only its own: nothing else runs in them) and
deletes the veth pairs, the bridge and the namespaces; it runs at interpreter exit too, as a backstop.

Faults: ``link_down(host)`` / ``link_up(host)`` unplug and replug a host's cable (its bridge-side
veth); ``kill_host(host)`` SIGKILLs every process of a host; ``netem(host, ...)`` adds latency and
loss with ``tc netem`` where the kernel has it (``NetemUnavailableError`` says why not).

``NamespaceLauncher`` is a ``provisioner.Launcher`` that starts ``python -m executor`` processes
in the worker hosts (``ip netns exec HOST python -m executor ...``), spreading them over the hosts
and skipping the ones marked down (a file per host in ``down_dir``: a host that has disappeared).
With ``warm=True`` each worker host runs its own warm zygote (``ip netns exec HOST python -m
executor.warm``, executor/warm.py), started at the host's first executor, and executors are forked
from it in that host's namespace instead of each importing numpy and the runtime afresh.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from executor.warm import WarmStarter
from provisioner.launchers import ExecutorSpec, LocalProcessLauncher

IP = "ip"


class NetnsUnavailableError(RuntimeError):
    """Network namespaces cannot be made here (the message says why)."""


class NetemUnavailableError(RuntimeError):
    """``tc netem`` cannot be used here (the message says why)."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed (exit {p.returncode}): {p.stderr.strip()}")
    return p


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def netns_unavailable() -> str | None:
    """Why a ``Testbed`` cannot be made on this machine, or None if it can.

    Needs root, iproute2's ``ip``, and a kernel that lets it add a namespace and a veth pair
    (tried, and removed at once).
    """
    if sys.platform != "linux":
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root, as CI does)"
    if shutil.which(IP) is None:
        return "iproute2's `ip` is not installed (scripts/sysdeps.sh installs it: apt-get install -y iproute2)"
    tag = uuid.uuid4().hex[:8]
    ns, veth = f"npwprobe{tag}", f"nq{tag}"
    try:
        p = _run(IP, "netns", "add", ns, check=False)
        if p.returncode != 0:
            return f"`ip netns add` failed: {p.stderr.strip()}"
        p = _run(IP, "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p", check=False)
        if p.returncode != 0:
            return f"cannot create a veth pair: {p.stderr.strip()}"
    finally:
        _run(IP, "link", "del", veth, check=False)
        _run(IP, "netns", "del", ns, check=False)
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _run(IP, "-4", "-o", "addr", "show").stdout.split() + _run(IP, "-4", "route", "show").stdout.split()
    nets = []
    for word in out:
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return [n for n in nets if n.version == 4 and n.prefixlen > 0]


def free_subnet(rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 (private) that overlaps no address or route of this machine."""
    rng = rng or random.Random()
    used = _used_networks()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{rng.randrange(100, 250)}.{rng.randrange(0, 256)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet for the testbed")


@dataclass(frozen=True)
class Host:
    """One host of the testbed: its namespace, its address, and its cable (the bridge-side veth)."""

    name: str  # "svc", "client", "w1", ...
    netns: str
    address: str
    veth: str


class Testbed:
    """Hosts ``svc``, ``client``, ``w1``..``wN`` on one bridge; see the module docstring.

    Parameters
    ----------
    worker_hosts : int
        Number of executor hosts (``w1``..).
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, worker_hosts: int = 3):
        reason = netns_unavailable()
        if reason:
            raise NetnsUnavailableError(reason)
        self.tag = uuid.uuid4().hex[:6]
        self.prefix = f"npw{os.getpid()}x{self.tag}"
        self.bridge = f"nb{self.tag}"
        self.subnet = free_subnet()
        hosts = self.subnet.hosts()
        addr = {i + 1: str(a) for i, a in enumerate(hosts)}
        names = [("svc", 1), ("client", 2)] + [(f"w{i}", 10 + i) for i in range(1, worker_hosts + 1)]
        self.hosts = {n: Host(n, f"{self.prefix}-{n}", addr[i], f"nv{self.tag}{i}") for n, i in names}
        self.root_address = addr[254]
        self.worker_hosts = [f"w{i}" for i in range(1, worker_hosts + 1)]
        self._closed = False
        self._procs: list[subprocess.Popen] = []
        atexit.register(self.close)
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- construction and teardown
    def _create(self) -> None:
        _run(IP, "link", "add", self.bridge, "type", "bridge")
        # bridged frames must not go through the host's iptables (a FORWARD policy of DROP would eat them)
        _run(IP, "link", "set", self.bridge, "type", "bridge", "nf_call_iptables", "0", check=False)
        _run(IP, "addr", "add", f"{self.root_address}/{self.subnet.prefixlen}", "dev", self.bridge)
        _run(IP, "link", "set", self.bridge, "up")
        for h in self.hosts.values():
            _run(IP, "netns", "add", h.netns)
            peer = f"{h.veth}p"
            _run(IP, "link", "add", h.veth, "type", "veth", "peer", "name", peer)
            _run(IP, "link", "set", peer, "netns", h.netns)
            _run(IP, "-n", h.netns, "link", "set", peer, "name", "eth0")
            _run(IP, "-n", h.netns, "addr", "add", f"{h.address}/{self.subnet.prefixlen}", "dev", "eth0")
            _run(IP, "-n", h.netns, "link", "set", "eth0", "up")
            _run(IP, "-n", h.netns, "link", "set", "lo", "up")
            _run(IP, "link", "set", h.veth, "master", self.bridge)
            _run(IP, "link", "set", h.veth, "up")

    def close(self) -> None:
        """Kill every process left in the testbed's namespaces, delete its links and namespaces."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for h in self.hosts.values():
            self.kill_host(h.name)
        for p in self._procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for h in self.hosts.values():
            _run(IP, "link", "del", h.veth, check=False)
            _run(IP, "netns", "del", h.netns, check=False)
        _run(IP, "link", "del", self.bridge, check=False)

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def leftovers(self) -> list[str]:
        """Namespaces and links of this testbed that still exist (none after ``close``)."""
        names = set(_run(IP, "netns", "list").stdout.split())
        links = _run(IP, "-o", "link", "show").stdout
        out = [h.netns for h in self.hosts.values() if h.netns in names]
        out += [n for n in [self.bridge, *(h.veth for h in self.hosts.values())] if f" {n}:" in links or
                f" {n}@" in links]
        return out

    # ---------------------------------------------------------------- running things in hosts
    def command(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run in ``host``'s namespace (``ip netns exec`` execs it: the process id is the command's)."""
        return [IP, "netns", "exec", self.hosts[host].netns, *argv]

    def popen(self, host: str, argv: list[str], **kw) -> subprocess.Popen:
        """Start ``argv`` in ``host``; the testbed kills it at ``close`` if it still runs."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.command(host, argv), **kw)
        self._procs.append(p)
        return p

    def pids(self, host: str) -> list[int]:
        """The processes running in ``host``'s namespace (not the dead ones their parents have yet to reap)."""
        p = _run(IP, "netns", "pids", self.hosts[host].netns, check=False)
        return [int(x) for x in p.stdout.split() if not _zombie(int(x))]

    def host_of(self, pid: int) -> str | None:
        """The host whose namespace process ``pid`` runs in (None: not one of this testbed's)."""
        name = _run(IP, "netns", "identify", str(pid), check=False).stdout.strip()
        return next((h.name for h in self.hosts.values() if h.netns == name), None)

    def kill_host(self, host: str) -> list[int]:
        """SIGKILL every process in ``host`` (the host dies); returns their ids."""
        pids = self.pids(host)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10  # a SIGKILL is delivered asynchronously: wait until they are dead
        while any(not _zombie(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        return pids

    def wait_listening(self, host: str, port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        """Block until ``host:port`` accepts a connection from the root namespace (through the bridge)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[4:]} exited ({proc.returncode}) before listening on {host}:{port}")
            try:
                with socket.create_connection((self.hosts[host].address, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")

    # ---------------------------------------------------------------- faults
    def link_down(self, host: str) -> None:
        """Unplug ``host``'s cable: its frames go nowhere (its own interface stays up, as when a switch port dies)."""
        _run(IP, "link", "set", self.hosts[host].veth, "down")

    def link_up(self, host: str) -> None:
        _run(IP, "link", "set", self.hosts[host].veth, "up")

    def netem(self, host: str, delay_ms: float = 20.0, loss_percent: float = 1.0) -> None:
        """Delay and lose ``host``'s outgoing packets (``tc qdisc ... netem``); ``NetemUnavailableError`` if the
        kernel or iproute2 here cannot (e.g. the sch_netem module is missing)."""
        if shutil.which("tc") is None:
            raise NetemUnavailableError("iproute2's `tc` is not installed")
        p = _run(*self.command(host, ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay",
                                      f"{delay_ms}ms", "loss", f"{loss_percent}%"]), check=False)
        if p.returncode != 0:
            raise NetemUnavailableError(f"`tc qdisc add ... netem` failed here: {p.stderr.strip()} "
                                   "(the kernel lacks the sch_netem module)")

    # ---------------------------------------------------------------- services
    def start_services(self, workdir: Path, redis_port: int = 6379, moto_port: int = 5000) -> Services:
        """redis-server and moto_server (S3, SQS) on the ``svc`` host, listening on its address."""
        svc = self.hosts["svc"]
        redis_exe = shutil.which("redis-server")
        if redis_exe is None:
            raise RuntimeError("redis-server is not installed (scripts/sysdeps.sh installs it)")
        beside = Path(sys.executable).with_name("moto_server")
        moto_exe = str(beside) if beside.exists() else shutil.which("moto_server")
        if moto_exe is None:
            raise RuntimeError("moto_server is not installed: pip install 'moto[server]' (part of the test extra)")
        redis = self.popen("svc", [redis_exe, "--port", str(redis_port), "--bind", svc.address, "--save", "",
                                   "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "no"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        moto = self.popen("svc", [moto_exe, "-H", svc.address, "-p", str(moto_port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_listening("svc", redis_port, redis)
        self.wait_listening("svc", moto_port, moto)
        return Services(redis=f"redis://{svc.address}:{redis_port}/0", s3=f"http://{svc.address}:{moto_port}",
                        processes=(redis, moto))


@dataclass(frozen=True)
class Services:
    """The services host's servers: the Redis URL, the S3/SQS endpoint, and their processes."""

    redis: str
    s3: str
    processes: tuple[subprocess.Popen, ...]


class NamespaceLauncher(LocalProcessLauncher):
    """Executors as ``ip netns exec NETNS python -m executor ...`` processes, spread over hosts.

    Each new executor goes to the host with the fewest live executors of this launcher (ties: the
    first listed).  A host with a file of its name in ``down_dir`` gets none (it is gone).

    Parameters
    ----------
    hosts : dict of str to str
        Host name -> network namespace name.
    down_dir : str, optional
        Directory of the "host is down" marks.
    warm : bool
        Fork executors from a zygote in each host (default False: a fresh ``python -m executor`` each).
    """

    def __init__(self, hosts: dict[str, str], down_dir: str | None = None, max_executors: int | None = None,
                 python: str = sys.executable, warm: bool = False):
        super().__init__(python, max_executors or len(hosts), 60.0, False)
        self.warm_hosts = warm
        self.hosts = dict(hosts)
        self.down_dir = down_dir
        self.placement: dict[str, str] = {}  # executor id -> host
        self.jobs: set[str] = set()  # the jobs it launched executors for

    def launch(self, spec: ExecutorSpec, n: int) -> list[str]:
        self.jobs.add(spec.job)
        return super().launch(spec, n)

    def _up(self) -> list[str]:
        if self.down_dir is None:
            return list(self.hosts)
        return [h for h in self.hosts if not os.path.exists(os.path.join(self.down_dir, h))]

    def _can_start(self) -> int:
        return sys.maxsize if self._up() else 0

    def _place(self, executor_id: str) -> str:
        live = self.alive()
        up = self._up()
        load = {h: sum(1 for e in live if self.placement.get(e) == h) for h in up}
        host = min(up, key=lambda h: (load[h], up.index(h)))
        self.placement[executor_id] = host
        return host

    def prefix(self, host: str) -> tuple[str, ...]:
        """The command prefix that runs a program in ``host``."""
        return (IP, "netns", "exec", self.hosts[host])

    def _command(self, spec: ExecutorSpec, executor_id: str) -> list[str]:
        host = self._place(executor_id)
        return [*self.prefix(host), self.python, "-m", "executor", *spec.cli_args(executor_id)]

    def _spawn(self, spec: ExecutorSpec, executor_id: str, env: dict[str, str]):
        if not self.warm_hosts:
            return super()._spawn(spec, executor_id, env)
        host = self._place(executor_id)
        return WarmStarter.start(spec.cli_args(executor_id), env, prefix=self.prefix(host))

    def zygotes(self) -> dict[str, int]:
        """Host -> pid of its running zygote (warm hosts only)."""
        return {h: z.proc.pid for h in self.hosts if (z := WarmStarter._instances.get(self.prefix(h))) and z.alive()}
