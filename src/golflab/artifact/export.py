"""Generate a single stand-alone train_gpt.py from golflab's own modules for one config.

The portable core (see docs/ARCHITECTURE.md) is inlined module by module in import order: imports of
golflab are dropped (their names are already defined above), other imports are hoisted and deduplicated,
and the resolved config is embedded. The result needs only torch, numpy and sentencepiece and runs as
`python train_gpt.py` or `torchrun --nproc_per_node=8 train_gpt.py`; its bytes are the code bytes a
submission counts.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
from functools import lru_cache
from pathlib import Path

from golflab import __version__
from golflab.config.loader import config_hash, to_dict
from golflab.config.schema import RunConfig
from golflab.errors import GolflabError

ROOTS = ("golflab.train.loop", "golflab.train.sources", "golflab.artifact.roundtrip")
EXCLUDED = {"golflab", "golflab.artifact.export", "golflab.config.presets", "golflab.config"}

FOOTER = '''
CONFIG = {config!r}


def code_bytes(cfg):
    """The code this submission ships is this file."""
    return Path(__file__).read_bytes()


def main():
    import os
    cfg = build_config([CONFIG])
    cfg.data.path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    cfg.data.tokenizer = os.environ.get("TOKENIZER_PATH", "")
    if "SEED" in os.environ:
        cfg.seed = int(os.environ["SEED"])
    if "MAX_WALLCLOCK_SECONDS" in os.environ:
        cfg.budget.seconds = float(os.environ["MAX_WALLCLOCK_SECONDS"])
    if "ITERATIONS" in os.environ:
        cfg.budget.steps = int(os.environ["ITERATIONS"])
    validate(cfg)
    train(cfg, Path(os.environ.get("RUN_DIR", "run")))


if __name__ == "__main__":
    main()
'''


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise GolflabError(f"export: cannot find module {name}")
    return Path(spec.origin)


def _golflab_imports(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "golflab":
            out.append(node.module)
    return out


def _ordered_modules() -> list[str]:
    """Portable-core modules reachable from ROOTS, dependencies first."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name in EXCLUDED:
            return
        seen.add(name)
        tree = ast.parse(_module_path(name).read_text(encoding="utf-8"))
        for dep in _golflab_imports(tree):
            visit(dep)
        order.append(name)

    for root in ROOTS:
        visit(root)
    return order


class _StripGolflabImports(ast.NodeTransformer):
    """Drop `from golflab... import x` everywhere (keeping `as` aliases as assignments), and docstrings:
    every byte of the script counts against the 16 MB limit."""

    def _undoc(self, node):
        self.generic_visit(node)
        node.body = _strip_docstring(node.body) or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _undoc

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.module and node.module.split(".")[0] == "golflab":
            aliases = [ast.Assign(targets=[ast.Name(a.asname, ast.Store())], value=ast.Name(a.name, ast.Load()))
                       for a in node.names if a.asname and a.asname != a.name]
            return aliases or ast.Pass()
        return node


def _top_level_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


@lru_cache(maxsize=1)
def _inlined_core() -> tuple[str, str]:
    """(hoisted import block, concatenated module bodies); the same for every config."""
    imports: dict[str, None] = {}
    bodies: list[str] = []
    owner: dict[str, str] = {}
    for name in _ordered_modules():
        tree = ast.parse(_module_path(name).read_text(encoding="utf-8"))
        body: list[ast.stmt] = []
        for node in _strip_docstring(tree.body):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
                    isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("golflab")):
                imports[ast.unparse(node)] = None
                continue
            body.append(node)
        module = _StripGolflabImports().visit(ast.Module(body=body, type_ignores=[]))
        ast.fix_missing_locations(module)
        for top in _top_level_names(module.body):
            if top in owner:
                raise GolflabError(f"export: top-level name {top!r} is defined in both {owner[top]} and {name}")
            owner[top] = name
        bodies.append(f"# ---- {name} " + "-" * max(0, 80 - len(name)) + "\n" + ast.unparse(module))
    return "\n".join(imports), "\n\n\n".join(bodies)


def render_script(cfg: RunConfig) -> str:
    """The stand-alone train_gpt.py for `cfg` (data paths come from DATA_PATH / TOKENIZER_PATH at run time)."""
    cfg = copy.deepcopy(cfg)
    cfg.data.path, cfg.data.tokenizer = "", ""
    imports, bodies = _inlined_core()
    header = (f'"""Stand-alone trainer generated by golflab {__version__} for config {config_hash(cfg, include_seed=False)}.\n'
              "Run: torchrun --nproc_per_node=8 train_gpt.py  (env: DATA_PATH, TOKENIZER_PATH, SEED, "
              'MAX_WALLCLOCK_SECONDS, ITERATIONS, RUN_DIR)"""\n'
              "from __future__ import annotations\n")
    return (header + imports + f"\n__version__ = {__version__!r}\n\n\n" + bodies + "\n\n"
            + FOOTER.format(config=to_dict(cfg)))
