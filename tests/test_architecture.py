"""The layers of docs/ARCHITECTURE.md, checked statically: no import cycle among golflab's modules (top-level
imports), and the engine and stats never import lab, auto or cli (they are imported by them)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    g: dict[str, set[str]] = defaultdict(set)
    for p in SRC.rglob("*.py"):
        mod = ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(p.read_text(encoding="utf-8"))
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("golflab"):
                g[mod].add(node.module)
            elif isinstance(node, ast.Import):
                g[mod].update(a.name for a in node.names if a.name.startswith("golflab"))
    return g


def test_no_import_cycle():
    g = _graph(top_level_only=True)
    state: dict[str, int] = {}

    def visit(u: str, path: list[str]) -> None:
        state[u] = 1
        for v in g.get(u, ()):
            assert state.get(v) != 1, "import cycle: " + " -> ".join([*path[path.index(v):], v] if v in path else [u, v])
            if v not in state:
                visit(v, [*path, v])
        state[u] = 2

    for m in list(g):
        if m not in state:
            visit(m, [m])


def test_engine_and_stats_stay_below_lab_auto_and_cli():
    g = _graph(top_level_only=False)  # lazy imports inside functions count too
    for mod, deps in g.items():
        if mod.startswith(("golflab.engine", "golflab.stats")):
            bad = [d for d in deps if d.startswith(("golflab.lab", "golflab.auto", "golflab.cli"))]
            assert not bad, f"{mod} imports {bad}"
