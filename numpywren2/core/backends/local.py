"""``LocalFileStore``: tiles as files under a directory, for the embedded runtime.

A matrix allocated with ``allocate_matrix`` (every ``BigMatrix`` the client creates here) keeps its
tiles ``<prefix>/<i>/<j>`` as *slots* of one file, ``<root>/<prefix>/.pack`` (on the runtime's tmpfs, a
shared-memory file), instead of one file per tile; see ``_Pack`` for the layout and the write order
that keeps ``put`` atomic for readers.  Other keys (scratch spaces, ``meta``) are files as below.

Key ``"job/L/3/4"`` is the file ``<root>/job/L/3,4.tile``: a key's trailing run of tile indices names one
file in its tile space's directory (``_key_path``), so a job's scratch space is one directory, not one per
tile row (a directory made for each row cost a ``mkdir`` per put, and a walk and an ``rmdir`` per row when
the job's scratch was swept).  Files laid out one directory per index (``<root>/job/L/3/4.tile``, as
versions before 2026-12 wrote them) are still read, listed and deleted.  ``get`` returns read-only arrays
(memory-mapped for large tiles), after verifying the tile's checksum (``decode_tile``: a
memory-mapped tile is checked too, which reads it once through the page cache).  A put writes a
temporary file in the same directory and renames it over the target, which is
atomic on POSIX file systems, so concurrent readers never see part of a tile; a put that fails
(a full disk) removes its temporary file.
"""

from __future__ import annotations

import fcntl
import itertools
import mmap
import os
import re
import shutil
import struct
import uuid
from pathlib import Path

import numpy as np

from .base import (
    TILE_MAGIC,
    BackendError,
    CorruptTileError,
    TileNotFoundError,
    TileStore,
    decode_tile,
    encode_tile,
    tile_header,
    tile_size,
)

_SUFFIX = ".tile"
# names of temporary files: unique per process (its id, and a random token for hosts that share the
# directory) and per put (a counter); a uuid4 per put cost as much as the write of a small tile
_TMP_TOKEN = uuid.uuid4().hex[:16]
_TMP_SEQ = itertools.count()
_MMAP_BYTES = 256 * 1024  # tiles at least this large are memory-mapped rather than read
_PACK = ".pack"
_PACK_MAGIC = b"NPWPACK1"
_PACK_HEAD = struct.Struct("<8sqqqq16sq")  # magic, rows, cols, block rows, block cols, dtype, slot bytes
_PACK_DATA = mmap.ALLOCATIONGRANULARITY  # the first slot's offset (slots of mapped tiles stay page-aligned)


class _Pack:
    """One matrix's tiles as slots of one file (opened per access: no descriptor outlives a call).

    Layout: a header (``_PACK_HEAD``) in the first page, then slot ``(i, j)`` at ``_PACK_DATA + (i × grid
    columns + j) × slot``, each slot holding the tile exactly as the codec encodes it (``tile_header``
    then the raw data; the checksum rules of ``decode_tile`` hold unchanged); a slot is a multiple of
    the page size for tiles that are memory-mapped, of 64 bytes otherwise.  The file is sparse: a slot
    nobody wrote costs no memory and reads as missing (its first bytes are not the tile magic).

    A put writes the data, then the header without its magic, then the magic: a reader that sees the
    magic sees the whole tile.  Tiles are written once (single assignment), and a repeated put of the
    same bytes (a re-run task) finds the same header already there and writes nothing, so readers of a
    written tile never see it change; a put of other bytes (the client overwriting a tile of its own
    matrix) clears the magic first, so a concurrent reader finds the tile missing, never mixed.
    """

    def __init__(self, fd: int, path: str):
        self.fd, self.path = fd, path
        raw = os.pread(fd, _PACK_HEAD.size, 0)
        if len(raw) != _PACK_HEAD.size or raw[:8] != _PACK_MAGIC:
            os.close(fd)
            raise CorruptTileError(f"{path} is not a tile pack (bad header)")
        _, rows, cols, br, bc, dt, self.slot = _PACK_HEAD.unpack(raw)
        self.shape, self.block = (rows, cols), (br, bc)
        self.dtype = np.dtype(dt.rstrip(b"\0").decode())
        self.grid = (-(-rows // br) if rows else 0, -(-cols // bc) if cols else 0)

    @staticmethod
    def create(path: str, shape, block, dtype) -> None:
        dtype = np.dtype(dtype)
        rows, cols = shape
        br, bc = block
        grid = (-(-rows // br) if rows else 0, -(-cols // bc) if cols else 0)
        _, full = tile_size((br, bc), dtype)
        align = mmap.ALLOCATIONGRANULARITY if full >= _MMAP_BYTES else 64
        slot = -(-full // align) * align
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(_PACK_HEAD.pack(_PACK_MAGIC, rows, cols, br, bc, dtype.str.encode(), slot))
            f.truncate(_PACK_DATA + grid[0] * grid[1] * slot)  # sparse: no memory until a tile is written
        os.replace(tmp, path)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> _Pack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def where(self, i: int, j: int) -> tuple[int, tuple[int, int]]:
        """(offset of slot (i, j), the tile's shape)."""
        (rows, cols), (br, bc), gc = self.shape, self.block, self.grid[1]
        return _PACK_DATA + (i * gc + j) * self.slot, (min(br, rows - i * br), min(bc, cols - j * bc))

    def written(self, base: int) -> bool:
        return os.pread(self.fd, len(TILE_MAGIC), base) == TILE_MAGIC

    def get(self, key: str, i: int, j: int) -> np.ndarray:
        base, shape = self.where(i, j)
        _, size = tile_size(shape, self.dtype)
        end = os.fstat(self.fd).st_size
        if base + size > end:  # the pack was cut short (a mapping past its end would fault): never a part
            if end > base and self.written(base):
                raise CorruptTileError(f"tile {key!r} is corrupt: truncated or over-long (its pack {self.path} "
                                       f"ends {end - base} bytes into the tile's {size})", key)
            raise TileNotFoundError(key)
        if size >= _MMAP_BYTES:
            buf = mmap.mmap(self.fd, size, prot=mmap.PROT_READ, offset=base)
            present = buf[:len(TILE_MAGIC)] == TILE_MAGIC
        else:
            buf = bytearray(size)
            present = os.preadv(self.fd, [buf], base) == size and buf[:len(TILE_MAGIC)] == TILE_MAGIC
        if not present:
            raise TileNotFoundError(key)
        tile = decode_tile(buf, key)
        if tile.shape != shape or tile.dtype != self.dtype:
            raise CorruptTileError(f"tile {key!r} is corrupt: its header says {tile.shape} {tile.dtype}, its "
                                   f"slot holds {shape} {self.dtype}", key)
        return tile

    def put(self, key: str, i: int, j: int, tile: np.ndarray) -> int:
        base, shape = self.where(i, j)
        a = np.asarray(tile)
        if a.shape != shape or a.dtype != self.dtype:
            raise ValueError(f"tile {key!r} of shape {a.shape} and dtype {a.dtype} does not fit its slot in "
                             f"{self.path} ({shape}, {self.dtype})")
        off, size = tile_size(shape, self.dtype)
        present = self.written(base)
        if present:  # written before: the same bytes again (a re-run) change nothing
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
            head = tile_header(shape, a.dtype, memoryview(a).cast("B") if a.size else b"")
            if os.pread(self.fd, len(head), base) == head:
                return 0
            os.pwrite(self.fd, bytes(len(TILE_MAGIC)), base)  # a different tile: missing while it is replaced
        if size < _MMAP_BYTES:  # a small tile (its slot is not page-aligned): one contiguous write
            a = np.ascontiguousarray(a)
            data = memoryview(a).cast("B") if a.size else b""
            head = tile_header(shape, a.dtype, data)
            os.pwrite(self.fd, data, base + off)
        else:
            m = mmap.mmap(self.fd, size, offset=base)
            try:
                view = np.frombuffer(m, self.dtype, a.size, off).reshape(shape)
                np.copyto(view, a)  # the one copy: the caller's array (a view of its matrix, say) into the slot
                head = tile_header(shape, a.dtype, memoryview(m)[off:size])
                del view
            finally:
                m.close()
        os.pwrite(self.fd, head[len(TILE_MAGIC):], base + len(TILE_MAGIC))
        os.pwrite(self.fd, head[:len(TILE_MAGIC)], base)  # last: the tile is there
        return size

    def keys(self, prefix: str) -> list[str]:
        gr, gc = self.grid
        return [f"{prefix}/{i}/{j}" for i in range(gr) for j in range(gc) if self.written(self.where(i, j)[0])]


def _key_path(key: str) -> str:
    """``key``'s path below the store's root, without the suffix: the key with the ``/`` between its trailing
    tile indices written ``,`` (one file per tile in its tile space's directory).

    >>> _key_path("job-ab/S/0/1/4"), _key_path("m-1f/2/3"), _key_path("job-ab/_ended"), _key_path("m/x/7")
    ('job-ab/S/0,1,4', 'm-1f/2,3', 'job-ab/_ended', 'm/x/7')
    """
    parts = key.split("/")
    if not key or key[0] == "/" or ".." in parts or "," in key:
        raise ValueError(f"invalid tile key {key!r}")
    i = len(parts)
    while i > 1 and parts[i - 1].isdigit():
        i -= 1
    if len(parts) - i < 2:
        return key
    return "/".join(parts[:i]) + "/" + ",".join(parts[i:])


def _write_all(fd: int, parts: list) -> int:
    """Write the buffers ``parts`` to ``fd`` back to back (one ``writev``; the rest of a short write after it);
    returns the bytes written."""
    views = [memoryview(p).cast("B") for p in parts]
    total = sum(v.nbytes for v in views)
    done = os.writev(fd, views)
    for v in views:  # a short write: a full disk raises here, a signal or a 2 GiB tile goes on
        if done >= v.nbytes:
            done -= v.nbytes
            continue
        v, done = v[done:], 0
        while v.nbytes:
            v = v[os.write(fd, v):]
    return total


def _count_tiles(top: str) -> int | None:
    """The tile files below directory ``top`` (each one key, in either layout; not the temporary files of
    puts), or None if a pack is among them (its slots are keys too: ``LocalFileStore.list`` counts them)."""
    n, dirs = 0, [top]
    while dirs:
        with os.scandir(dirs.pop()) as it:
            for e in it:
                if e.name == _PACK:
                    return None
                if e.is_dir(follow_symlinks=False):
                    dirs.append(e.path)
                elif e.name.endswith(_SUFFIX) and not e.name.startswith("."):
                    n += 1
    return n


class LocalFileStore(TileStore):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = f"file://{self.root}"
        self._dirs: set[str] = set()  # directories known to exist (a mkdir per put costs a system call)
        self._paths: dict[str, str] = {}  # key -> file (``_path``)
        self._prefix = str(self.root) + "/"
        self._unpacked: set[str] = set()  # prefixes whose tiles are never slots of a pack (``never_packed``)

    def _path(self, key: str) -> str:
        """The file of ``key`` (``_key_path``); plain strings: pathlib costs more than the I/O of a small tile.
        Remembered for the keys seen recently (a tile is written, read and deleted)."""
        path = self._paths.get(key)
        if path is None:
            path = self._prefix + _key_path(key) + _SUFFIX
            if len(self._paths) >= 8192:
                self._paths.clear()
            self._paths[key] = path
        return path

    def _legacy_path(self, key: str) -> str | None:
        """The file of ``key`` in the layout of one directory per index, if it differs from ``_path``'s."""
        return self._prefix + key + _SUFFIX if "," in _key_path(key) else None

    def allocate_matrix(self, prefix, shape, block_size, dtype) -> None:
        """Lay the matrix's tiles out as slots of one file, ``<prefix>/.pack`` (see ``_Pack``)."""
        path = self._path(f"{prefix}/{_PACK}")[: -len(_SUFFIX)]
        parent = path.rsplit("/", 1)[0]
        os.makedirs(parent, exist_ok=True)
        self._dirs.add(parent)
        _Pack.create(path, shape, block_size, dtype)

    def never_packed(self, prefixes) -> None:
        """Tiles ``<p>/<i>/<j>`` of these prefixes are files of their own, never slots of a pack (a job's scratch
        spaces: only ``allocate_matrix`` makes a pack, and nothing allocates them): reading and writing them
        skips the look for a pack (an ``open`` that fails, per tile)."""
        self._unpacked.update(prefixes)

    def _pack(self, key: str, write: bool = False) -> tuple[_Pack, int, int] | None:
        """The pack holding ``key``'s slot (open, for writing if ``write``: the caller closes it), or None for
        a tile of its own."""
        head, _, j = key.rpartition("/")
        prefix, sep, i = head.rpartition("/")
        if not sep or prefix in self._unpacked or not (i.isdigit() and j.isdigit()):
            return None
        try:
            fd = os.open(self._prefix + prefix + "/" + _PACK, os.O_RDWR if write else os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        pack = _Pack(fd, self._prefix + prefix + "/" + _PACK)
        i, j = int(i), int(j)
        if i >= pack.grid[0] or j >= pack.grid[1]:
            pack.close()
            return None
        return pack, i, j

    def tile_location(self, key: str) -> tuple[str, int, int]:
        """Where ``key``'s encoded bytes are: (file, offset, length), for tools and tests that inspect them."""
        path = self._path(key)
        found = self._pack(key)
        if found is None:
            return path, 0, os.path.getsize(path)
        with found[0] as pack:
            base, shape = pack.where(found[1], found[2])
            return pack.path, base, tile_size(shape, pack.dtype)[1]

    def get(self, key: str) -> np.ndarray:
        """The tile, read-only.  Large tiles are memory-mapped: the array is the page cache's copy
        of the file, so a read costs no copy (a later put replaces the file by rename, and a
        delete unlinks it; neither disturbs an existing mapping)."""
        path = self._path(key)
        found = self._pack(key)
        if found is not None:
            with found[0] as pack:
                tile = pack.get(key, found[1], found[2])
            tile.flags.writeable = False
            return tile
        try:
            fd = os.open(path, os.O_RDONLY)  # descriptors, not file objects: those cost more than a small tile's I/O
        except FileNotFoundError:
            legacy = self._legacy_path(key)
            try:
                fd = os.open(legacy, os.O_RDONLY) if legacy else None
            except FileNotFoundError:
                fd = None
            if fd is None:
                raise TileNotFoundError(key) from None
        try:
            size = os.fstat(fd).st_size
            # a put replaces the file by rename, never in place: what this descriptor reads is one whole tile
            buf = mmap.mmap(fd, 0, prot=mmap.PROT_READ) if size >= _MMAP_BYTES else os.read(fd, size)
        finally:
            os.close(fd)
        tile = decode_tile(buf, key)
        tile.flags.writeable = False
        return tile

    def put(self, key: str, tile: np.ndarray) -> int:
        path = self._path(key)
        found = self._pack(key, write=True)
        if found is not None:
            with found[0] as pack:
                return pack.put(key, found[1], found[2], tile)
        parent, name = path.rsplit("/", 1)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        tmp = f"{parent}/.{name}.{os.getpid()}-{_TMP_TOKEN}-{next(_TMP_SEQ)}.tmp"
        parts = encode_tile(tile)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(tmp, flags, 0o644)
        except FileNotFoundError:  # the directory was removed meanwhile (delete_prefix): make it again
            self._dirs.discard(parent)
            os.makedirs(parent, exist_ok=True)
            fd = os.open(tmp, flags, 0o644)
        try:
            try:
                n = _write_all(fd, parts)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return n

    def exists(self, key: str) -> bool:
        path = self._path(key)
        found = self._pack(key)
        if found is not None:
            with found[0] as pack:
                return pack.written(pack.where(found[1], found[2])[0])
        legacy = self._legacy_path(key)
        return os.path.exists(path) or (legacy is not None and os.path.exists(legacy))

    def delete(self, key: str) -> bool:
        found = self._pack(key, write=True)
        if found is not None:
            with found[0] as pack:
                base = pack.where(found[1], found[2])[0]
                if not pack.written(base):
                    return False
                os.pwrite(pack.fd, bytes(len(TILE_MAGIC)), base)
                return True
        return self._unlink(key)

    def _unlink(self, key: str) -> bool:
        """Remove ``key``'s file (in either layout); False if there was none."""
        try:
            os.unlink(self._path(key))
            return True
        except FileNotFoundError:
            legacy = self._legacy_path(key)
            if legacy is None:
                return False
            try:
                os.unlink(legacy)
                return True
            except FileNotFoundError:
                return False

    def delete_prefix(self, prefix: str) -> int:
        d = self.root / prefix.rstrip("/")
        if prefix and prefix.endswith("/") and d.is_dir():
            n = _count_tiles(str(d))
            if n is not None:  # no pack below: the directory goes whole (a job's scratch, swept at its end)
                shutil.rmtree(d, ignore_errors=True)
                self._dirs = {x for x in self._dirs if not Path(x).is_relative_to(d)}
                return n
        n = sum(self.delete(key) for key in self.list(prefix))  # a pack's slots too
        # remove directories that the prefix names entirely
        if prefix and prefix.endswith("/") and d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            self._dirs = {x for x in self._dirs if not Path(x).is_relative_to(d)}
        return n

    def list(self, prefix: str = "") -> list[str]:
        # the directory of the prefix's non-index head: tiles below it are files named by their indices
        head = prefix.split("/")[:-1]
        while head and head[-1].isdigit():
            head.pop()
        base = self.root.joinpath(*head) if head else self.root
        if not base.is_dir():
            return []
        out = []
        for dirpath, _, files in os.walk(base):
            if _PACK in files:
                pack_prefix = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
                try:
                    with _Pack(os.open(os.path.join(dirpath, _PACK), os.O_RDONLY), dirpath) as pack:
                        out.extend(k for k in pack.keys(pack_prefix) if k.startswith(prefix))
                except FileNotFoundError:
                    pass
            for name in files:
                if name.endswith(_SUFFIX) and not name.startswith("."):
                    key = os.path.relpath(os.path.join(dirpath, name), self.root)[: -len(_SUFFIX)]
                    key = key.replace(os.sep, "/").replace(",", "/")
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
