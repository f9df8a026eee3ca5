"""Brute-force task graph built by unrolling a bound program: the oracle for the analysis."""

from __future__ import annotations

from collections import defaultdict


def unrolled_graph(bound):
    """(tasks, parents, children) computed from tasks(), reads() and writes() only."""
    tasks = list(bound.tasks())
    writer_of = defaultdict(list)
    for t in tasks:
        for m, idx in bound.writes(t):
            writer_of[(m, idx)].append(t)
    parents = {}
    children = defaultdict(list)
    for t in tasks:
        ps = []
        for m, idx in bound.reads(t):
            for w in writer_of.get((m, idx), []):
                if w not in ps:
                    ps.append(w)
        parents[t] = ps
        for p in ps:
            if t not in children[p]:
                children[p].append(t)
    return tasks, parents, children, writer_of


def assert_analysis_matches(bound, valid: bool = True):
    """The implicit DAG agrees exactly with the unrolled one.

    ``starters()`` relies on validity (every read of a written tile space has a
    writer), so it is compared only for valid programs.
    """
    tasks, parents, children, _ = unrolled_graph(bound)
    assert bound.num_tasks() == len(tasks)
    assert len(set(tasks)) == len(tasks), "a task is enumerated twice"
    for t in tasks:
        got_p = bound.parents(t)
        assert len(got_p) == len(set(got_p)), f"parents of {t} not distinct: {got_p}"
        assert set(got_p) == set(parents[t]), f"parents of {t}: {got_p} != {parents[t]}"
        assert bound.in_degree(t) == len(parents[t])
        got_c = bound.children(t)
        assert len(got_c) == len(set(got_c)), f"children of {t} not distinct: {got_c}"
        assert set(got_c) == set(children.get(t, [])), f"children of {t}: {got_c} != {children.get(t)}"
    if not valid:
        return
    assert set(bound.starters()) == {t for t in tasks if not parents[t]}
    assert len(list(bound.starters())) == len({t for t in tasks if not parents[t]})
