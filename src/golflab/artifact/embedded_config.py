"""The part of a run's config that its stand-alone script embeds.

The script's code has the config's values folded in (golflab.artifact.specialize), so it embeds only
what that code still reads at run time, the keys the script takes from its environment, and every
key that differs from golflab's defaults: golflab reads the script's config.toml back (defaults filled
in) as the run's own config, whatever the code needed.

A read counts whole where a config object is used other than by reading a field of it or handing it on
to where the fold follows it (a parameter typed for it, a local alias, `self.x = cfg` in `__init__`):
`vars(cfg)` embeds all of `cfg`. `getattr(cfg, name)` reads the sub-config that `name` picks: for
`optim` (the table's `getattr(cfg, role)`) the roles the model declares, elsewhere any. A chain the
fold cannot type (`trainer.cfg.eval.stride`) counts by golflab's naming rule: what follows a `cfg` is
a config path.
"""

from __future__ import annotations

import ast
from typing import Any

from golflab.artifact.specialize import RUNTIME_KEYS, _annotation_name, _chain, _config_tree, _FoldConfig
from golflab.config.loader import diff_from_default, to_dict
from golflab.config.schema import RunConfig
from golflab.model.info import meta_model

Path = tuple[str, ...]


def _signatures(tree: ast.Module) -> dict[str, ast.arguments]:
    """Top-level functions, classes by their `__init__` (self dropped) and the lambdas of top-level
    registries (`KINDS['relu2']`), by name."""
    out: dict[str, ast.arguments] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Dict):
            for k, v in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(k, ast.Constant) and isinstance(v, ast.Lambda):
                    out[f"{node.targets[0].id}[{k.value!r}]"] = _unused_marked(v)
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node.args
        elif isinstance(node, ast.ClassDef):
            init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
            if init is not None:
                args = ast.arguments(posonlyargs=[], args=init.args.args[1:], vararg=init.args.vararg,
                                     kwonlyargs=init.args.kwonlyargs, kw_defaults=[], kwarg=init.args.kwarg,
                                     defaults=[])
                out[node.name] = args
    return out


ANY = "*"  # a path's last part where `getattr(cfg, name)` reads one sub-config of cfg, by a name not known here
UNUSED = "<unused>"  # the annotation _unused_marked gives a parameter its lambda never reads


def _unused_marked(fn: ast.Lambda) -> ast.arguments:
    used = {n.id for n in ast.walk(fn.body) if isinstance(n, ast.Name)}
    args = [ast.arg(a.arg, None if a.arg in used else ast.Constant(UNUSED)) for a in fn.args.args]
    return ast.arguments(posonlyargs=[], args=args, vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                         defaults=[])


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Subscript) and isinstance(func.value, ast.Name) and isinstance(func.slice, ast.Constant):
        return f"{func.value.id}[{func.slice.value!r}]"
    return None


class _Reads(_FoldConfig):
    def __init__(self, tree: ast.Module, cfg: RunConfig) -> None:
        super().__init__(*_config_tree(cfg))  # collecting: folds nothing
        self.signatures = _signatures(tree)
        self.paths = {p for ps in self.types.values() for p in ps} | set(self.leaves)
        self.followed: set[int] = set()  # loads the fold follows on (ids of nodes)
        self.needed: set[Path] = set()

    def _type_of(self, path: Path) -> str | None:
        return next((name for name, ps in self.types.items() if path in ps), None)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) == 2 \
                and isinstance(node.args[0], (ast.Name, ast.Attribute)):
            p = self._path_of(node.args[0])
            if p is not None and p not in self.leaves:
                self.followed.add(id(node.args[0]))
                name = node.args[1]
                self.needed.add((*p, name.value if isinstance(name, ast.Constant) else ANY))
        if isinstance(node.func, ast.Name) and node.func.id == "vars":
            self.followed.update(id(a) for a in node.args)  # golflab's to_dict: it writes whatever is there
        sig = self.signatures.get(_callee(node.func) or "")
        if sig is not None:
            params = [*sig.posonlyargs, *sig.args]
            pairs = list(zip(params, node.args, strict=False))
            named = {a.arg: a for a in [*params, *sig.kwonlyargs]}
            pairs += [(named[k.arg], k.value) for k in node.keywords if k.arg in named]
            for param, arg in pairs:
                p = self._path_of(arg) if isinstance(arg, (ast.Name, ast.Attribute)) else None
                if p is None:
                    continue
                unused = isinstance(param.annotation, ast.Constant) and param.annotation.value == UNUSED
                if unused or (p not in self.leaves and _annotation_name(param.annotation) == self._type_of(p)):
                    self.followed.add(id(arg))
        return self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        # aliases the fold tracks: `m = cfg.model`, `cfg, log = self.cfg, self.log`, `self.cfg = cfg`
        pairs = [(t, node.value) for t in node.targets]
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple) and isinstance(node.value, ast.Tuple):
            pairs = list(zip(node.targets[0].elts, node.value.elts, strict=False))
        for target, value in pairs:
            p = self._path_of(value) if isinstance(value, (ast.Name, ast.Attribute)) else None
            if p is None or p in self.leaves:
                continue
            if isinstance(target, ast.Name) or (isinstance(value, ast.Name) and self._path_of(target) == p):
                self.followed.add(id(value))
        return self.generic_visit(node)

    def _load(self, node: ast.Name | ast.Attribute) -> bool:
        """Record the config path `node` reads, if any; whether it was one (then its parts are not)."""
        p = self._path_of(node)
        if p is not None:
            if id(node) not in self.followed:
                self.needed.add(p)
            return True
        ch = _chain(node) if isinstance(node, ast.Attribute) else None
        if ch is None:
            return False
        base, attrs = ch
        names = [*base.split("."), *attrs]
        for i, name in enumerate(names[:-1]):
            if name == "cfg":  # golflab names its configs cfg: what follows is a config path
                path: Path = ()
                for attr in names[i + 1:]:
                    if (*path, attr) not in self.paths:
                        break
                    path = (*path, attr)
                if path:
                    self.needed.add(path)
                    return True
        return False

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not isinstance(node.ctx, ast.Load):
            return node if _chain(node) else self.generic_visit(node)  # `cfg.data.path = ...` reads nothing
        if self._load(node):
            return node
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            self._load(node)
        return node


def config_reads(tree: ast.Module, cfg: RunConfig) -> set[Path]:
    """The config paths (leaves, or whole sub-configs) that `tree`'s code reads at run time."""
    reads = _Reads(tree, cfg)
    reads.visit(tree)
    return reads.needed


def declared_roles(cfg: RunConfig) -> set[str]:
    """The optimizer roles (`optim.<role>`) of the parameters of the model `cfg` builds."""
    return {p.role for p in meta_model(cfg.model, cfg.model.vocab_size or 1024).parameters()}  # type: ignore[attr-defined]


def embedded_config(tree: ast.Module, cfg: RunConfig) -> dict[str, Any]:
    """`to_dict(cfg)` cut to what `tree` reads, the runtime keys and the keys off golflab's defaults, in
    golflab's key order."""
    keep = set(RUNTIME_KEYS)
    for p in config_reads(tree, cfg):
        if p[-1] != ANY:
            keep.add(p)
            continue
        under: Any = to_dict(cfg)
        for k in p[:-1]:
            under = under[k]
        names = declared_roles(cfg) if p[:-1] == ("optim",) else set(under)
        keep |= {(*p[:-1], k) for k in under if k in names and isinstance(under[k], dict)}

    def leaves(d: dict[str, Any], path: Path = ()) -> set[Path]:
        return set().union(*(leaves(v, (*path, k)) if isinstance(v, dict) else {(*path, k)} for k, v in d.items()))

    keep |= leaves(diff_from_default(cfg))

    def cut(d: dict[str, Any], path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            p = (*path, k)
            if any(p[:len(q)] == q for q in keep):
                out[k] = v
            elif isinstance(v, dict) and any(q[:len(p)] == p for q in keep):
                out[k] = cut(v, p)
        return out

    return cut(to_dict(cfg), ())
