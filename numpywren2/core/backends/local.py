"""``LocalFileStore``: tiles as files under a directory, for the embedded runtime.

Key ``"job/L/3/4"`` is the file ``<root>/job/L/3/4.tile``; ``get`` returns read-only arrays
(memory-mapped for large tiles), after verifying the tile's checksum (``decode_tile``: a
memory-mapped tile is checked too, which reads it once through the page cache).  A put writes a
temporary file in the same directory and renames it over the target, which is
atomic on POSIX file systems, so concurrent readers never see part of a tile; a put that fails
(a full disk) removes its temporary file.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from .base import BackendError, TileNotFoundError, TileStore, decode_tile, encode_tile

_SUFFIX = ".tile"
_MMAP_BYTES = 256 * 1024  # tiles at least this large are memory-mapped rather than read


class LocalFileStore(TileStore):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = f"file://{self.root}"
        self._dirs: set[str] = set()  # directories known to exist (a mkdir per put costs a system call)
        self._prefix = str(self.root) + "/"

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid tile key {key!r}")
        return self._prefix + key + _SUFFIX  # plain strings: pathlib costs more than the I/O of a small tile

    def get(self, key: str) -> np.ndarray:
        """The tile, read-only.  Large tiles are memory-mapped: the array is the page cache's copy
        of the file, so a read costs no copy (a later put replaces the file by rename, and a
        delete unlinks it; neither disturbs an existing mapping)."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size >= _MMAP_BYTES:
                    buf = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
                else:
                    buf = bytearray(size)
                    f.readinto(buf)
        except FileNotFoundError:
            raise TileNotFoundError(key) from None
        tile = decode_tile(buf, key)
        tile.flags.writeable = False
        return tile

    def put(self, key: str, tile: np.ndarray) -> int:
        path = self._path(key)
        parent, name = path.rsplit("/", 1)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
        parts = encode_tile(tile)
        try:
            f = open(tmp, "wb")
        except FileNotFoundError:  # the directory was removed meanwhile (delete_prefix): make it again
            self._dirs.discard(parent)
            os.makedirs(parent, exist_ok=True)
            f = open(tmp, "wb")
        try:
            with f:
                for p in parts:
                    f.write(p)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def delete(self, key: str) -> bool:
        try:
            os.unlink(self._path(key))
            return True
        except FileNotFoundError:
            return False

    def delete_prefix(self, prefix: str) -> int:
        n = 0
        for key in self.list(prefix):
            try:
                os.unlink(self._path(key))
                n += 1
            except FileNotFoundError:
                pass
        # remove directories that the prefix names entirely
        d = self.root / prefix.rstrip("/")
        if prefix and prefix.endswith("/") and d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            self._dirs = {x for x in self._dirs if not Path(x).is_relative_to(d)}
        return n

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for dirpath, _, files in os.walk(base):
            for name in files:
                if name.endswith(_SUFFIX) and not name.startswith("."):
                    key = os.path.relpath(os.path.join(dirpath, name), self.root)[: -len(_SUFFIX)]
                    key = key.replace(os.sep, "/")
                    if key.startswith(prefix):
                        out.append(key)
        return sorted(out)


# --------------------------------------------------------------------------- embedded runtime directories
# An embedded runtime's directory (``numpywren2-XXXXXXXX``) holds a lock file on which its owning process
# and every executor that opens its tile store hold a shared flock for their lifetimes; the client's
# ``clean_stale_roots`` removes directories whose lock nobody holds (numpywren2/client/runtime.py).

ROOT_PREFIX = "numpywren2-"
_ROOT_NAME = re.compile(r"numpywren2-[a-z0-9_]{8}")  # tempfile.mkdtemp(prefix=ROOT_PREFIX)
LOCK_NAME = "lock"


def hold_root_lock(root: Path):
    """A shared lock on the lock file of an embedded runtime's directory ``root``, or None if
    ``root`` is not one.  A directory named like an embedded runtime's without its lock file
    has been removed (its process ended): an error, rather than re-creating it."""
    if not _ROOT_NAME.fullmatch(root.name):
        return None
    path = root / LOCK_NAME
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if not root.exists():
            raise BackendError(f"the embedded runtime's directory {root} no longer exists (its process "
                               "ended and it was cleaned up)") from None
        return None  # made by a version without lock files
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        gone = os.fstat(f.fileno()).st_nlink == 0  # removed between the open and the lock
    except BlockingIOError:
        gone = True  # a cleaner holds it exclusively: it is removing the directory
    if gone:
        f.close()
        raise BackendError(f"the embedded runtime's directory {root} is being removed (its process ended)")
    return f
