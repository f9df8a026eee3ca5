"""The layers point one way: language <- core <- executor <- provisioner <- client <- cli.

Every import in the packages is read with ``ast`` (imports inside functions included), resolved to
the project's module it names, and checked against the layer table below; the module graph must
have no cycle.  ``docs/architecture.md`` says why each arrow is allowed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lambdapack", "numpywren2", "executor", "provisioner")

# layer -> the layers it may import (itself included)
ALLOWED = {
    "language": {"language"},
    "core": {"language", "core"},
    "executor": {"language", "core", "executor"},
    "provisioner": {"language", "core", "executor", "provisioner"},
    "client": {"language", "core", "executor", "provisioner", "client"},
    "cli": {"language", "core", "executor", "provisioner", "client", "cli"},
    "testing": {"language", "core", "executor", "provisioner", "client", "cli", "testing"},
}


def layer(module: str) -> str:
    if module.startswith("lambdapack"):
        return "language"
    if module.startswith("numpywren2.core"):
        return "core"
    if module.startswith("numpywren2.testing"):
        return "testing"
    if module in ("numpywren2.cli", "numpywren2.__main__") or module.startswith("numpywren2.cli."):
        return "cli"
    if module.startswith("numpywren2"):
        return "client"
    return module.split(".")[0]


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` starts with (``a.b.c`` may name ``a.b``'s attribute c)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in known:
            return cand
        parts.pop()
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported project module, line) for every import statement anywhere in the file."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[: len(base) - node.level + 1]
                prefix = ".".join(pkg + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" for a in node.names]  # a submodule, else the module itself
        for n in names:
            target = resolve(n, known)
            if target is not None and target != module:
                out.append((target, node.lineno))
    return out


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {m: sorted(set(imports(m, p, known))) for m, p in known.items()}


def test_no_import_points_against_the_layers():
    bad = []
    for m, edges in graph().items():
        for target, line in edges:
            if layer(target) not in ALLOWED[layer(m)]:
                bad.append(f"{m}:{line} ({layer(m)}) imports {target} ({layer(target)})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_module_graph_has_no_cycle():
    g = {m: [t for t, _ in edges] for m, edges in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_package_root_imports_nothing_of_the_project_when_loaded():
    """``import numpywren2.core`` runs ``numpywren2/__init__.py``: it must load no layer by itself."""
    known = modules()
    tree = ast.parse((ROOT / "numpywren2" / "__init__.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    first_party = [ast.unparse(n) for n in top if any(
        resolve(a.name if isinstance(n, ast.Import) else f"{n.module}.{a.name}", known) for a in n.names)
        or (isinstance(n, ast.ImportFrom) and n.level)]
    assert not first_party, first_party


def test_an_executor_process_loads_neither_the_client_nor_the_provisioner():
    code = ("import sys, executor.__main__, executor.lambda_handler, executor.warm; "
            "print(sorted(m for m in sys.modules if m.startswith(('numpywren2.client', 'provisioner'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_provisioner_process_does_not_load_the_client():
    code = ("import sys, provisioner, provisioner.__main__; "
            "print(sorted(m for m in sys.modules if m.startswith('numpywren2.client')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout
