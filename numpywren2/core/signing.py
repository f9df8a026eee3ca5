"""Signed job descriptions and authenticated task messages (the threat model: ``docs/security.md``).

The secret
    One key, shared by whoever submits jobs and every executor that runs them.  ``load_secret``
    finds it, first match wins:

    1. an *embedded* runtime's own key: the file ``secret`` in the directory of its SQLite state
       database, made by the runtime (``make_runtime_secret``, 32 random bytes, mode 0600); a
       ``memory://`` state has a per-process key (its executors share the process);
    2. the environment variable ``NPW_SECRET`` (at least ``MIN_SECRET_CHARS`` characters);
    3. a config file: ``$NPW_SECRET_FILE`` if set, else ``~/.config/numpywren2/secret``; its first
       line is the key.  A key file must belong to this user and be readable by nobody else
       (``chmod 600``), or it is an error: a key others can read is no secret, and a key file
       others could have written could be theirs.

    No key is a ``SigningKeyError`` saying how to set one, raised at ``submit`` and by executors.
    The key itself never appears in a job record, a message or an error.

Job descriptions
    ``sign_description(spec_data, job, key)`` is ``"hmac-sha256:" + HMAC-SHA256(key, canonical)``,
    where ``canonical`` is the job id, a NUL byte, and the description's JSON (``JobSpec.to_data()``
    without ``signature``) with sorted keys and no spaces: one byte string per description, so a
    description can be neither altered nor replayed under another job's id.
    ``verify_description(text, job, key)`` checks the stored text *before* anything is unpickled,
    imported or bound, with a constant-time comparison; a missing or wrong signature is a
    ``SignatureError`` naming the job (never the key).

Task messages
    A queue message is ``<task JSON>~<tag>``: ``tag`` is the first 128 bits (hex) of
    HMAC-SHA256(job key, task JSON) with the *job key* HMAC-SHA256(secret, "npw-task\\0" + job).
    A tag binds a message to one job: a message for job B copied into job A's queue, or one
    written by anyone without the secret, fails ``open_message`` and is dropped unrun.  The task's
    canonical text (``Task.to_json``) is what executors tag, so the tagged body of a task is one
    string per job and can serve as its key in the state store's edge counts.

    >>> k = task_key(b"0123456789abcdef0123", "job-1")
    >>> body = seal_message(k, "[0,[1]]")
    >>> body.split("~")[0], open_message(k, body), open_message(task_key(b"x" * 20, "job-1"), body)
    ('[0,[1]]', '[0,[1]]', None)
    >>> open_message(k, "[0,[1]]"), open_message(k, "[0,[2]]~" + body.split("~")[1]), open_message(k, "x~" + "é" * 32)
    (None, None, None)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

SECRET_ENV = "NPW_SECRET"
SECRET_FILE_ENV = "NPW_SECRET_FILE"
SECRET_ARN_ENV = "NPW_SECRET_ARN"  # on Lambda: a Secrets Manager secret holding the key (executor/lambda_handler.py)
DEFAULT_SECRET_FILE = "~/.config/numpywren2/secret"
RUNTIME_SECRET_NAME = "secret"  # an embedded runtime's key, next to its state database
MIN_SECRET_CHARS = 16
SIGNATURE_SCHEME = "hmac-sha256:"
TAG_SEP = "~"
TAG_HEX = 32  # 128 bits of the HMAC

HOW_TO_SET = (f"set one with `export {SECRET_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))')` "
              f"where the client and every executor run, or write it on the first line of "
              f"{DEFAULT_SECRET_FILE} (or of the file ${SECRET_FILE_ENV} names) with mode 0600; "
              "see docs/security.md")

_memory_keys: dict[str, bytes] = {}  # memory:// state name -> this process's key


class SigningKeyError(RuntimeError):
    """No usable key to sign or verify job descriptions (the message says how to set one)."""


class SignatureError(RuntimeError):
    """A job description whose signature is missing or does not verify: it was not made by a holder of
    the key, or it was altered, or it was stored under another job's id."""


class UntrustedKernelError(RuntimeError):
    """A description names a kernel by reference (``{"ref": "module:name"}``) in a module outside the
    allow-list."""


# ---------------------------------------------------------------------- the key
def _check_private(path: Path) -> None:
    st = path.stat()
    if st.st_uid != os.getuid():
        raise SigningKeyError(f"the key file {path} belongs to another user (uid {st.st_uid}); "
                              "a key file must be this user's own")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise SigningKeyError(f"the key file {path} is accessible to other users "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`")


def _key_from_text(text: str, where: str) -> bytes:
    text = text.strip()
    if len(text) < MIN_SECRET_CHARS:
        raise SigningKeyError(f"the key in {where} is shorter than {MIN_SECRET_CHARS} characters; {HOW_TO_SET}")
    return text.encode()


def runtime_secret_path(state_url: str) -> Path | None:
    """Where an embedded runtime keeps its key, for a ``sqlite://`` state URL (else None)."""
    u = urlparse(state_url)
    if u.scheme != "sqlite" or not u.path:
        return None
    return Path(u.path).resolve().parent / RUNTIME_SECRET_NAME


def make_runtime_secret(root: str | os.PathLike) -> Path:
    """Create an embedded runtime's key in ``root`` (mode 0600, 32 random bytes as hex), unless it has one."""
    path = Path(root) / RUNTIME_SECRET_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def load_secret(state_url: str) -> bytes:
    """The key for jobs whose state store is ``state_url`` (the order is in the module docstring).

    Raises
    ------
    SigningKeyError
        No key is configured, or the configured one is too short or in a file others can read.
    """
    u = urlparse(state_url)
    if u.scheme == "memory":
        return _memory_keys.setdefault(u.netloc + u.path, secrets.token_bytes(32))
    own = runtime_secret_path(state_url)
    if own is not None and own.is_file() and not own.is_symlink():
        _check_private(own)
        return _key_from_text(own.read_text(), str(own))
    env = os.environ.get(SECRET_ENV)
    if env:
        return _key_from_text(env, f"${SECRET_ENV}")
    named = os.environ.get(SECRET_FILE_ENV)
    path = Path(named or DEFAULT_SECRET_FILE).expanduser()
    if path.is_file():
        _check_private(path)
        lines = path.read_text().splitlines()
        return _key_from_text(lines[0] if lines else "", str(path))
    if named:
        raise SigningKeyError(f"${SECRET_FILE_ENV} names {path}, which is not a file; {HOW_TO_SET}")
    raise SigningKeyError(f"no key to sign jobs with: jobs on these backends must be signed; {HOW_TO_SET}")


# ---------------------------------------------------------------------- job descriptions
def canonical_description(data: Mapping, job: str) -> bytes:
    """The bytes a description's signature covers: the job id, NUL, the sorted compact JSON of
    ``data`` without its ``signature``.

    >>> canonical_description({"b": 1, "a": [1, 2], "signature": "x"}, "job-1")
    b'job-1\\x00{"a":[1,2],"b":1}'
    """
    body = {k: v for k, v in data.items() if k != "signature"}
    return job.encode() + b"\0" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_description(data: Mapping, job: str, key: bytes) -> str:
    """The signature of description ``data`` (``JobSpec.to_data()``) stored under ``job``."""
    return SIGNATURE_SCHEME + hmac.new(key, canonical_description(data, job), hashlib.sha256).hexdigest()


def signed_for(text: str, job: str, key: bytes) -> str:
    """A stored description (JSON text) signed afresh for job ``job``: what a holder of the key does to
    run the same description as another job."""
    data = json.loads(text)
    data["signature"] = sign_description(data, job, key)
    return json.dumps(data)


def verify_description(text: str, job: str, key: bytes) -> None:
    """Check the signature of a stored description (the JSON text of the job record) before it is used.

    Raises
    ------
    SignatureError
        It is not signed, or its signature does not match (altered, signed with another key, or
        stored under another job's id).
    """
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise SignatureError(f"the description of job {job} is not JSON; refusing to run it") from None
    if not isinstance(data, dict):
        raise SignatureError(f"the description of job {job} is not a JSON object; refusing to run it")
    got = data.get("signature")
    if not isinstance(got, str) or not got.startswith(SIGNATURE_SCHEME):
        raise SignatureError(f"the description of job {job} is not signed ({SIGNATURE_SCHEME.rstrip(':')}); "
                             "refusing to run it: it was not submitted by a holder of this key, or by a "
                             "release that signs jobs")
    want = sign_description(data, job, key)
    if not hmac.compare_digest(got.encode(), want.encode()):
        raise SignatureError(f"the signature of job {job}'s description does not verify; refusing to run it: "
                             "the description was altered, signed with another key, or copied from "
                             "another job (are the client and the executors given the same key?)")


# ---------------------------------------------------------------------- task messages
def task_key(secret: bytes, job: str) -> bytes:
    """The key that tags job ``job``'s task messages, derived from the secret (one per job)."""
    return hmac.new(secret, b"npw-task\0" + job.encode(), hashlib.sha256).digest()


def seal_message(key: bytes, task_json: str) -> str:
    """The queue body of a task: its JSON and its tag (``task_key``)."""
    return f"{task_json}{TAG_SEP}{hmac.digest(key, task_json.encode(), 'sha256')[:TAG_HEX // 2].hex()}"


def open_message(key: bytes, body: str) -> str | None:
    """The task JSON of a queue body whose tag verifies (constant-time), else None."""
    text, sep, tag = body.rpartition(TAG_SEP)
    if not sep or len(tag) != TAG_HEX or not tag.isascii():
        return None
    want = hmac.digest(key, text.encode(), "sha256")[:TAG_HEX // 2].hex()
    return text if hmac.compare_digest(tag, want) else None


# ---------------------------------------------------------------------- passwords in URLs
def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: what every message shows of a URL.

    >>> redact_url("rediss://:s3cret@cache.example:6379/0?prefix=npw:")
    'rediss://:***@cache.example:6379/0?prefix=npw:'
    >>> redact_url("redis://alice:pw@h/0"), redact_url("sqlite:///tmp/s.db")
    ('redis://alice:***@h/0', 'sqlite:///tmp/s.db')
    """
    try:
        u = urlparse(url)
        password = u.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    user = u.username or ""
    host = u.hostname or ""
    port = f":{u.port}" if u.port else ""
    return u._replace(netloc=f"{user}:***@{host}{port}").geturl()


# ---------------------------------------------------------------------- kernels by reference, tenants
BUILTIN_MODULES = ("numpywren2.core.kernels",)
TRUSTED_ENV = "NPW_TRUSTED_MODULES"  # comma-separated module names, on the client and on executors


def trusted_from_env() -> tuple[str, ...]:
    return tuple(m.strip() for m in os.environ.get(TRUSTED_ENV, "").split(",") if m.strip())


def module_allowed(module: str, allowed) -> bool:
    """Whether ``module`` is one of ``allowed`` or a submodule of one.

    >>> module_allowed("mykernels.fast", ["mykernels"]), module_allowed("mykernelsx", ["mykernels"])
    (True, False)
    """
    return any(module == m or module.startswith(m + ".") for m in (*BUILTIN_MODULES, *allowed))


_JOB_ID = re.compile(r"job-[0-9a-f]{12}")


def foreign_prefixes(prefixes: Mapping[str, str], scratch, job: str) -> list[str]:
    """Tile spaces of a description that reach outside job ``job``'s own keys: a scratch space
    stored anywhere but ``<job>/<name>``, or a matrix under another job's id.

    >>> foreign_prefixes({"A": "m-1", "S": "job-aaaaaaaaaaaa/S"}, ["S"], "job-aaaaaaaaaaaa")
    []
    >>> foreign_prefixes({"A": "job-bbbbbbbbbbbb/S", "S": "job-bbbbbbbbbbbb/S"}, ["S"], "job-aaaaaaaaaaaa")
    ["A: 'job-bbbbbbbbbbbb/S'", "S: 'job-bbbbbbbbbbbb/S'"]
    """
    bad = []
    for name, prefix in prefixes.items():
        head = prefix.split("/", 1)[0]
        if name in scratch:
            ok = prefix == f"{job}/{name}"
        else:
            ok = not (_JOB_ID.fullmatch(head) and head != job)
        if not ok:
            bad.append(f"{name}: {prefix!r}")
    return bad
