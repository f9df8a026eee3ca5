"""The live progress bar of a job (``Job.wait(progress=True)``, ``npw.cholesky(X, progress=True)``).

A ``tqdm`` bar on stderr: tasks done / total, the rate, the ETA and the executors alive.  Nothing at
all is written when the stream is not a terminal (a log file, a pipe, a test's captured stderr), so
that progress output never ends up in files.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar:
    """A bar for one job, or nothing when ``stream`` (default: stderr) is not a terminal.

    ``update(done, executors)`` moves it; ``close()`` ends it (leaving the last line on the screen).
    """

    def __init__(self, job_id: str, total: int, stream=None):
        stream = stream if stream is not None else sys.stderr
        self.bar = None
        if is_terminal(stream):
            self.bar = tqdm(total=total, desc=job_id, unit="task", file=stream, dynamic_ncols=True,
                            mininterval=0.2, smoothing=0.1)
        self._executors_at = 0.0

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def due_for_executors(self, interval: float = 0.5) -> bool:
        """Whether the executor count is worth reading again (it costs a state-store query)."""
        if self.bar is None:
            return False
        now = time.monotonic()
        if now - self._executors_at < interval:
            return False
        self._executors_at = now
        return True

    def update(self, done: int, executors: int | None = None) -> None:
        if self.bar is None:
            return
        if executors is not None:
            self.bar.set_postfix_str(f"{executors} executors", refresh=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
