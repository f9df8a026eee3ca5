"""Which backends a command uses: flags, else the environment, else the configuration file.

Precedence, for each of ``store``, ``queue`` and ``state`` separately: ``--store/--queue/--state``,
then ``NPW_STORE`` / ``NPW_QUEUE`` / ``NPW_STATE``, then the file named by ``--config`` or
``NPW_CONFIG``, else ``~/.config/numpywren2/config.toml`` (``$XDG_CONFIG_HOME`` if set).  The file is
TOML::

    [backends]
    store = "file:///srv/npw/tiles"
    queue = "sqlite:///srv/npw/state.db"
    state = "sqlite:///srv/npw/state.db"

>>> resolve({"store": "file:///a"}, {"NPW_STORE": "file:///b", "NPW_QUEUE": "sqlite:///q"}, {"state": "x://s"})
{'store': 'file:///a', 'queue': 'sqlite:///q', 'state': 'x://s'}
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

NAMES = ("store", "queue", "state")


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit status 2)."""


def config_path(given: str | None = None, env: dict | None = None) -> Path:
    env = os.environ if env is None else env
    if given:
        return Path(given)
    if env.get("NPW_CONFIG"):
        return Path(env["NPW_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "numpywren2" / "config.toml"


def read_config(path: Path, required: bool = False) -> dict[str, str]:
    """The ``[backends]`` table of the file (``{}`` if it does not exist and is not ``required``)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        if required:
            raise UsageError(f"configuration file {path} does not exist") from None
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"configuration file {path}: {e}") from None
    table = data.get("backends", {})
    unknown = set(table) - set(NAMES)
    if unknown:
        raise UsageError(f"configuration file {path}: unknown key(s) {sorted(unknown)} in [backends]; "
                         f"known: {', '.join(NAMES)}")
    return {k: str(v) for k, v in table.items()}


def resolve(flags: dict, env: dict, file: dict) -> dict[str, str | None]:
    """Each backend URL from the first of flags, environment, file that gives it (None if none does)."""
    return {n: flags.get(n) or env.get(f"NPW_{n.upper()}") or file.get(n) for n in NAMES}


def backends(args, required: bool = True) -> dict[str, str] | None:
    """The backend URLs of a parsed command line; None (embedded) when none is given anywhere and not
    ``required``; a ``UsageError`` when only some are given, or none while ``required``."""
    given = getattr(args, "config", None) or os.environ.get("NPW_CONFIG")
    path = config_path(getattr(args, "config", None))
    urls = resolve({n: getattr(args, n, None) for n in NAMES}, dict(os.environ), read_config(path, bool(given)))
    missing = [n for n, v in urls.items() if not v]
    if len(missing) == len(NAMES) and not required:
        return None
    if missing:
        raise UsageError(f"no {', '.join(missing)} URL: give --{missing[0]}, set NPW_{missing[0].upper()}, or "
                         f"write it under [backends] in {path}")
    return urls  # type: ignore[return-value]
