"""A job's report: one self-contained HTML file (``Job.report(path)``, ``npw report JOB -o report.html``).

Made with bokeh, its JavaScript and CSS inlined (``bokeh.resources.INLINE``), so the file opens without
a network.  The charts, from what the job left in the state store (the executors' per-task records,
the provisioner's timeline, the counters and the executor registry):

1. timeline: executors alive, executors busy (running a task), ready and leased tasks over the run;
2. a Gantt chart of tasks per executor, coloured by kernel (like Dask's task stream);
3. the executors' time split into read / compute / write / waiting (waiting: alive, no task running);
4. bytes moved (read and written);
5. GFLOP/s per kernel, from the kernels' flop formulas (tasks of a kernel without one are left out);
6. available parallelism: the tasks ready or running over the run (the timeline's ready + leased), beside
   the program's own profile computed from its DAG (tasks per level of the DAG, a level being the length
   of the longest chain of tasks ending in a task; the NumPyWren "dampened sinusoid" for Cholesky), both
   on the run's time axis (level k drawn at k/levels of the span);
7. a table of the totals: wall time, tasks, core-seconds and the cost at Lambda prices
   (``provisioner.CostModel``).

The critical path is the DAG's longest chain: its length in tasks, and in seconds with each task's
measured duration (the least time the job could have taken with unlimited executors and the same task
times).  Both walk the implicit DAG task by task (``starters``, ``children``, ``in_degree``), so they are
computed for jobs of up to ``DAG_LIMIT`` tasks and left out, saying so, above it.

``report_data(job)`` computes every number the charts show (a plain dict; tested directly), and
``write_report`` draws it.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict

CHARTS = ("timeline", "gantt", "time_split", "bytes", "gflops", "parallelism")
DAG_LIMIT = 200_000  # tasks: above it the DAG's profile and critical path are not computed


def dag_profile(bound, durations: dict[str, float] | None = None, limit: int = DAG_LIMIT) -> dict | None:
    """Tasks per DAG level and the critical path of ``bound`` (a ``BoundProgram``), or None above ``limit``
    tasks.  ``durations``: seconds per task (``str(task)``), for the critical path in seconds.

    >>> import numpywren2 as npw
    >>> d = dag_profile(npw.programs.cholesky.bind(N=3))
    >>> d["widths"], d["critical_tasks"]
    ([1, 2, 3, 1, 1, 1, 1], 7)
    """
    durations = durations or {}
    if bound.num_tasks() > limit:
        return None
    level: dict = {}  # tasks made ready but not yet visited: their level and chain seconds so far
    chain: dict = {}
    waiting: dict = {}  # children seen with parents still to visit: how many
    frontier = list(bound.starters())
    for t in frontier:
        level[t], chain[t] = 0, durations.get(str(t), 0.0)
    widths: list[int] = []
    critical_s, seen = 0.0, 0
    while frontier:
        t = frontier.pop()
        seen += 1
        lv, f = level.pop(t), chain.pop(t)
        widths.extend([0] * (lv + 1 - len(widths)))
        widths[lv] += 1
        critical_s = max(critical_s, f)
        for c in bound.children(t):
            left = waiting.pop(c, None)
            if left is None:
                left = bound.in_degree(c)
            level[c] = max(level.get(c, 0), lv + 1)
            chain[c] = max(chain.get(c, 0.0), f + durations.get(str(c), 0.0))
            if left <= 1:
                frontier.append(c)
            else:
                waiting[c] = left - 1
    # the longest chain has one task per level: its length in tasks is the number of levels
    return {"widths": widths, "critical_tasks": len(widths), "critical_s": critical_s, "tasks": seen}


def report_data(job) -> dict:
    """The numbers of the report of ``job`` (a ``Job``): tasks, timeline, split, bytes, per-kernel rates, totals."""
    tasks = job.task_records()
    stats = job.stats()
    timeline = job.timeline()
    for t in tasks:
        t["kernel"] = t.get("kernel") or str(t["task"]).split("(")[0]
    task_s = sum(t["end"] - t["start"] for t in tasks)
    split = {"read": sum(t.get("read_s", 0.0) for t in tasks), "compute": sum(t["kernel_s"] for t in tasks),
             "write": sum(t.get("write_s", 0.0) for t in tasks)}
    split["waiting"] = max(0.0, stats["executor_s"] - task_s)
    per_kernel: dict[str, dict] = defaultdict(lambda: {"tasks": 0, "kernel_s": 0.0, "flops": 0.0, "counted_s": 0.0})
    for t in tasks:
        k = per_kernel[t["kernel"]]
        k["tasks"] += 1
        k["kernel_s"] += t["kernel_s"]
        if t.get("flops") is not None:
            k["flops"] += t["flops"]
            k["counted_s"] += t["kernel_s"]
    gflops = {name: k["flops"] / k["counted_s"] / 1e9 for name, k in per_kernel.items()
              if k["flops"] and k["counted_s"] > 0}
    end = max([t["end"] for t in tasks] + [s["t"] for s in timeline] + [0.0])
    bound = job.bound if getattr(job, "bound", None) is not None else job.spec.bind()[0]
    durations: dict[str, float] = {}
    for t in tasks:
        durations[str(t["task"])] = max(durations.get(str(t["task"]), 0.0), t["end"] - t["start"])
    dag = dag_profile(bound, durations)
    edges = sorted([(t["start"], 1) for t in tasks] + [(t["end"], -1) for t in tasks])
    busy, n = [], 0
    for at, d in edges:
        n += d
        busy.append((at, n))
    return {"job": job.id, "tasks": tasks, "timeline": timeline, "busy": busy, "split": split,
            "bytes": {"read": stats["bytes_read"], "written": stats["bytes_written"]},
            "gflops": gflops, "kernels": {k: dict(v) for k, v in per_kernel.items()},
            "executors": sorted({t["executor"] for t in tasks}), "dag": dag,
            "totals": {"status": stats["status"], "tasks": stats["tasks"], "num_tasks": stats["num_tasks"],
                       "span_s": end, "executors": stats["executors"], "executor_s": stats["executor_s"],
                       "core_s": stats["core_s"], "cost_usd": stats["cost_usd"],
                       "gflop": sum(k["flops"] for k in per_kernel.values()) / 1e9}}


def _palette(n: int) -> list[str]:
    from bokeh.palettes import Category10, Category20

    if n <= 10:
        return list(Category10[10][:max(n, 1)])
    return [Category20[20][i % 20] for i in range(n)]


def write_report(job, path: str) -> str:
    """Write the report of ``job`` to ``path`` (HTML, resources inlined); returns ``path``."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, Div, HoverTool
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    d = report_data(job)
    width = 1000
    charts = []

    tl = figure(title="Timeline", x_axis_label="seconds since submit", y_axis_label="count", width=width, height=300,
                name="timeline")
    if d["timeline"]:
        ts = [s["t"] for s in d["timeline"]]
        for key, color in (("executors", "black"), ("ready", "orange"), ("leased", "green")):
            tl.step(ts, [s.get(key, 0) for s in d["timeline"]], color=color, legend_label=f"{key}", mode="after")
    if d["busy"]:
        tl.step([w[0] for w in d["busy"]], [w[1] for w in d["busy"]], color="royalblue",
                legend_label="executors busy", mode="after")
    tl.legend.location = "top_right"
    charts.append(tl)

    executors = d["executors"] or ["(none)"]
    kernels = sorted(d["kernels"]) or ["(none)"]
    colors = dict(zip(kernels, _palette(len(kernels))))
    src = ColumnDataSource({
        "executor": [t["executor"] for t in d["tasks"]], "start": [t["start"] for t in d["tasks"]],
        "end": [t["end"] for t in d["tasks"]], "task": [t["task"] for t in d["tasks"]],
        "kernel": [t["kernel"] for t in d["tasks"]], "color": [colors[t["kernel"]] for t in d["tasks"]]})
    gantt = figure(title="Tasks per executor", y_range=executors, x_axis_label="seconds since submit", width=width,
                   height=max(200, 24 * len(executors) + 80), name="gantt")
    gantt.hbar(y="executor", left="start", right="end", height=0.8, color="color", legend_field="kernel", source=src)
    gantt.add_tools(HoverTool(tooltips=[("task", "@task"), ("kernel", "@kernel"), ("start", "@start{0.000}"),
                                        ("end", "@end{0.000}")]))
    charts.append(gantt)

    parts = list(d["split"])
    split = figure(title="Executor time (core-seconds)", x_range=parts, width=width // 2, height=300, name="time_split")
    split.vbar(x=parts, top=[d["split"][p] for p in parts], width=0.7, color=_palette(len(parts)))
    charts.append(split)

    io = ["read", "written"]
    moved = figure(title="Bytes moved", x_range=io, width=width // 2, height=300, name="bytes")
    moved.vbar(x=io, top=[d["bytes"][k] for k in io], width=0.7, color=_palette(2))
    charts.append(moved)

    ks = sorted(d["gflops"]) or ["(no flop formulas)"]
    rate = figure(title="GFLOP/s per kernel (while computing)", x_range=ks, width=width, height=300, name="gflops")
    rate.vbar(x=ks, top=[d["gflops"].get(k, 0.0) for k in ks], width=0.7, color=[colors.get(k, "gray") for k in ks])
    charts.append(rate)

    par = figure(title="Available parallelism: tasks ready or running, and the DAG's tasks per level",
                 x_axis_label="seconds since submit", y_axis_label="tasks", width=width, height=300, name="parallelism")
    if d["timeline"]:
        par.step([s["t"] for s in d["timeline"]], [s.get("ready", 0) + s.get("leased", 0) for s in d["timeline"]],
                 color="darkorange", legend_label="measured (ready + leased)", mode="after")
    if d["dag"] and d["dag"]["widths"]:
        span, levels = d["totals"]["span_s"] or 1.0, len(d["dag"]["widths"])
        par.step([k * span / levels for k in range(levels)], d["dag"]["widths"], color="purple",
                  legend_label="from the DAG (tasks per level)", mode="after")
    par.legend.location = "top_right"
    charts.append(par)

    t = d["totals"]
    dag = d["dag"]
    rows = [("status", t["status"]), ("tasks", f"{t['tasks']} / {t['num_tasks']}"),
            ("span", f"{t['span_s']:.2f} s"), ("executors", t["executors"]),
            ("executor-seconds", f"{t['executor_s']:.2f}"), ("core-seconds (with start-up)", f"{t['core_s']:.2f}"),
            ("cost at Lambda prices", f"${t['cost_usd']:.6f}"), ("GFLOP (from flop formulas)", f"{t['gflop']:.3f}")]
    if dag is None:
        rows.append(("critical path", f"not computed (more than {DAG_LIMIT} tasks)"))
    else:
        rows += [("critical path (tasks)", dag["critical_tasks"]),
                 ("critical path (seconds, measured task times)", f"{dag['critical_s']:.2f} s")]
    table = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    head = Div(text=f"<h1>Job {html.escape(d['job'])}</h1><table>{table}</table>", width=width)
    doc = column(head, *charts)
    page = file_html(doc, INLINE, title=f"numpywren2 job {d['job']}")
    meta = json.dumps({"job": d["job"], "charts": list(CHARTS)})
    head = page.index("<head>") + len("<head>")  # the page's own, before any inlined script
    page = f'{page[:head]}\n<meta name="npw-report" content="{html.escape(meta)}">{page[head:]}'
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
