"""Tasks: ``(statement id, loop-variable values)``; small, hashable, JSON-serialisable."""

from __future__ import annotations

import json
from operator import itemgetter


class StmtId(int):
    """A statement id that also knows how to print its tasks (label and loop variables).

    It compares and hashes as the plain int, so a task read back from JSON equals
    the task it was written from.
    """

    label: str
    varnames: tuple[str, ...]

    def __new__(cls, value: int, label: str, varnames: tuple[str, ...]):
        obj = super().__new__(cls, value)
        obj.label = label
        obj.varnames = varnames
        return obj

    def __reduce__(self):
        return (int, (int(self),))


class Task(tuple):
    """One instance of a kernel call: ``Task(stmt, idx)``.

    >>> t = Task(3, (1, 2))
    >>> t.stmt, t.idx, t == Task.from_json(t.to_json())
    (3, (1, 2), True)
    >>> str(Task(StmtId(3, "syrk@L7", ("k", "j")), (1, 2)))
    'syrk@L7(k=1, j=2)'
    """

    __slots__ = ()

    stmt = property(itemgetter(0), doc="statement id (program order of the kernel calls)")
    idx = property(itemgetter(1), doc="values of the enclosing loop variables, outermost first")

    def __new__(cls, stmt: int, idx=()):
        return tuple.__new__(cls, (stmt, tuple(idx)))

    def __repr__(self) -> str:
        stmt, idx = self
        if isinstance(stmt, StmtId):
            return f"{stmt.label}({', '.join(f'{n}={v}' for n, v in zip(stmt.varnames, idx))})"
        return f"s{stmt}({', '.join(map(str, idx))})"

    __str__ = __repr__

    def __reduce__(self):
        return (Task, (int(self[0]), self[1]))

    def to_json(self) -> str:
        """The canonical text: ``[stmt,[i,j,...]]``, no spaces (``json.dumps`` of it, spelled out: that cost
        a tenth of a no-op task).

        >>> Task(3, (0, -2, 10)).to_json(), Task(0).to_json()
        ('[3,[0,-2,10]]', '[0,[]]')
        """
        return f"[{int(self[0])},[{','.join([str(int(v)) for v in self[1]])}]]"

    @classmethod
    def from_json(cls, s: str | bytes) -> Task:
        """Parse ``to_json``'s text; anything but ``[int, [int, ...]]`` is a ``ValueError``.

        Any JSON spacing is accepted (``to_json`` of the result is the canonical text); floats,
        booleans, strings and other shapes are not (``1.0`` is not a loop value).

        >>> Task.from_json("[0, [1, 2,  3]]").to_json()
        '[0,[1,2,3]]'
        >>> Task.from_json('[0, [1.5]]')
        Traceback (most recent call last):
        ...
        ValueError: not a task: '[0, [1.5]]' (expected [statement id, [loop values...]], all integers)
        """
        try:
            v = json.loads(s)
        except (ValueError, TypeError, RecursionError) as e:
            raise ValueError(f"not a task: {_clip(s)} (not JSON: {e})") from None
        if not (isinstance(v, list) and len(v) == 2 and type(v[0]) is int and isinstance(v[1], list)
                and all(type(x) is int for x in v[1])):
            raise ValueError(f"not a task: {_clip(s)} (expected [statement id, [loop values...]], all integers)")
        return cls(v[0], tuple(v[1]))


def _clip(s, n: int = 120) -> str:
    r = repr(s)
    return r if len(r) <= n else r[:n] + "..."


# The fast constructor used by generated code: no Python-level __new__ call.
make_task = tuple.__new__
