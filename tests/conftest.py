"""Shared fixtures: real servers on loopback, started and stopped by the tests."""

from __future__ import annotations

import os
import secrets

import pytest

from numpywren2.testing import MotoServer, RedisServer, free_port

__all__ = ["MotoServer", "RedisServer", "free_port"]

# Jobs on non-embedded backends are signed (numpywren2.core.signing): the suite is a deployment whose
# client and executors share one key, set here so that every executor the tests start inherits it.
os.environ.setdefault("NPW_SECRET", secrets.token_hex(32))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server():
    # fake credentials for the local endpoint; executors started by the tests inherit them
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def gates(tmp_path_factory, monkeypatch):
    """Gates for kernels (tests/gates.py): set before executors start, all opened at teardown."""
    from gates import ENV, Gates

    g = Gates(tmp_path_factory.mktemp("gates"))
    monkeypatch.setenv(ENV, str(g.dir))
    yield g
    g.open_all()
