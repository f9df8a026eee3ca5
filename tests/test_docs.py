"""Every fenced code block of README.md and docs/*.md runs here, so the docs cannot drift
(issue 11, items 14 and 15).  The convention, also stated in README.md ("Code in the docs"):

- ```` ```python ```` blocks run in order, one namespace per file (a block may use the names of
  the blocks above it), each as if saved in a file of its own: a program's line numbers
  (``chol@L7``) count from the block's first line.  Inputs are small and made in the blocks.
  A block with ``>>>`` prompts is a doctest: the output shown is compared with the real one.
- Blocks that need S3, SQS or Redis run against the loopback moto_server and redis-server of
  the tests: ``SUBSTITUTIONS`` replaces the documented URLs (and an AWS Lambda launcher by local
  processes); every replaced text must occur in the file, so a changed URL fails here first.
- ```` ```python no-run: REASON ```` blocks (code for a cluster or a service that cannot run here, the
  reason saying which) are compiled, and every name they import from the project must exist.
- ```` ```sh ```` blocks: ``make`` targets must exist in the Makefile; ``python -m MODULE`` runs
  ``--help`` and every ``--flag`` shown must be one of its options (a synopsis in brackets must
  list all of them); a script path must exist and define every flag shown.  Other tools: those in
  ``HELP_CHECKED`` have their flags checked against their own ``--help`` (``dask scheduler --help``);
  those in ``NOT_HERE`` (cluster and container tools, system services) are taken as written.
  Leading ``VAR=value`` words are an environment, not the command.
- ```` ```json ```` blocks must parse; ```` ```text NAME ```` blocks are output checked by the
  checker ``NAME`` in ``TEXT_CHECKERS``.  A block of any other kind fails the test.

Also here: the doctests of the source tree are collected (kernels included) and none is vacuous.
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import importlib.util
import json
import linecache
import pkgutil
import re
import shlex
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)```(.*)$")


def blocks(path: Path) -> list[tuple[int, str, str]]:
    """``(first line of the code, info string, code)`` of each fenced block of a markdown file."""
    out, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, info = len(m.group(1)), m.group(2).strip()
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path.name}:{i + 1}: a code block that is never closed")
        out.append((i + 2, info, "\n".join(x[indent:] for x in lines[i + 1:j]) + "\n"))
        i = j + 1
    return out


def test_the_docs_have_blocks_of_known_kinds():
    kinds = {"python", "sh", "json", "text"}
    for path in DOC_FILES:
        for line, info, _ in blocks(path):
            kind, *rest = info.split() or [""]
            assert kind in kinds, f"{path.name}:{line}: a code block of kind {info!r}; use one of {sorted(kinds)}"
            if kind == "text":
                assert rest and rest[0] in TEXT_CHECKERS, (
                    f"{path.name}:{line}: a text block must name its checker, one of {sorted(TEXT_CHECKERS)}")


# --------------------------------------------------------------------------- python blocks


def substitutions(name: str, request) -> dict[str, str]:
    """Documented text -> what runs here, for the blocks of ``name`` that need servers."""
    if name != "aws.md":
        return {}
    moto, redis = request.getfixturevalue("moto_server"), request.getfixturevalue("redis_server")
    tag = f"docs{uuid.uuid4().hex[:8]}"
    s3 = f"s3://{tag}/npw?region=us-east-1&endpoint_url={moto.endpoint}&create=1"
    sqs = f"sqs://?region=us-east-1&endpoint_url={moto.endpoint}&prefix={tag}-"
    state = f"{redis.url}?prefix={tag}:"
    return {
        '"s3://my-bucket/npw?region=us-east-1"': repr(s3),
        '"sqs://?region=us-east-1&prefix=npw-"': repr(sqs),
        '"sqs://?region=us-east-1"': repr(sqs),
        '"rediss://:PASSWORD@my-redis.xxxxxx.cache.amazonaws.com:6379/0?prefix=npw:"': repr(state),
        '"rediss://:PASSWORD@my-redis.xxxxxx.cache.amazonaws.com:6379/0"': repr(state),
        # no AWS account here: the Lambda launcher's executors are local processes; two cores
        'AwsLambdaLauncher("npw-executor", region="us-east-1")': "LocalProcessLauncher(max_executors=2)",
        "max_executors=500": "max_executors=2",
    }


def check_not_run(code: str, info: str, where: str) -> None:
    """A ``python no-run: REASON`` block: it compiles, and what it imports from the project exists."""
    import ast

    assert re.fullmatch(r"python no-run: \S.*", info), f"{where}: write `python no-run: REASON`, not {info!r}"
    tree = ast.parse(code, where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            mod = importlib.import_module(node.module)
            missing = [a.name for a in node.names if not hasattr(mod, a.name)]
            assert not missing, f"{where}: {node.module} has no {missing}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PACKAGES:
                    importlib.import_module(a.name)


def run_python_blocks(path: Path, request) -> None:
    subs = substitutions(path.name, request)
    used: set[str] = set()
    ns: dict = {"__name__": f"docs_{path.stem}"}
    if subs:
        from provisioner import LocalProcessLauncher

        ns["LocalProcessLauncher"] = LocalProcessLauncher
    for line, info, code in blocks(path):
        if info.split()[:1] != ["python"]:
            continue
        if len(info.split()) > 1:  # only `python no-run: REASON` may say more than `python`
            check_not_run(code, info, f"{path.relative_to(ROOT)}:{line}")
            continue
        for old, new in subs.items():
            if old in code:
                used.add(old)
                code = code.replace(old, new)
        where = f"{path.relative_to(ROOT)}:{line}"
        if re.search(r"^>>> ", code, re.M):
            test = doctest.DocTestParser().get_doctest(code, ns, where, str(path), line - 1)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            out: list[str] = []
            runner.run(test, out=out.append, clear_globs=False)
            assert runner.failures == 0, f"the doctest block at {where} fails:\n{''.join(out)}"
        else:
            filename = f"<{where}>"  # the block's own "file": line numbers count from its first line
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
            exec(compile(code, filename, "exec"), ns)
    assert used == set(subs), f"{path.name} no longer contains {sorted(set(subs) - used)}: update SUBSTITUTIONS"


@pytest.mark.parametrize("path", [p for p in DOC_FILES if any(i.split()[:1] == ["python"] for _, i, _ in blocks(p))],
                         ids=lambda p: p.name)
def test_python_blocks_run(path, request, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing a block writes lands in the source tree
    run_python_blocks(path, request)


# --------------------------------------------------------------------------- shell blocks


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {t for line in text.splitlines() if (m := re.match(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)", line))
            for t in m.group(1).split()}


def help_flags(module: str, *args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-m", module, *args, "--help"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, f"python -m {module} --help failed: {out.stderr}"
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", out.stdout)) - {"--help"}


# tools besides make and python that the docs show: the number of words naming the command, whose
# `--help` lists the flags (checked where the tool is installed here: the test extra installs dask)
HELP_CHECKED = {"dask": 2, "moto_server": 1}
# tools that cannot run here (a cluster's, a container engine's, the system's): taken as written
NOT_HERE = {"kubectl", "docker", "sbatch", "apt-get", "redis-server", "redis-cli"}


def check_tool(words: list[str], where: str) -> None:
    n = HELP_CHECKED[words[0]]
    exe = Path(sys.executable).with_name(words[0])
    if not exe.exists():
        return
    out = subprocess.run([str(exe), *words[1:n], "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{where}: {' '.join(words[:n])} --help failed: {out.stderr[-500:]}"
    known = set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", out.stdout))
    flags = {w.split("=")[0] for w in words[n:] if w.startswith("-") and not re.fullmatch(r"-?\d.*", w)}
    assert flags <= known, f"{where}: {' '.join(words[:n])} has no option {sorted(flags - known)}"


def check_command(words: list[str], where: str, synopsis: bool) -> None:
    while words and words[0] in ("flock",):  # flock LOCKFILE COMMAND...
        words = words[2:]
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # an environment for the command
        words = words[1:]
    if not words:
        return
    if words[0] in NOT_HERE:
        return
    if words[0] in HELP_CHECKED:
        check_tool(words, where)
        return
    if words[0] == "make":
        missing = set(words[1:]) - make_targets()
        assert not missing, f"{where}: make has no target {sorted(missing)}"
        return
    if words[0] == "npw":  # a subcommand of the command line, with options it has
        sub = next((w for w in words[1:] if not w.startswith("-")), None)
        known = help_flags("numpywren2", *([sub] if sub else []))
        flags = {w.split("=")[0].strip("[]") for w in words if w.strip("[").startswith("--")}
        assert flags <= known, f"{where}: npw {sub or ''} has no option {sorted(flags - known)}"
        return
    assert Path(words[0]).name in ("python", "python3"), f"{where}: no check for the command {words[0]!r}"
    flags = {w.split("=")[0].strip("[]") for w in words if w.strip("[").startswith("--")}
    if words[1] == "-m":
        known = help_flags(words[2])
        assert flags <= known, f"{where}: python -m {words[2]} has no option {sorted(flags - known)}"
        if synopsis:
            assert known <= flags, f"{where}: the synopsis of python -m {words[2]} misses {sorted(known - flags)}"
        return
    script = ROOT / words[1]
    assert script.is_file(), f"{where}: {words[1]} does not exist"
    source = script.read_text()
    absent = {f for f in flags if f'"{f}"' not in source}
    assert not absent, f"{where}: {words[1]} defines no option {sorted(absent)}"


def test_shell_blocks_name_real_targets_files_and_options():
    seen = 0
    for path in DOC_FILES:
        for line, info, code in blocks(path):
            if info.split()[:1] != ["sh"]:
                continue
            joined = re.sub(r"\\\n\s*", " ", code)  # continuation lines
            for k, cmd in enumerate(joined.splitlines()):
                cmd = re.sub(r"\s+#.*$", "", cmd).strip()
                if cmd and not cmd.startswith("#"):
                    seen += 1
                    check_command(shlex.split(cmd.replace("...", "")), f"{path.name}:{line + k}", "[" in cmd)
    assert seen >= 5


# --------------------------------------------------------------------------- json and text blocks


def test_json_blocks_parse():
    for path in DOC_FILES:
        for line, info, code in blocks(path):
            if info.split()[:1] == ["json"]:
                try:
                    json.loads(code)
                except json.JSONDecodeError as e:
                    raise AssertionError(f"{path.name}:{line}: {e}") from None


def check_sqlite_schema(code: str, where: str, tmp_path: Path) -> None:
    """The documented tables and columns are exactly those of the embedded backends' database."""
    from numpywren2.core.backends import SQLiteStateStore, SQLiteTaskQueue

    db = tmp_path / "state.db"
    SQLiteStateStore(str(db)).close()
    SQLiteTaskQueue(str(db), "q").close()
    con = sqlite3.connect(db)
    real = {t: [c[1] for c in con.execute(f"PRAGMA table_info({t})")]
            for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not t.startswith("sqlite_")}  # SQLite's own (AUTOINCREMENT's counters)
    con.close()
    shown = {m.group(1): [c.strip() for c in m.group(2).split(",")]
             for m in re.finditer(r"^(\w+)\(([^)]*)\)", code, re.M)}
    assert shown == real, f"{where}: the documented layout {shown} is not the database's {real}"


def check_layers(code: str, where: str, tmp_path: Path) -> None:
    """The layer diagram: its layers are those ``tests/test_layers.py`` enforces, top to bottom, and every
    module it lists exists in the package it names."""
    from test_layers import ALLOWED, layer

    rows = re.findall(r"^   (\w+) +([\w.]+): (.+)$", code, re.M)
    assert [r[0] for r in rows] == sorted(set(ALLOWED) - {"testing"}, key=lambda k: -len(ALLOWED[k])), \
        f"{where}: layers {[r[0] for r in rows]}"
    for name, package, listed in rows:
        assert layer(package) == name, f"{where}: {package} is in layer {layer(package)}, not {name}"
        for module in (m.strip() for m in listed.split(",")):
            assert importlib.util.find_spec(f"{package}.{module}") is not None, f"{where}: no module {package}.{module}"


def check_npw_help(code: str, where: str, tmp_path: Path) -> None:
    """A ``npw`` help text: exactly what the parser of that (sub)command prints."""
    from numpywren2.cli import build_parser

    words = code.split()[1:4]  # usage: npw [SUBCOMMAND] ...
    ap = build_parser()
    sub = next(a for a in ap._actions if a.dest == "command")
    name = words[1] if len(words) > 1 and words[1] in sub.choices else None
    parser = sub.choices[name] if name else ap
    inner = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None) if name else None
    if inner is not None and len(words) > 2 and words[2] in inner.choices:  # npw aws deploy
        parser, name = inner.choices[words[2]], f"{name} {words[2]}"
    assert code.rstrip() == parser.format_help().rstrip(), f"{where}: the help of npw {name or ''} has changed"


def check_npw_config(code: str, where: str, tmp_path: Path) -> None:
    """A configuration file of ``npw``: it parses, and names the three backends."""
    from numpywren2.cli.backends import NAMES, read_config

    path = tmp_path / "config.toml"
    path.write_text(code)
    assert set(read_config(path, required=True)) == set(NAMES), f"{where}: the file does not give {NAMES}"


TEXT_CHECKERS = {"sqlite-schema": check_sqlite_schema, "layers": check_layers, "npw-help": check_npw_help,
                 "npw-config": check_npw_config}


def test_text_blocks_match_the_real_output(tmp_path):
    for path in DOC_FILES:
        for line, info, code in blocks(path):
            kind, *rest = info.split() or [""]
            if kind == "text":
                TEXT_CHECKERS[rest[0]](code, f"{path.name}:{line}", tmp_path)


# --------------------------------------------------------------------------- doctests of the source tree

PACKAGES = ["lambdapack", "numpywren2", "executor", "provisioner"]


def source_doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names = [pkg] + [m.name for m in pkgutil.walk_packages(mod.__path__, pkg + ".")
                         if not m.name.endswith("__main__")]
        for name in names:
            found += [t for t in finder.find(importlib.import_module(name)) if t.examples]
    return found


def test_decorated_kernels_doctests_are_collected_and_check_something():
    tests = {t.name: t for t in source_doctests()}
    chol = tests.get("numpywren2.core.kernels.blas.chol")
    assert chol is not None, "the @lp.kernel decorator hides chol's docstring from doctest"
    wrong = doctest.DocTest([doctest.Example(e.source, e.want.replace("2.", "3.")) for e in chol.examples],
                            dict(chol.globs), chol.name, chol.filename, chol.lineno, chol.docstring)
    runner = doctest.DocTestRunner()
    runner.run(chol, out=lambda s: None)
    assert runner.tries >= 2 and runner.failures == 0
    runner = doctest.DocTestRunner()
    runner.run(wrong, out=lambda s: None)
    assert runner.failures == 1  # a wrong expected output fails: the example checks the factor


def test_no_doctest_in_the_tree_is_vacuous():
    """Every docstring with examples checks an output, and none is skipped."""
    vacuous = []
    for t in source_doctests():
        skipped = any(e.options.get(doctest.SKIP) for e in t.examples)
        if skipped or not any(e.want.strip() for e in t.examples):
            vacuous.append(f"{t.name} ({t.filename}:{t.lineno})")
    assert vacuous == []
