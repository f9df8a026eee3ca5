"""The serial reference interpreter: run a bound program in program order on numpy tiles.

It is the oracle for the distributed runtime's tests: same program, same
kernels, no queue, no store, no concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping

from .bound import BoundProgram


class InterpretError(RuntimeError):
    """A task failed or read a tile that is not there."""


def interpret(bound: BoundProgram, inputs: Mapping[str, Mapping[tuple, object]],
              kernels: Mapping[str, object] | None = None) -> dict[str, dict[tuple, object]]:
    """Execute every task in program order.

    Parameters
    ----------
    bound : BoundProgram
    inputs : mapping
        For each input tile space, a mapping from index tuple to tile.
    kernels : mapping, optional
        Kernel name -> callable; defaults to the program's own kernels.

    Returns
    -------
    dict
        For each tile space the program writes, index tuple -> tile.
    """
    table = dict(bound.program.kernels()) if kernels is None else dict(kernels)
    missing = [m for m in bound.inputs if m not in inputs and _is_read(bound, m)]
    if missing:
        raise InterpretError(f"no tiles given for input tile space(s) {', '.join(missing)}")
    tiles: dict[str, dict[tuple, object]] = {m: {} for m in bound.outputs}
    for t in bound.tasks():
        t = bound.task(*t)
        s = bound.stmt(t)
        args = []
        for a in bound.kernel_args(t):
            if isinstance(a, tuple) and a and a[0] == "tile":
                _, m, idx = a
                space = inputs.get(m) if m in bound.inputs else tiles[m]
                if space is None or idx not in space:
                    raise InterpretError(f"{t} (line {s.src.line}) reads {m}{list(idx)}, which does not exist")
                args.append(space[idx])
            else:
                args.append(a)
        try:
            result = table[s.kernel](*args)
        except Exception as e:
            raise InterpretError(f"{t} at {s.src} failed: {type(e).__name__}: {e}") from e
        outs = bound.writes(t)
        results = result if len(outs) > 1 else (result,)
        if len(outs) > 1 and (not isinstance(result, tuple) or len(result) != len(outs)):
            raise InterpretError(f"{t}: kernel {s.kernel} must return {len(outs)} tiles")
        for (m, idx), value in zip(outs, results):
            if idx in tiles[m]:
                raise InterpretError(f"{t} writes {m}{list(idx)} a second time")
            tiles[m][idx] = value
    return tiles


def _is_read(bound: BoundProgram, m: str) -> bool:
    return bool(bound.readers[m])
