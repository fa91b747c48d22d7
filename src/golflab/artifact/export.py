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
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tokenize
from functools import lru_cache
from pathlib import Path

from golflab import __version__
from golflab.artifact.embedded_config import embedded_config
from golflab.artifact.prune import drop_pass, drop_unread_attributes, prune_unreachable, strip_annotations
from golflab.artifact.specialize import RUNTIME_KEYS, specialize
from golflab.config.loader import config_hash, dumps_toml, from_toml_file, to_dict, to_toml, tomllib, validate
from golflab.config.schema import RunConfig
from golflab.errors import GolflabError
from golflab.fileio import write_atomic

# The export boundary: every module the stand-alone script inlines, dependencies first. Each may
# import only the standard library, numpy, torch, sentencepiece and modules listed before it
# (tests/test_artifact_export.py checks this and that top-level names are unique).
CORE_MODULES = (
    "golflab.config.schema",
    "golflab.errors",
    "golflab.config.loader",
    "golflab.eval.bpb",
    "golflab.data.shards",
    "golflab.data.loader",
    "golflab.eval.evaluate",
    "golflab.eval.ttt",
    "golflab.model.params",
    "golflab.model.layers",
    "golflab.model.gates",
    "golflab.model.attention",
    "golflab.model.head",
    "golflab.model.mlp",
    "golflab.model.depth",
    "golflab.model.gpt",
    "golflab.model.info",
    "golflab.optim.newton_schulz",
    "golflab.optim.muon",
    "golflab.optim.table",
    "golflab.train.distributed",
    "golflab.fileio",
    "golflab.train.runlog",
    "golflab.train.schedule",
    "golflab.train.signals",
    "golflab.data.tokenizers",
    "golflab.data.dataset",
    "golflab.train.sources",
    "golflab.train.state",
    "golflab.train.compiling",
    "golflab.train.backends",
    "golflab.artifact.compress",
    "golflab.artifact.gptq",
    "golflab.artifact.lqer",
    "golflab.artifact.quantize",
    "golflab.artifact.serialize",
    "golflab.artifact.pack",
    "golflab.artifact.size",
    "golflab.artifact.environment",
    "golflab.artifact.roundtrip",
    "golflab.train.loop",
)
# Imports of these are dropped without inlining them: the package roots (only `__version__` is
# used, and the script defines it), the presets (only load_config, which the script never calls,
# imports them) and the exporter itself (imported by roundtrip.code_bytes, which the footer replaces).
NOT_INLINED = ("golflab", "golflab.config", "golflab.config.presets", "golflab.artifact.export")
# Modules that core modules import only inside a function, for a path the script does not offer:
# the import becomes a RuntimeError saying why.
OMITTED = {"golflab.data.tiktoken_tokenizer": "it reads SentencePiece tokenizers only, as parameter-golf's does"}
FOOTER = '''
from types import SimpleNamespace

CONFIG = ''  # config.toml's keys that this code reads, that it takes from the environment, or that golflab's defaults lack


def config_hash(cfg):
    """golflab hashes the whole config, which this file does not hold: golflab reads config.toml for it."""
    return None


def code_bytes(cfg):  # this file is the submission's code
    return Path(__file__).read_bytes()


def config_from_dict(values):  # nested namespaces, read as golflab reads its config dataclasses
    return SimpleNamespace(**{k: config_from_dict(v) if isinstance(v, dict) else v for k, v in values.items()})


def to_dict(cfg: RunConfig):  # config_from_dict undone, for config.toml
    return {k: to_dict(v) if isinstance(v, SimpleNamespace) else v for k, v in vars(cfg).items()}


def main():
    cfg = config_from_dict(tomllib.loads(CONFIG))
    cfg.data.path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    cfg.data.tokenizer = os.environ.get("TOKENIZER_PATH", "")
    cfg.seed = int(os.environ.get("SEED", cfg.seed))
    cfg.budget.seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", cfg.budget.seconds))
    cfg.budget.steps = int(os.environ.get("ITERATIONS", cfg.budget.steps))
    train(cfg, Path(os.environ.get("RUN_DIR", "run")), resumable=False, telemetry=False, lab=False)  # no --resume here


if __name__ == "__main__":
    main()
'''


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise GolflabError(f"export: cannot find module {name}")
    return Path(spec.origin)


def golflab_imports(tree: ast.AST) -> list[str]:
    """Modules of golflab that a module imports (at any depth, lazy imports included)."""
    return [node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "golflab"]


def check_boundary() -> None:
    """Every golflab import of a core module is a core module listed before it (or NOT_INLINED)."""
    for i, name in enumerate(CORE_MODULES):
        tree = ast.parse(_module_path(name).read_text(encoding="utf-8"))
        for dep in golflab_imports(tree):
            if dep not in CORE_MODULES[:i] and dep not in NOT_INLINED and dep not in OMITTED:
                raise GolflabError(f"export: {name} imports {dep}, which is not a core module listed before it "
                                   "(golflab.artifact.export.CORE_MODULES)")


class _StripGolflabImports(ast.NodeTransformer):
    """Drop `from golflab... import x` everywhere (keeping `as` aliases as assignments), and docstrings:
    every byte of the script counts against the 16 MB limit."""

    def _undoc(self, node):
        self.generic_visit(node)
        node.body = _strip_docstring(node.body) or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _undoc

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        # golflab states its internal invariants as asserts: the script, like `python -O`, skips them
        return ast.Pass()

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.module in OMITTED:  # reached only at run time, on a path the script does not offer
            msg = f"{node.module} is not part of this stand-alone script: {OMITTED[node.module]}"
            return ast.Raise(exc=ast.Call(ast.Name("RuntimeError", ast.Load()), [ast.Constant(msg)], []), cause=None)
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
def _inlined_core() -> tuple[str, ...]:
    """The core modules' statements with golflab imports and docstrings removed, one unparsed block
    per module (kept as source text so that each config can re-parse and prune a fresh copy)."""
    check_boundary()
    owner: dict[str, str] = {}
    blocks = []
    for name in CORE_MODULES:
        tree = ast.parse(_module_path(name).read_text(encoding="utf-8"))
        body = [node for node in _strip_docstring(tree.body)
                if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
        module = _StripGolflabImports().visit(ast.Module(body=body, type_ignores=[]))
        ast.fix_missing_locations(module)
        for top in _top_level_names(module.body):
            if top in owner:
                raise GolflabError(f"export: top-level name {top!r} is defined in both {owner[top]} and {name}")
            owner[top] = name
        blocks.append(ast.unparse(module))
    return tuple(blocks)


def _hoist_imports(tree: ast.Module) -> None:
    """Move every top-level import to the front, each distinct one once; a function's own copy of one
    (golflab's lazy `import torch`, for a fast CLI) goes, since it binds the same module."""
    plain: dict[str, ast.stmt] = {}
    names: dict[str, dict[tuple[str, str | None], None]] = {}  # from-imports merged per module
    rest = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.setdefault(node.module, {}).update({(a.name, a.asname): None for a in node.names})
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            plain.setdefault(ast.unparse(node), node)
        else:
            rest.append(node)
    froms = [ast.ImportFrom(module=m, names=[ast.alias(n, a) for n, a in sorted(ns)], level=0)
             for m, ns in sorted(names.items())]
    tree.body = [plain[k] for k in sorted(plain)] + froms + rest
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            fn.body = [s for s in fn.body if not (isinstance(s, ast.Import) and ast.unparse(s) in plain)] or [ast.Pass()]


def specialized_tree(cfg: RunConfig) -> ast.Module:
    """The script's statements for `cfg` (as validated, with its data paths blanked): the core and
    the footer, specialized to the config and pruned to what its entry point reaches; type hints
    are still there."""
    validate(cfg)  # the script trusts its embedded config
    cfg = copy.deepcopy(cfg)
    cfg.data.path, cfg.data.tokenizer = "", ""
    # CONFIG is written in after pruning: its keys are data, and as strings in the tree they would
    # count as naming attributes (`self.beta2 = 0.95` would stay for the key 'beta2')
    footer = ast.parse(FOOTER)
    shadowed = _top_level_names(footer.body)
    tree = ast.Module(body=[], type_ignores=[])
    for name, block in zip(CORE_MODULES, _inlined_core(), strict=True):
        for node in ast.parse(block).body:
            if not _top_level_names([node]) & shadowed:
                node.core_module = name  # type: ignore[attr-defined]  # for the section comments
                tree.body.append(node)
    for node in footer.body:
        node.core_module = "main"  # type: ignore[attr-defined]
    tree.body += footer.body
    specialize_and_prune(tree, cfg)
    config = next(n for n in tree.body if isinstance(n, ast.Assign) and _top_level_names([n]) == {"CONFIG"})
    config.value = ast.Constant(dumps_toml(embedded_config(tree, cfg)))
    return tree


def specialize_and_prune(tree: ast.Module, cfg: RunConfig) -> None:
    """In place: specialize, prune, and again until nothing changes: code that pruning dropped no
    longer counts as a caller, a store or a reference (`self.window = 3` in a dead function)."""
    size = None
    while size != (size := len(ast.unparse(tree))):
        specialize(tree, cfg, prune=True)
        prune_unreachable(tree)
        drop_unread_attributes(tree)


def tab_indent(source: str) -> str:
    """One tab per indentation level instead of ast.unparse's four spaces (legal Python, the same
    structure, a quarter of the bytes); lines inside a multi-line string are left as they are."""
    inside: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if i + 1 not in inside:
            body = line.lstrip(" ")
            levels, rest = divmod(len(line) - len(body), 4)
            lines[i] = "\t" * levels + " " * rest + body
    return "".join(lines)


_RENDERED: dict[str, str] = {}  # the config (runtime keys reset) as JSON -> its script, within one process
SCRIPT_CACHE_ENV = "GOLFLAB_SCRIPT_CACHE"  # a folder of rendered scripts ("" turns it off)


def script_cache_dir() -> Path | None:
    """Where rendered scripts are kept across processes: $GOLFLAB_SCRIPT_CACHE, else the user's cache
    folder. A render takes 10-30 s of pure Python, which the first run of every lab would pay again."""
    if (env := os.environ.get(SCRIPT_CACHE_ENV)) is not None:
        return Path(env) if env else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "golflab" / "scripts"


def source_digest() -> str:
    """A hash of every golflab source file as it is on disk now: both what the script inlines and the
    passes that specialize it, so an edited checkout (an agent's worktree) never reads a stale script."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _cache_path(key: str) -> Path | None:
    """The cache file of the config `key` under today's sources (None: the cache is off)."""
    folder = script_cache_dir()
    return None if folder is None else folder / f"{hashlib.sha256((key + source_digest()).encode()).hexdigest()[:32]}.py"


_PREFETCH: dict[Path, subprocess.Popen] = {}  # cache file -> the child process rendering it


def _cached_render(cfg: RunConfig, key: str) -> str:
    """`_render(cfg)`, read from the script cache when this config and these sources made it before
    (waiting for a `prefetch_script` child that is rendering it)."""
    path = _cache_path(key)
    if path is None:
        return _render(cfg)
    if (child := _PREFETCH.pop(path, None)) is not None:
        child.wait()
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    script = _render(cfg)
    _cache_write(path, script)
    return script


def _cache_write(path: Path, text: str) -> bool:
    """Write a cache file; False where the folder is not writable (the cache saves time only: that costs
    a render next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError:
        return False
    return True


def _render_key(cfg: RunConfig) -> tuple[RunConfig, str]:
    base = _runtime_free(cfg)
    return base, json.dumps(to_dict(base), sort_keys=True)


def prefetch_script(cfg: RunConfig) -> None:
    """Start rendering `cfg`'s script into the cache in a child process, unless it is there: a GPU run
    leaves the CPU idle while it trains, and its end (the artifact's code bytes) then finds it ready."""
    base, key = _render_key(cfg)
    path = _cache_path(key)
    if key in _RENDERED or path is None or path.exists() or path in _PREFETCH:
        return
    src = path.with_suffix(f".{os.getpid()}.toml")
    if not _cache_write(src, to_toml(base)):
        return
    _PREFETCH[path] = subprocess.Popen([sys.executable, "-m", "golflab.artifact.export", str(src)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)


def _runtime_free(cfg: RunConfig) -> RunConfig:
    """`cfg` with the keys the script takes from its environment (specialize.RUNTIME_KEYS) at their
    defaults: they are never folded, so they change only the embedded CONFIG and the header's hash."""
    out, default = copy.deepcopy(cfg), RunConfig()
    for path in RUNTIME_KEYS:
        *parents, leaf = path
        dst, src = out, default
        for name in parents:
            dst, src = getattr(dst, name), getattr(src, name)
        setattr(dst, leaf, getattr(src, leaf))
    return out


def config_source(text: str) -> str:
    """The script's CONFIG statement for config.toml's `text`, one key a line (a raw string, so TOML's
    escapes stay TOML's; as a plain literal if the text holds what a raw one cannot)."""
    literal = repr(text) if "'''" in text or text.endswith("\\") else f"r'''\n{text}'''"
    return f"CONFIG = {literal}"


def _cut_like(d: dict, shape: dict) -> dict:
    """`d` with only the keys that `shape` has (nested)."""
    return {k: _cut_like(v, shape[k]) if isinstance(v, dict) else v for k, v in d.items() if k in shape}


def _embedded_shape(script: str) -> dict:
    """The keys of a rendered script's CONFIG."""
    node = next(n for n in ast.parse(script).body if _top_level_names([n]) == {"CONFIG"})
    return tomllib.loads(node.value.value)  # type: ignore[attr-defined]


def _stamped_lines(cfg: RunConfig, shape: dict) -> tuple[str, str]:
    """The script's two parts that depend on the runtime keys: the header's first line and CONFIG."""
    blank = copy.deepcopy(cfg)
    blank.data.path, blank.data.tokenizer = "", ""
    head = f"for config {config_hash(blank, include_seed=False)}."
    return head, config_source(dumps_toml(_cut_like(to_dict(blank), shape)))


def render_script(cfg: RunConfig) -> str:
    """The stand-alone train_gpt.py for `cfg` (data paths come from DATA_PATH / TOKENIZER_PATH at run
    time), holding only the core code this config can reach. Rendered once per config in a process,
    whatever its seed and budget (every run of a lab measures its code bytes; a render takes seconds), and
    kept on disk for later processes (`script_cache_dir`)."""
    base, key = _render_key(cfg)
    if key not in _RENDERED:
        if len(_RENDERED) >= 8:
            _RENDERED.clear()
        _RENDERED[key] = _cached_render(base, key)
    script = _RENDERED[key]
    shape = _embedded_shape(script)
    for old, new in zip(_stamped_lines(base, shape), _stamped_lines(cfg, shape), strict=True):
        if old not in script:
            raise GolflabError(f"export: the rendered script lacks its line {old[:60]!r}")
        script = script.replace(old, new, 1)
    return script


def _render(cfg: RunConfig) -> str:
    tree = specialized_tree(cfg)
    cfg = copy.deepcopy(cfg)
    cfg.data.path, cfg.data.tokenizer = "", ""
    strip_annotations(tree)
    drop_pass(tree)
    _hoist_imports(tree)
    parts, section = [], None
    for node in tree.body:
        # a statement a pass rebuilt has lost its module: it stays in the section it was in
        where = None if isinstance(node, (ast.Import, ast.ImportFrom)) else getattr(node, "core_module", section)
        if where != section and where is not None:
            parts.append(f"\n# ---- {where}")
            section = where
        gap = "\n" if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ""
        config = _top_level_names([node]) == {"CONFIG"}
        parts.append(gap + (config_source(node.value.value) if config else ast.unparse(node)))  # type: ignore[attr-defined]
    header = (f'"""Stand-alone trainer generated by golflab {__version__} for config {config_hash(cfg, include_seed=False)}.\n'
              "Run: torchrun --nproc_per_node=8 train_gpt.py  (env: DATA_PATH, TOKENIZER_PATH, SEED, "
              'MAX_WALLCLOCK_SECONDS, ITERATIONS, RUN_DIR)"""\n'
              "from __future__ import annotations\n")
    return tab_indent(header + f"__version__ = {__version__!r}\n" + "\n".join(parts) + "\n")


if __name__ == "__main__":  # prefetch_script's child: render the config in argv[1] into the cache
    _config = Path(sys.argv[1])
    try:
        render_script(from_toml_file(_config))
    finally:
        _config.unlink(missing_ok=True)
