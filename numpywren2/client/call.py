"""One call of a user-facing function (``npw.cholesky``, ``npw.solve``, ``npw.svd``, ...), start to end.

Every such function does the same four things, here in one place:

1. **take its matrix arguments** by the rules of ``numpywren2.client.arguments`` (``Call.matrix``): a numpy
   argument is checked (real dtype, 2-D, finite if ``check_finite``) and uploaded as a BigMatrix that
   belongs to the call; a BigMatrix argument must be tiled as a ``block_size`` given for it, and is
   checked for infs and NaNs by the executors of the first job that reads it;
2. **create its intermediate and result matrices** (``Call.empty``): all belong to the call until
   ``Call.keep`` hands the results to the caller;
3. **run its jobs** (``Call.run``, or ``Call.submit`` and ``Call.wait`` for jobs side by side); a job's
   error is re-raised with the same type, its message prefixed with the function's name;
4. **clean up**: leaving the ``with`` block cancels the call's jobs that have not ended (a job run
   side by side with one that failed), then deletes every matrix and tile space that belongs to the
   call (uploaded copies, intermediates, kept reflectors), whether the call returns or raises; each
   job's own scratch tiles go when the job ends.

Every user-facing function of ``numpywren2.client.linalg``, ``decomposition`` and ``random`` is one
``with Call(...)`` block.

State: ``temporary``, the matrices deleted at the end; ``jobs``, the jobs submitted; ``unchecked``,
BigMatrix arguments (by id) with the name to report, not yet verified finite by a job.
"""

from __future__ import annotations

import numpy as np

from ..core import programs
from ..core.tiling import block_shape
from .arguments import block_size_arg, real_array, require_finite
from .job import Job, TileSpace, as_bigmatrix, submit
from .matrix import BigMatrix, default_block_size


class Call:
    """The arguments, matrices and jobs of one call of a user-facing function; use as ``with Call(...) as c``.

    Parameters
    ----------
    what : str
        The function's name, for messages (``"solve"``).
    check_finite : bool
        Verify that matrix arguments hold no infs or NaNs (scipy's default: True).
    executors : int, optional
        Executors per job (default: the runtime's).
    progress : bool, optional
        Show each job's progress bar while waiting for it (default: ``npw.config.progress``).
    """

    def __init__(self, what: str, check_finite: bool = True, executors: int | None = None,
                 progress: bool | None = None):
        self.what, self.check_finite, self.executors, self.progress = what, bool(check_finite), executors, progress
        self.temporary: list[BigMatrix | TileSpace] = []
        self.jobs: list[Job] = []
        self.unchecked: dict[int, str] = {}
        self._checked_arrays: list[np.ndarray] = []  # held, so that their ids stay theirs

    def __enter__(self) -> Call:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for job in self.jobs:
            if job.finished is None:  # still running: its executors must not write into deleted matrices
                try:
                    job.cancel()
                except Exception:
                    if exc is None:
                        raise
        self.jobs.clear()
        for m in reversed(self.temporary):
            try:
                m.delete()
            except Exception:
                if exc is None:
                    raise
        self.temporary.clear()

    # ------------------------------------------------------------------ arguments
    def argument(self, x, name: str) -> BigMatrix | np.ndarray:
        """A matrix argument, checked but not uploaded: a BigMatrix, or a real 2-D (finite) numpy array."""
        if isinstance(x, BigMatrix):
            if min(x.shape) == 0:
                raise ValueError(f"{self.what}: {name} ({x.name}) is empty (shape {x.shape})")
            if self.check_finite and not any(x is t for t in self.temporary):  # not one of this call's own
                self.unchecked.setdefault(id(x), f"{name} (BigMatrix {x.name})")
            return x
        if isinstance(x, np.ndarray) and any(x is c for c in self._checked_arrays):
            return x
        a = real_array(x, name, self.what)
        if a.ndim != 2:
            raise ValueError(f"{self.what}: {name} must be a 2-D matrix, got an array of shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{self.what}: {name} is empty (shape {a.shape})")
        if self.check_finite:
            require_finite(a, name, self.what)
        self._checked_arrays.append(a)
        return a

    def vector_or_matrix(self, x, name: str) -> tuple[BigMatrix | np.ndarray, bool]:
        """A right-hand side: a BigMatrix, or a numpy vector (as one column) or matrix; and whether it was a vector."""
        if isinstance(x, BigMatrix):
            return self.argument(x, name), False
        a = real_array(x, name, self.what)
        if a.ndim == 1:
            return self.argument(a[:, None], name), True
        return self.argument(a, name), False

    def matrix(self, x, name: str, block_size=None, square: str | None = None,
               default_block: int | tuple[int, int] | None = None) -> BigMatrix:
        """A matrix argument as a BigMatrix (a numpy one uploaded; it belongs to the call).

        ``block_size``: the user's; a BigMatrix must be tiled so, a numpy array is tiled so (default:
        ``default_block``, else ``matrix.default_block_size``). ``square``: why the algorithm needs
        square tiles, if it does.
        """
        x = self.argument(x, name)
        bs = block_size_arg(block_size, self.what, square)
        if isinstance(x, BigMatrix):
            m = as_bigmatrix(x, None, name, self.what)
            if bs is not None and m.block_size != bs:
                m = self.retiled(m, bs)  # retiled by a job; the copy is checked for infs and NaNs instead
            if square is not None and m.block_size[0] != m.block_size[1]:
                raise ValueError(f"{self.what} needs square tiles ({square}); {name} ({m.name}) is tiled "
                                 f"{m.block_size}")
            return m
        if bs is None:
            bs = block_size_arg(default_block if default_block is not None else default_block_size(x.shape),
                                self.what, square)
        return self._own(as_bigmatrix(x, bs, name, self.what))

    # ------------------------------------------------------------------ matrices
    def empty(self, shape, block_size, dtype) -> BigMatrix:
        """A new matrix (intermediate, or a result to be handed over with ``keep``)."""
        return self._own(BigMatrix.empty(shape, block_size, dtype))

    def tile_space(self) -> TileSpace:
        """A new tile space without a grid (tiles with any number of indices), deleted at the end."""
        space = TileSpace.empty()
        self.temporary.append(space)
        return space

    def upload(self, x: np.ndarray, block_size) -> BigMatrix:
        """A matrix computed on the client, as an intermediate (deleted at the end)."""
        return self._own(BigMatrix.from_numpy(x, block_size))

    def keep(self, *matrices: BigMatrix):
        """Hand matrices to the caller: they are not deleted at the end. Returns the matrix (or the tuple)."""
        for m in matrices:
            self.temporary = [t for t in self.temporary if t is not m]
        return matrices[0] if len(matrices) == 1 else matrices

    def own(self, *matrices: BigMatrix):
        """Make matrices that a helper handed over with ``keep`` intermediates of the call again (deleted at the
        end). Returns the matrix (or the tuple)."""
        for m in matrices:
            if not any(t is m for t in self.temporary):
                self.temporary.append(m)
        return matrices[0] if len(matrices) == 1 else matrices

    def delete(self, *matrices: BigMatrix) -> None:
        """Delete intermediates now, rather than at the end."""
        for m in matrices:
            self.keep(m)
            m.delete()

    def _own(self, m: BigMatrix) -> BigMatrix:
        self.temporary.append(m)
        return m

    # ------------------------------------------------------------------ retiling (client/array_ops.py)
    def retiled(self, m: BigMatrix, block_size) -> BigMatrix:
        """``m`` tiled in ``block_size`` tiles: ``m`` itself if it already is, else a copy retiled by a job
        (``programs.retile``) that belongs to the call; a BigMatrix argument not yet checked for infs and
        NaNs leaves that check to the jobs that read the copy."""
        bs = block_shape(block_size)
        if m.block_size == bs:
            return m
        return self._carry_check(m, self.block(m, 0, 0, m.shape, bs))

    def block(self, m: BigMatrix, r0: int, c0: int, shape, block_size) -> BigMatrix:
        """The ``shape`` block of ``m`` whose first entry is (r0, c0), as a new matrix in ``block_size`` tiles
        (it belongs to the call), cut and put together by a job from the tiles of ``m`` it overlaps."""
        bs = block_shape(block_size)
        src = self.dense(m)
        out = self.empty(shape, bs, m.dtype)
        if min(out.shape) == 0:
            return out
        self.run(programs.retile, A=src, X=out, ROWS=out.shape[0], COLS=out.shape[1], BR1=src.block_size[0],
                 BC1=src.block_size[1], BR2=bs[0], BC2=bs[1], R0=int(r0), C0=int(c0))
        if src is not m:
            self.delete(src)
        return out

    def dense(self, m: BigMatrix) -> BigMatrix:
        """``m`` with every tile stored, as jobs need their inputs: ``m`` itself, or a copy that belongs to the
        call in which the tiles ``m`` lacks (tiles nobody wrote read as zeros) are zero tiles.

        The tiles ``m`` holds are listed (keys only): the missing ones must lie above or below a diagonal of
        the tile grid (a triangular factor, or none at all), which a job copies (``programs.densify``);
        any other pattern is a ``ValueError``.
        """
        stored = stored_tiles(m)
        gr, gc = m.grid
        if len(stored) == gr * gc:
            return m
        out = self.empty(m.shape, m.block_size, m.dtype)
        single = int(m.dtype == np.float32)
        if not stored:
            self.run(programs.zeros, X=out, ROWS=m.shape[0], COLS=m.shape[1], BR=m.block_size[0],
                     BC=m.block_size[1], SINGLE=single)
            return self._carry_check(m, out)
        below, above = max(j - i for i, j in stored), min(j - i for i, j in stored)
        grid = [(i, j) for i in range(gr) for j in range(gc)]
        if stored == {(i, j) for i, j in grid if j - i <= below}:
            lower, d = 1, below
        elif stored == {(i, j) for i, j in grid if j - i >= above}:
            lower, d = 0, above
        else:
            raise ValueError(f"{self.what}: {m.name} lacks {gr * gc - len(stored)} of its {gr * gc} tiles, and not "
                             "those above or below a diagonal of its tile grid; write them first")
        self.run(programs.densify, A=m, X=out, ROWS=m.shape[0], COLS=m.shape[1], BR=m.block_size[0],
                 BC=m.block_size[1], LOWER=lower, D=d, SINGLE=single)
        return self._carry_check(m, out)

    def _carry_check(self, m: BigMatrix, copy: BigMatrix) -> BigMatrix:
        label = self.unchecked.pop(id(m), None)
        if label is not None:
            self.unchecked[id(copy)] = label
        return copy


    # ------------------------------------------------------------------ jobs
    def job_executors(self) -> int:
        """How many executors a job of this call may use: ``executors`` if given, else the runtime's
        provisioner setting ``max_executors``, else the runtime's ``executors`` (at least 1)."""
        if self.executors:
            return self.executors
        from .runtime import current_runtime

        rt = current_runtime()
        settings = rt.provisioner_settings
        if settings is not None and settings.max_executors:
            return settings.max_executors
        return max(1, rt.executors or 1)

    def submit(self, program, **arguments) -> Job:
        """Submit one job; BigMatrix arguments not yet checked are checked for infs and NaNs by its executors."""
        check = {}
        for param, m in arguments.items():
            if isinstance(m, BigMatrix) and id(m) in self.unchecked and param in program.matrices:
                check[param] = self.unchecked[id(m)]
        job = submit(program, executors=self.executors, check_finite=check, **arguments)
        self.jobs.append(job)
        for param in check:
            self.unchecked.pop(id(arguments[param]), None)
        return job

    def wait(self, job: Job, errors: dict[type, str] | None = None) -> None:
        """Wait for a job; its error is raised again with the same type, the message prefixed with the
        function's name and, for an error type in ``errors``, with what it means for this function."""
        try:
            job.wait(progress=self.progress)
        except Exception as e:
            meaning = next((text for kind, text in (errors or {}).items() if isinstance(e, kind)), "")
            raise _with_message(e, f"{self.what}: {meaning}{e}") from None

    def run(self, program, errors: dict[type, str] | None = None, **arguments) -> None:
        """Submit one job and wait for it (see ``submit`` and ``wait``)."""
        self.wait(self.submit(program, **arguments), errors)


def _with_message(e: Exception, message: str) -> Exception:
    """An exception of ``e``'s type with another message (``e`` itself if its type cannot be built so)."""
    try:
        new = type(e)(message)
    except Exception:
        return e
    return new if str(new) == message else e


def stored_tiles(m: BigMatrix) -> set[tuple[int, int]]:
    """The tiles (i, j) of ``m`` (a matrix or a view) that are in its store (one listing of keys)."""
    prefix = f"{m.name}/"
    di, dj = getattr(m, "tile_offset", (0, 0))
    gr, gc = m.grid
    out = set()
    for key in m.store.list(prefix):
        parts = key[len(prefix):].split("/")
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            i, j = int(parts[0]) - di, int(parts[1]) - dj
            if 0 <= i < gr and 0 <= j < gc:
                out.add((i, j))
    return out
