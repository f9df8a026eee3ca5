"""One word per thing (docs/glossary.md): the renamed options, their deprecated aliases, and a grep
of the code and the docs for the retired words in their retired meanings."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import signal
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from gates import gated_double

import lambdapack as lp
import numpywren2 as npw
from numpywren2.client.runtime import Runtime
from provisioner import AwsLambdaLauncher, Launcher, LocalProcessLauncher, Observation, ProvisionerSettings

ROOT = Path(__file__).resolve().parent.parent

# every user-facing function with the option (numpywren2's API, and submit)
ENTRY_POINTS = [npw.cholesky, npw.matmul, npw.tsqr, npw.qr, npw.solve_triangular, npw.solve, npw.inv, npw.lstsq,
                npw.svd, npw.pca, npw.random.normal, npw.random.spd, npw.submit, npw.pinv, npw.matrix_rank,
                npw.norm, npw.cond, npw.PCA]


@contextlib.contextmanager
def no_warning():
    """A block in which any warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------- the new names, and the old ones


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__qualname__)
def test_every_entry_point_takes_executors_and_its_deprecated_alias(fn):
    params = inspect.signature(fn).parameters
    assert "executors" in params and "workers" not in params
    with pytest.raises(TypeError, match=r"give executors= only \(workers= is its deprecated name\)"):
        fn(None, workers=1, executors=1)


def test_workers_still_works_and_warns_with_the_new_name():
    with pytest.warns(DeprecationWarning, match=r"runtime: workers= is deprecated, use executors= instead"):
        rt_cm = npw.runtime(workers=1)
    with rt_cm as rt:
        assert rt.executors == 1
        with pytest.warns(DeprecationWarning, match=r"Runtime: workers is deprecated, use executors instead"):
            assert rt.workers == 1
        X = np.eye(4) * 4
        with pytest.warns(DeprecationWarning, match=r"cholesky: workers= is deprecated, use executors= instead"):
            L = npw.cholesky(X, block_size=2, workers=1)
        assert np.allclose(L.numpy(), np.linalg.cholesky(X))
        program = lp.Program.from_source(textwrap.dedent("""
            def one(X: lp.Matrix, Y: lp.Matrix):
                Y[0, 0] = double(X[0, 0], 0.0, 0)
        """), {"double": gated_double}, filename="one.py")
        A, B = npw.BigMatrix.from_numpy(np.ones((1, 1)), (1, 1)), npw.BigMatrix.empty((1, 1), (1, 1))
        with pytest.warns(DeprecationWarning, match=r"submit: workers= is deprecated, use executors= instead"):
            job = npw.submit(program, X=A, Y=B, workers=0)
        assert job.provisioner is None, "workers=0 still means: launch none"
        job.cancel()
    with pytest.warns(DeprecationWarning, match=r"Runtime: workers= is deprecated"):
        r = Runtime(workers=0)
    assert r.executors == 0
    r.close()
    with no_warning(), npw.runtime(executors=1) as rt:
        assert rt.executors == 1


def test_provisioner_settings_max_executors_and_its_deprecated_alias():
    with pytest.warns(DeprecationWarning, match=r"ProvisionerSettings: max_workers= is deprecated, use max_executors="):
        s = ProvisionerSettings(max_workers=3)
    assert s.max_executors == 3
    with pytest.warns(DeprecationWarning, match=r"max_workers is deprecated, use max_executors instead"):
        assert s.max_workers == 3
    with pytest.raises(TypeError, match="give max_executors= only"):
        ProvisionerSettings(max_workers=3, max_executors=3)
    with pytest.raises(ValueError, match="max_executors must be at least 1"):
        ProvisionerSettings(max_executors=0)
    with no_warning():
        assert ProvisionerSettings(1.0, 4).max_executors == 4  # the field keeps its position
        assert dataclasses.replace(s, max_executors=5).max_executors == 5
        assert "max_executors" in {f.name for f in dataclasses.fields(ProvisionerSettings)}
        assert "max_workers" not in {f.name for f in dataclasses.fields(ProvisionerSettings)}


def test_launchers_max_executors_and_their_deprecated_aliases():
    with pytest.warns(DeprecationWarning, match=r"LocalProcessLauncher: max_workers= is deprecated, use max_exec"):
        local = LocalProcessLauncher(max_workers=2)
    assert local.default_max_executors == 2
    with pytest.warns(DeprecationWarning, match="default_max_workers is deprecated, use default_max_executors"):
        assert local.default_max_workers == 2
    with pytest.warns(DeprecationWarning, match="AwsLambdaLauncher: max_workers= is deprecated"):
        aws = AwsLambdaLauncher("fn", client=object(), max_workers=7)
    assert aws.default_max_executors == 7
    assert LocalProcessLauncher(max_executors=3).default_max_executors == 3

    with pytest.warns(DeprecationWarning, match="Old: default_max_workers is deprecated, use default_max_executors"):
        class Old(Launcher):  # a launcher written against the retired name
            default_max_workers = 9

            def launch(self, spec, n):
                return []

    assert Old().default_max_executors == 9


def test_observation_fields_and_their_deprecated_names():
    obs = Observation(ready=3, leased=2, executors=4, done=7, num_tasks=10)
    assert [f.name for f in dataclasses.fields(Observation)] == ["ready", "leased", "executors", "done", "num_tasks",
                                                                 "elapsed"]
    for old, new in [("pending", "ready"), ("in_flight", "leased"), ("running", "executors"), ("completed", "done")]:
        with pytest.warns(DeprecationWarning, match=f"Observation: {old} is deprecated, use {new} instead"):
            assert getattr(obs, old) == getattr(obs, new)


def test_the_standalone_provisioners_deprecated_option(tmp_path):
    from provisioner.__main__ import main

    with npw.runtime(executors=0) as rt:
        program = lp.Program.from_source(textwrap.dedent("""
            def one(X: lp.Matrix, Y: lp.Matrix):
                Y[0, 0] = double(X[0, 0], 0.0, 0)
        """), {"double": gated_double}, filename="one.py")
        A, B = npw.BigMatrix.from_numpy(np.ones((1, 1)), (1, 1)), npw.BigMatrix.empty((1, 1), (1, 1))
        job = npw.submit(program, X=A, Y=B)
        job.cancel()  # the provisioner sees an ended job and stops at its first step
        args = ["--store", rt.urls["store"], "--queue", rt.urls["queue"], "--state", rt.urls["state"], "--job", job.id]
        handler = signal.getsignal(signal.SIGTERM)
        try:
            with pytest.warns(DeprecationWarning, match="--max-workers is deprecated, use --max-executors instead"):
                assert main([*args, "--max-workers", "2"]) == 1  # 1: the job was cancelled
            with no_warning():
                assert main([*args, "--max-executors", "2", "--start-timeout", "30"]) == 1
        finally:
            signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------- the retired words


def project_files(*patterns: str) -> list[Path]:
    out = []
    for pattern in patterns:
        out += [p for p in ROOT.glob(pattern) if ".venv" not in p.parts]
    return sorted(set(out))


CODE = project_files("lambdapack/**/*.py", "numpywren2/**/*.py", "executor/**/*.py", "provisioner/**/*.py",
                     "bench/**/*.py", "tests/**/*.py", "scripts/**/*.py")
DOCS = project_files("README.md", "docs/*.md", "bench/RESULTS.md")

# The files and lines that may name a retired word: the glossary (which lists them), this test,
# and the lines that keep the deprecated aliases working or say so.
EXEMPT_FILES = {ROOT / "docs/glossary.md", Path(__file__).resolve(), ROOT / "numpywren2/core/deprecation.py"}
ALIAS_LINE = re.compile(r"deprecat|retired name|renamed_options\(|warn_renamed\(", re.IGNORECASE)

RETIRED_IN_CODE = {
    "the option workers= (now executors=)": re.compile(r"\bworkers\s*=|\.workers\b|--workers\b"),
    "max_workers / default_max_workers (now max_executors / default_max_executors)":
        re.compile(r"\b(default_)?max_workers\b|--max-workers\b"),
    "Observation.pending/in_flight/running/completed (now ready/leased/executors/done)":
        re.compile(r"\bobs\.(pending|in_flight|running|completed)\b|Observation\([^)]*\b(pending|in_flight|running)="),
    "timeline columns pending/running/working/completed (now ready/leased/started/done)":
        re.compile(r"\[\"(pending|running|working)\"\]|\"(pending|working)\":|"
                   r"\b(s|tl\[[^\]]*\]|tb\[[^\]]*\]|last|sample)\[\"completed\"\]"),
}
RETIRED_IN_DOCS = {
    **RETIRED_IN_CODE,
    "pending (now ready, or ready + leased)": re.compile(r"\bpending\b", re.IGNORECASE),
    "in flight (now leased)": re.compile(r"\bin[ -]flight\b", re.IGNORECASE),
    "worker for an executor": re.compile(r"\bworkers?\b", re.IGNORECASE),
}
# "worker" that is not the retired meaning: the module executor/worker.py, the `npw worker` command
# (dask's convention; also as its help lists it, docs/cli.md), and Dask's own workers in the benchmarks'
# references
NOT_RETIRED = re.compile(r"executor[./]worker(\.py)?|`?npw worker\b`?|^\s+worker {2,}run an executor|worker[ -]hosts?|"
                         r"executor: spec, worker,|Dask[^.;]*workers?|"
                         r"dask[^.;]*workers?|\b(n|num)_workers\b|threads_per_worker")


def retired_uses(files: list[Path], words: dict[str, re.Pattern]) -> list[str]:
    found = []
    for path in files:
        if path.resolve() in EXEMPT_FILES:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ALIAS_LINE.search(line):
                continue
            text = NOT_RETIRED.sub("", line)
            for what, pattern in words.items():
                if pattern.search(text):
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                    found.append(f"{where}:{n}: {what}: {line.strip()}")
    return found


def test_the_code_uses_no_retired_word():
    assert CODE and all(p.suffix == ".py" for p in CODE)
    assert retired_uses(CODE, RETIRED_IN_CODE) == []


def test_the_docs_use_no_retired_word_but_in_the_deprecation_notes():
    assert ROOT / "README.md" in DOCS and ROOT / "docs/provisioner.md" in DOCS
    assert retired_uses(DOCS, RETIRED_IN_DOCS) == []


def test_the_check_finds_what_it_looks_for(tmp_path):
    """The grep is not vacuous: each retired use, written down, is found."""
    sample = tmp_path / "sample.py"
    sample.write_text('npw.runtime(workers=4)\nProvisionerSettings(max_workers=2)\nobs.running\n'
                      'tl[-1]["completed"]\ns["pending"]\n# executor/worker.py holds the loop\n'
                      'npw.cholesky(X, executors=2)\n')
    assert len(retired_uses([sample], RETIRED_IN_CODE)) == 5
    doc = tmp_path / "doc.md"
    doc.write_text("Tasks in flight.\nThe pending tasks.\nEach worker runs tasks.\nThe `npw worker` command.\n"
                   "`workers=` is deprecated.\nDask with 2 workers.\n")
    assert [line.split(": ", 2)[1] for line in retired_uses([doc], RETIRED_IN_DOCS)] == [
        "in flight (now leased)", "pending (now ready, or ready + leased)", "worker for an executor"]


def test_the_glossary_is_linked_and_names_each_word():
    text = (ROOT / "docs/glossary.md").read_text()
    for word in ("**executor**", "**ready**", "**leased**", "**done**", "**running**", "**failed**",
                 "**cancelled**", "**started**", "`npw worker`"):
        assert word in text, word
    assert "(glossary.md)" in (ROOT / "docs/architecture.md").read_text()
    assert "docs/glossary.md" in (ROOT / "README.md").read_text()
