"""The one exception a user of the language meets: ``CompileError``."""

from __future__ import annotations

import linecache

from .ir import SourceInfo


class CompileError(Exception):
    """An invalid LAmbdaPACK program, with the user's file, line and column.

    ``str(err)`` reads like a Python syntax error::

        cholesky.py:12:9: while loops are not supported in a LAmbdaPACK program
            while k < N:
            ^

    A statement inlined from another program is shown where it was written,
    followed by the calls it came through (``inlined from the call at ...``).
    """

    def __init__(self, message: str, src: SourceInfo | None = None, *, also: tuple[SourceInfo, ...] = ()):
        self.message = message
        self.src = src
        self.also = also
        super().__init__(self._format())

    @property
    def filename(self) -> str | None:
        return self.src.filename if self.src else None

    @property
    def line(self) -> int | None:
        return self.src.line if self.src else None

    @property
    def col(self) -> int | None:
        return self.src.col if self.src else None

    def _format(self) -> str:
        if self.src is None or self.src.line <= 0:
            return self.message
        parts = [f"{self.src}: {self.message}", *_excerpt(self.src), *_calls(self.src)]
        for other in self.also:
            parts += [f"  see {other}", *_excerpt(other), *_calls(other)]
        return "\n".join(parts)


def _calls(src: SourceInfo) -> list[str]:
    """The program calls a statement was inlined through, innermost first."""
    out = []
    for call in src.via:
        out += [f"  inlined from the call at {call}", *_excerpt(call)]
    return out


def _excerpt(src: SourceInfo) -> list[str]:
    text = linecache.getline(src.filename, src.line).rstrip("\n")
    if not text:
        return []
    return ["    " + text, "    " + " " * src.col + "^"]
