"""The ``npw`` command line, driven as a user drives it: subprocesses on real backends (files and SQLite,
and a real redis-server on loopback), plus the progress bar, the executors' log lines, and the report
opened in headless Chromium.  Jobs that must stay running until a command acts on them are submitted
with ``executors=0`` (nothing runs them until ``npw worker`` does): no test depends on timing.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

import numpywren2 as npw
from numpywren2.cli import EXIT, reference

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["embedded", "redis"])
def env(request, tmp_path):
    """The environment of a user whose backends are set in NPW_STORE/NPW_QUEUE/NPW_STATE."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("NPW_")}
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no configuration file of the user's
    e["NPW_SECRET"] = os.environ["NPW_SECRET"]  # the signing key a user sets (docs/security.md)
    e["NPW_STORE"] = f"file://{tmp_path}/tiles"
    if request.param == "embedded":
        e["NPW_QUEUE"] = e["NPW_STATE"] = f"sqlite://{tmp_path}/state.db"
    elif request.param == "aws":  # tiles in S3, tasks in SQS (moto_server), state in Redis
        moto, tag = request.getfixturevalue("moto_server"), f"cli{uuid.uuid4().hex[:8]}"
        e.update({k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
        e["NPW_STORE"] = f"s3://{tag}/npw?region=us-east-1&endpoint_url={moto.endpoint}&create=1"
        e["NPW_QUEUE"] = f"sqs://?region=us-east-1&endpoint_url={moto.endpoint}&prefix={tag}-"
        e["NPW_STATE"] = f"{request.getfixturevalue('redis_server').url}?prefix={tag}:"
    else:
        url = f"{request.getfixturevalue('redis_server').url}?prefix=cli{uuid.uuid4().hex[:8]}:"
        e["NPW_QUEUE"] = e["NPW_STATE"] = url
    return e


def npw_cli(env, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "numpywren2", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


SUBMIT = textwrap.dedent("""
    import sys, numpy as np, numpywren2 as npw
    kind = sys.argv[1]
    with npw.runtime(store=sys.argv[2], queue=sys.argv[3], state=sys.argv[3], executors=0):
        if kind == "gemm":
            X = npw.BigMatrix.from_numpy(np.arange(64.0).reshape(8, 8), 4).persist()
            C = npw.BigMatrix.empty((8, 8), 4).persist()
            job = npw.submit(npw.programs.gemm, A=X, B=X, C=C, M=2, N=2, K=2)
        else:  # a cholesky of a matrix that is not positive definite
            X = npw.BigMatrix.from_numpy(-np.eye(8), 4).persist()
            L = npw.BigMatrix.empty((8, 8), 4).persist()
            job = npw.submit(npw.programs.cholesky, A=X, L=L, N=2)
        print(job.id, job.num_tasks)
""")


def submit_detached(env, kind="gemm") -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SUBMIT, kind, env["NPW_STORE"], env["NPW_STATE"]],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=True)
    job, n = out.stdout.split()
    return job, int(n)


@pytest.mark.parametrize("env", ["embedded", "redis", "aws"], indirect=True)
def test_run_prints_time_gflops_error_and_job_id_and_the_job_can_be_inspected(env, tmp_path):
    r = npw_cli(env, "run", "cholesky", "--n", "64", "--block", "16", "--executors", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["relative_error"] < 1e-10 and out["gflops"] > 0 and out["time_s"] > 0
    job = out["job"]
    listed = json.loads(npw_cli(env, "jobs", "--json").stdout)
    mine = [j for j in listed if j["job"] == job]
    assert mine and mine[0]["status"] == "done" and mine[0]["completed"] == mine[0]["num_tasks"] == 20
    assert mine[0]["program"] == "cholesky"
    r = npw_cli(env, "status", job)
    assert r.returncode == 0 and "done" in r.stdout and "20/20 tasks" in r.stdout
    logs = npw_cli(env, "logs", job).stdout
    assert f"job {job}: started" in logs, logs
    report = tmp_path / "r.html"
    r = npw_cli(env, "report", job, "-o", str(report))
    assert r.returncode == 0, r.stderr
    html = report.read_text()
    assert "Bokeh" in html and "cdn.bokeh.org" not in html and job in html
    assert npw_cli(env, "gc", job).returncode == 0
    assert npw_cli(env, "status", job).returncode == EXIT["not found"]
    text = npw_cli(env, "run", "gemm", "--n", "32", "--block", "16", "--executors", "1")
    assert text.returncode == 0 and "GFLOP/s" in text.stdout and "relative error" in text.stdout, text.stderr


def test_worker_attach_logs_cancel_and_gc_from_other_processes(env):
    job, n = submit_detached(env)
    r = npw_cli(env, "status", job)
    assert r.returncode == 0 and f"running  0/{n} tasks  0 executors" in r.stdout, r.stdout
    assert [j["job"] for j in json.loads(npw_cli(env, "jobs", "--json", "--status", "running").stdout)] == [job]
    r = npw_cli(env, "worker", "--job", job, "--idle-timeout", "2")
    assert r.returncode == 0, r.stderr
    r = npw_cli(env, "attach", job, "--no-progress", "--timeout", "60")
    assert r.returncode == 0 and "done" in r.stdout, r.stderr
    logs = npw_cli(env, "logs", job, "--follow").stdout  # the job has ended: --follow returns
    assert f"job {job}: started" in logs and f"job {job}: stopped after {n} task(s)" in logs, logs

    other, _ = submit_detached(env)
    r = npw_cli(env, "cancel", other)
    assert r.returncode == 0 and "cancelled at 0/" in r.stdout
    assert npw_cli(env, "cancel", other).returncode == EXIT["failed"]  # not running any more
    r = npw_cli(env, "status", other)
    assert r.returncode == EXIT["failed"] and "cancelled" in r.stdout
    r = npw_cli(env, "gc", "--finished")
    assert r.returncode == 0 and f"removed {job}" in r.stdout and f"removed {other}" in r.stdout
    assert json.loads(npw_cli(env, "jobs", "--json").stdout) == []


def test_a_failed_job_exits_1_with_its_error(env):
    job, _ = submit_detached(env, "not-positive-definite")
    assert npw_cli(env, "worker", "--job", job, "--idle-timeout", "2").returncode == 0
    r = npw_cli(env, "attach", job, "--no-progress")
    assert r.returncode == EXIT["failed"] and "LinAlgError" in r.stderr, r.stderr
    r = npw_cli(env, "status", job)
    assert r.returncode == EXIT["failed"] and "failed" in r.stdout and "error:" in r.stdout
    assert "failed" in npw_cli(env, "logs", job).stdout  # the executor's ERROR line, from the state store
    assert npw_cli(env, "gc", "--stale", "--older-than", "0").stdout == ""  # failed, so not stale


def test_stale_jobs_are_marked_failed_and_removed(env):
    job, _ = submit_detached(env)
    assert npw_cli(env, "gc", "--stale").stdout == ""  # younger than an hour
    r = npw_cli(env, "gc", "--stale", "--older-than", "0", "--dry-run")
    assert r.returncode == 0 and f"would remove {job}" in r.stdout
    assert npw_cli(env, "gc", "--stale", "--older-than", "0").returncode == 0
    assert npw_cli(env, "status", job).returncode == EXIT["not found"]


def test_npw_jobs_settles_a_running_job_with_a_tombstone(env):
    """A running job whose client gave up on it in an outage left a tombstone in the tile store
    (``core.tombstone``; written here by hand, the outage itself is tests/faults/test_outage.py): ``npw jobs``
    lists it failed with the outage's reason and deletes its queue and its prefix."""
    from numpywren2.core.backends import open_queue, open_state, open_store
    from numpywren2.core.tombstone import write_tombstone

    job, _ = submit_detached(env)
    store = open_store(env["NPW_STORE"])
    write_tombstone(store, job, 60.0)
    r = npw_cli(env, "jobs", "--json")
    assert r.returncode == 0, r.stderr
    row = {j["job"]: j for j in json.loads(r.stdout)}[job]
    assert row["status"] == "failed", row
    assert "unreachable for longer than outage_s (60 s)" in row["error"] and "recorded by npw jobs" in row["error"]
    assert store.list(f"{job}/") == [], "no tombstone left"
    state, queue = open_state(env["NPW_STATE"]), open_queue(env["NPW_QUEUE"], job)
    assert queue.depth() == 0, "no queue left"
    state.close()
    queue.close()


def test_usage_errors_missing_jobs_and_backend_precedence(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPW_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    assert npw_cli(env).returncode == EXIT["usage"]
    assert npw_cli(env, "run", "nosuch").returncode == EXIT["usage"]
    r = npw_cli(env, "jobs")
    assert r.returncode == EXIT["usage"] and "NPW_STORE" in r.stderr
    # the configuration file gives all three; the environment overrides one of them
    cfg = tmp_path / "cfg" / "numpywren2" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[backends]\nstore = "file://{tmp_path}/t"\nqueue = "sqlite://{tmp_path}/nothere/q.db"\n'
                   f'state = "sqlite://{tmp_path}/nothere/s.db"\n')
    env["NPW_QUEUE"] = env["NPW_STATE"] = f"sqlite://{tmp_path}/s.db"
    r = npw_cli(env, "status", "job-0000")
    assert r.returncode == EXIT["not found"] and "no job 'job-0000'" in r.stderr, r.stderr
    assert (tmp_path / "s.db").exists() and not (tmp_path / "nothere").exists()
    r = npw_cli(env, "--store", "file:///x", "jobs")
    assert r.returncode == EXIT["usage"]  # flags come after the subcommand
    cfg.write_text("[backends]\nstore = 1\nbogus = 2\n")
    assert npw_cli(env, "jobs").returncode == EXIT["usage"]
    for sub in ("run", "jobs", "status", "logs", "cancel", "attach", "gc", "worker", "provision", "report"):
        r = npw_cli(env, sub, "--help")
        assert r.returncode == 0 and f"usage: npw {sub}" in r.stdout


def test_the_console_script_is_installed():
    npw_bin = Path(sys.executable).parent / "npw"
    assert npw_bin.exists(), "pip install -e . installs the npw console script"
    r = subprocess.run([str(npw_bin), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage: npw" in r.stdout


def test_docs_cli_md_is_generated_from_the_parsers():
    assert (ROOT / "docs" / "cli.md").read_text() == reference() + "\n", \
        "docs/cli.md is out of date: python -c 'import numpywren2.cli as c; print(c.reference())' > docs/cli.md"


# --------------------------------------------------------------------------- progress, job ids, logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def test_progress_bar_on_a_terminal_only_and_the_job_id_is_logged_and_kept(rt, caplog):
    X = npw.BigMatrix.from_numpy(np.eye(32) * 2, 8)
    with caplog.at_level(logging.INFO, logger="numpywren2"):
        job = npw.submit(npw.programs.cholesky, A=X, L=npw.BigMatrix.empty((32, 32), 8), N=4)
    assert npw.last_job() is job
    assert any(f"submitted job {job.id}: cholesky(N=4), {job.num_tasks} tasks" in m for m in caplog.messages)
    term = Terminal()
    job.wait(timeout=60, progress=True, stream=term)
    shown = term.getvalue()
    assert f"{job.num_tasks}/{job.num_tasks}" in shown and job.id in shown and "task/s" in shown
    pipe = io.StringIO()
    job2 = npw.submit(npw.programs.cholesky, A=X, L=npw.BigMatrix.empty((32, 32), 8), N=4)
    job2.wait(timeout=60, progress=True, stream=pipe)
    assert pipe.getvalue() == ""  # not a terminal: silent
    L = npw.cholesky(np.eye(16) * 4, block_size=8, progress=False)
    assert np.allclose(L.numpy(), 2 * np.eye(16)) and npw.last_job() is not job2
    npw.config.progress = True
    try:
        assert npw.cholesky(np.eye(16) * 9, block_size=8).numpy()[0, 0] == 3.0  # stderr is not a terminal here
    finally:
        npw.config.progress = False


def test_executor_log_lines_are_redacted_and_bounded(monkeypatch):
    from executor.upkeep import LogBuffer, redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    assert redact("redis://u:pw@h:1/0 key s3cr3t-value") == "redis://u:***@h:1/0 key ***"
    b = LogBuffer("x-9", limit=3)
    lg = logging.getLogger("executor")
    other = LogBuffer("x-10")
    before = lg.level  # NOTSET, unless an executor of an earlier test still runs in this process
    with b.attach():
        with other.attach():  # another executor of this process, in and out while the first is attached
            pass
        assert lg.level == logging.INFO and b in lg.handlers and other not in lg.handlers
        for i in range(5):
            lg.info("line %d with rediss://me:topsecret@host/0", i)
    lines = [json.loads(x) for x in b.take(final=True)]
    assert [x["message"].split(" with")[0] for x in lines[:3]] == ["line 0", "line 1", "line 2"]
    assert all("topsecret" not in x["message"] for x in lines)
    assert "2 more log line(s)" in lines[-1]["message"] and len(lines) == 4
    assert lg.level == before and b not in lg.handlers  # restored


# --------------------------------------------------------------------------- the report in a browser


CHECK = """
<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
const origError = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); origError(...a); };
let tries = 0;
const check = () => {
  const canvases = [];
  const walk = root => root.querySelectorAll('*').forEach(el => {
    if (el.tagName === 'CANVAS') canvases.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  let drawn = 0;
  for (const c of canvases) {
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4 * 7) { if (d[i] !== 0) { drawn++; break; } }
  }
  if (drawn < EXPECTED && ++tries < 60) { setTimeout(check, 500); return; }
  const out = document.createElement('pre');
  out.id = 'npw-check';
  out.textContent = JSON.stringify({canvases: canvases.length, drawn: drawn, errors: window.__errors,
                                     bokeh: typeof Bokeh !== 'undefined', tries: tries});
  document.body.appendChild(out);
};
setTimeout(check, 500);
</script>
"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_renders_every_chart_in_headless_chromium(rt, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium on this machine: `make sysdeps` as root installs Debian's chromium")
    from numpywren2.client.report import CHARTS, report_data

    X = npw.BigMatrix.from_numpy(np.eye(64) * 4 + 1, 16)
    job = npw.submit(npw.programs.cholesky, A=X, L=npw.BigMatrix.empty((64, 64), 16), N=4).wait(timeout=60)
    d = report_data(job)
    from numpywren2.core.kernels import BUILTIN

    assert len(d["tasks"]) == job.num_tasks and set(d["kernels"]) == {"chol", "trsm", "syrk", "gemm_nt"}
    assert set(d["gflops"]) == {k for k in d["kernels"] if BUILTIN[k].flops is not None} != set()
    assert d["bytes"]["read"] > 0 and d["totals"]["core_s"] > 0 and d["totals"]["gflop"] > 0
    # the DAG's profile: every task at one level; N = 4 Cholesky's longest chain is chol, trsm, syrk per step
    # (3 per step but the last's 1): 10 tasks, and no chain is longer than the run
    dag = d["dag"]
    assert dag["tasks"] == sum(dag["widths"]) == job.num_tasks and dag["critical_tasks"] == 10
    assert 0 < dag["critical_s"] <= d["totals"]["span_s"]
    path = tmp_path / "report.html"
    job.report(str(path))
    page = path.read_text()
    assert "<script src=" not in page.replace("<script src=\"data:", "")  # nothing fetched over a network
    probe = tmp_path / "probe.html"
    end = page.rindex("</body>")  # the page's own (the inlined scripts hold the text too)
    probe.write_text(page[:end] + CHECK.replace("EXPECTED", str(len(CHARTS))) + page[end:])
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2200", "--virtual-time-budget=40000"]
    r = subprocess.run([*common, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    import html as html_module
    import re

    m = re.search(r'<pre id="npw-check">(.*?)</pre>', r.stdout, re.S)
    assert m, f"the page did not run its check: {r.stdout[-2000:]}"
    got = json.loads(html_module.unescape(m.group(1)))
    assert got["bokeh"] and got["errors"] == [], got
    assert got["drawn"] >= len(CHARTS) and got["canvases"] >= len(CHARTS), got
    shot = tmp_path / "shot.png"
    r = subprocess.run([*common, f"--screenshot={shot}", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100, "the screenshot is blank"


def test_a_worker_without_a_job_serves_every_running_job_then_retires(env):
    jobs = [submit_detached(env) for _ in range(2)]
    r = npw_cli(env, "worker", "--idle-timeout", "2", "--interval", "0.2")
    assert r.returncode == 0, r.stderr
    for job, n in jobs:
        r = npw_cli(env, "status", job, "--watch")  # ended: --watch prints once and returns
        assert r.returncode == 0 and f"done  {n}/{n} tasks" in r.stdout, r.stdout


def test_aws_deploy_dry_run_prints_the_plan_and_provision_takes_every_launcher(env):
    """``npw aws deploy`` is the deployment of ``provisioner.aws_deploy`` (tested against moto in
    tests/test_aws_deploy.py); here: mounted, and its dry run calls nothing and prints the plan."""
    r = npw_cli(env, "aws", "deploy", "--function-name", "npw-x", "--bucket", "b", "--dry-run",
                "--layer-packages", "cloudpickle", timeout=120)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["role"]["name"] == "npw-x-executor" and plan["archives"]["function"]["files"] > 0
    r = npw_cli(env, "provision", "--help")
    for launcher in ("local", "lambda", "dask", "kubernetes"):
        assert launcher in r.stdout
    r = npw_cli(env, "provision", "--job", "no-such-job")
    assert r.returncode == EXIT["not found"], r.stderr



def test_plan_and_sim_answer_before_anything_runs(env, tmp_path):
    """``npw plan`` and ``npw sim`` (``numpywren2.client.plan``, tested in tests/test_plan.py and
    tests/test_sim.py) as a user runs them: no backend is touched, the outputs parse."""
    r = npw_cli(env, "plan", "cholesky", "--n", "65536", "--block", "4096", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["seconds"] > 0 and plan["cost_usd"] > 0 and plan["peak_executors"] >= 1
    assert plan["bytes_read"] > plan["bytes_written"] > 0
    timeline = tmp_path / "timeline.jsonl"
    r = npw_cli(env, "sim", "cholesky", "--n", "16384", "--block", "4096", "--timeline", str(timeline), timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["flops"] > 0 and timeline.read_text().count("\n") > 0
