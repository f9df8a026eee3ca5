"""Retired option names: they keep working for a while, and warn with the name that replaced them.

The project calls the process that leases and runs tasks an *executor* (docs/glossary.md), so
options once spelled with ``worker`` are spelled with ``executor`` now: ``workers=`` is
``executors=``, ``max_workers`` is ``max_executors``.  A retired name passed by keyword is
moved to its new name and a ``DeprecationWarning`` names the replacement; passing both is a
``TypeError``.

>>> import warnings
>>> @renamed_options(workers="executors")
... def run(*, executors=None):
...     return executors
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     run(workers=3)
3
>>> str(caught[0].message)
'run: workers= is deprecated, use executors= instead'
>>> run(executors=2)
2
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def warn_renamed(where: str, old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` (an option or attribute of ``where``) is deprecated in favour of ``new``."""
    warnings.warn(f"{where}: {old} is deprecated, use {new} instead", DeprecationWarning, stacklevel=stacklevel)


def renamed_options(**renames: str) -> Callable[[F], F]:
    """Decorate a callable whose keyword options ``old`` were renamed ``renames[old]``.

    A call with a retired keyword warns (``DeprecationWarning``, pointing at the caller) and is
    passed on with the new keyword; a call with both is a ``TypeError``.  The wrapped callable's
    signature (``inspect.signature``) is the new one.
    """

    def decorate(fn: F) -> F:
        where = fn.__qualname__.replace(".__init__", "")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{where}: give {new}= only ({old}= is its deprecated name)")
                    warn_renamed(where, f"{old}=", f"{new}=")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
