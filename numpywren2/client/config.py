"""Process-wide settings of the client: ``npw.config``.

>>> import numpywren2 as npw
>>> npw.config.progress in (True, False)
True
"""

from __future__ import annotations

import os


class Config:
    """Settings every call reads when it is not given them.

    Attributes
    ----------
    progress : bool
        Show a live progress bar (tasks done/total, rate, ETA, executors) on stderr while a call waits
        for its jobs, when stderr is a terminal.  Default: False, or True if the environment variable
        ``NPW_PROGRESS`` is ``1``.  A call's ``progress=`` argument overrides it.
    """

    def __init__(self) -> None:
        self.progress = os.environ.get("NPW_PROGRESS", "") == "1"

    def __repr__(self) -> str:
        return f"Config(progress={self.progress!r})"


config = Config()
