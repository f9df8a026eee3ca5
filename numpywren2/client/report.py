"""A job's report: one self-contained HTML file (``Job.report(path)``, ``npw report JOB -o report.html``).

Made with bokeh, its JavaScript and CSS inlined (``bokeh.resources.INLINE``), so the file opens without
a network.  The charts, from what the job left in the state store (the executors' per-task records,
the provisioner's timeline, the counters and the executor registry):

1. timeline: executors alive, executors busy (running a task), ready and leased tasks over the run;
2. a Gantt chart of tasks per executor, coloured by kernel (like Dask's task stream);
3. the executors' time split into read / compute / write / waiting (waiting: alive, no task running);
4. bytes moved (read and written);
5. GFLOP/s per kernel, from the kernels' flop formulas (tasks of a kernel without one are left out);
6. a table of the totals: wall time, tasks, core-seconds and the cost at Lambda prices
   (``provisioner.CostModel``).

``report_data(job)`` computes every number the charts show (a plain dict; tested directly), and
``write_report`` draws it.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict

CHARTS = ("timeline", "gantt", "time_split", "bytes", "gflops")


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
    edges = sorted([(t["start"], 1) for t in tasks] + [(t["end"], -1) for t in tasks])
    busy, n = [], 0
    for at, d in edges:
        n += d
        busy.append((at, n))
    return {"job": job.id, "tasks": tasks, "timeline": timeline, "busy": busy, "split": split,
            "bytes": {"read": stats["bytes_read"], "written": stats["bytes_written"]},
            "gflops": gflops, "kernels": {k: dict(v) for k, v in per_kernel.items()},
            "executors": sorted({t["executor"] for t in tasks}),
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

    t = d["totals"]
    rows = [("status", t["status"]), ("tasks", f"{t['tasks']} / {t['num_tasks']}"),
            ("span", f"{t['span_s']:.2f} s"), ("executors", t["executors"]),
            ("executor-seconds", f"{t['executor_s']:.2f}"), ("core-seconds (with start-up)", f"{t['core_s']:.2f}"),
            ("cost at Lambda prices", f"${t['cost_usd']:.6f}"), ("GFLOP (from flop formulas)", f"{t['gflop']:.3f}")]
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
