"""The package's layering, read from the source: traces ← envs ← agents ← evaluation ← distill.

No import (at module level or inside a function) runs upward, no module-level import cycle exists, no
package file grows past ~500 lines, and traces/ and envs/ never import torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"traces": 0, "envs": 1, "agents": 2, "evaluation": 3, "distill": 4}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, top_level_only: bool) -> list[tuple[str, int]]:
    """``(module, line)`` for each import of ``path``; relative imports resolved against ``name``."""
    tree = ast.parse(path.read_text(), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if top_level_only:  # statements that run on import: the module body, through if / try blocks
        nodes, todo = [], list(tree.body)
        while todo:
            n = todo.pop()
            if isinstance(n, (ast.If, ast.Try)):
                todo += n.body + n.orelse + getattr(n, "finalbody", []) + [s for h in getattr(n, "handlers", [])
                                                                          for s in h.body]
            else:
                nodes.append(n)
    else:
        nodes = list(ast.walk(tree))
    out = []
    for n in nodes:
        if isinstance(n, ast.Import):
            out += [(a.name, n.lineno) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = ".".join(package[: len(package) - n.level + 1]) if n.level else ""
            mod = ".".join(p for p in (base, n.module or "") if p)
            out.append((mod, n.lineno))
            out += [(f"{mod}.{a.name}", n.lineno) for a in n.names]  # `from pkg import submodule`
    return out


def test_no_import_runs_upward():
    upward = []
    for name, path in _modules().items():
        level = LAYERS[name.split(".")[0]]
        for mod, line in _imports(name, path, top_level_only=False):
            head = mod.split(".")[0]
            if head in LAYERS and LAYERS[head] > level:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_module_level_import_cycle():
    modules = _modules()
    graph = {name: sorted({m for m, _ in _imports(name, path, top_level_only=True) if m in modules and m != name})
             for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)


def test_package_files_stay_small():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, f"files over {MAX_LINES} lines:\n" + "\n".join(long)


def test_simulators_import_no_torch():
    for name, path in _modules().items():
        if name.split(".")[0] in ("traces", "envs"):
            heavy = [m for m, _ in _imports(name, path, top_level_only=False) if m.split(".")[0] == "torch"]
            assert not heavy, f"{path.relative_to(ROOT)} imports torch"
