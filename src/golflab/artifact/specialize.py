"""Specialize the inlined core to one config: config values become constants, dead branches go.

The script runs one embedded config, so a read such as `cfg.num_registers` (with `cfg: ModelConfig`)
is a constant there. Config-typed variables are found from the code's own type hints (a parameter
annotated with a config dataclass, `self.x = <such a parameter>` in `__init__`, a local alias
`m = cfg.model`); a read is folded only when it names one leaf of the RunConfig tree. Then constant
tests are decided (`if`, `x if c else y`, `and` / `or`, comparisons of constants) and attributes that
a class sets once to a constant (`self.registers = None`) are replaced in that class's methods. The
keys the script still takes from the environment (data paths, seed, budget) are never folded.
Nothing here knows a particular option: new model and optimizer code is specialized the same way.
"""

from __future__ import annotations

import ast
import dataclasses
import operator
from typing import Any

from golflab.config.schema import RunConfig

RUNTIME_KEYS = ("data", "seed", "budget")  # overridden by the script's environment variables
_SCALARS = (bool, int, float, str, type(None))
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}


def _config_tree(cfg: RunConfig) -> tuple[dict[str, list[tuple[str, ...]]], dict[tuple[str, ...], Any]]:
    """(dataclass name -> the paths where it sits, leaf path -> value)."""
    types: dict[str, list[tuple[str, ...]]] = {}
    leaves: dict[tuple[str, ...], Any] = {}

    def walk(obj: Any, path: tuple[str, ...]) -> None:
        types.setdefault(type(obj).__name__, []).append(path)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, (*path, f.name))
            else:
                leaves[(*path, f.name)] = value

    walk(cfg, ())
    return types, leaves


def _literal(value: Any) -> ast.expr | None:
    if isinstance(value, _SCALARS):
        return ast.Constant(value)
    if isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
        return ast.List([ast.Constant(v) for v in value], ast.Load())
    return None


def _chain(node: ast.expr) -> tuple[str, list[str]] | None:
    """`a.b.c` -> ("a", ["b", "c"]); `self.x.b` -> ("self.x", ["b"])."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    attrs.reverse()
    if node.id == "self" and attrs:
        return "self." + attrs[0], attrs[1:]
    return node.id, attrs


def _annotation_name(ann: ast.expr | None) -> str | None:
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        ann = ast.parse(ann.value, mode="eval").body
    return ann.id if isinstance(ann, ast.Name) else None


def _is_const(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Constant) for e in node.elts))


def _value(node: ast.AST) -> Any:
    return node.value if isinstance(node, ast.Constant) else [e.value for e in node.elts]  # type: ignore[attr-defined]


def _pure(node: ast.AST) -> bool:
    """Evaluating it has no side effects (names, attributes of names, constants)."""
    return isinstance(node, (ast.Name, ast.Constant)) or (isinstance(node, ast.Attribute) and _pure(node.value))


def _as_test(node: ast.expr) -> ast.expr:
    """Where only truthiness counts (an `if` test): `a and True` is `a`, and `a and False` is False
    when evaluating `a` has no side effects (likewise for `or`)."""
    if not isinstance(node, ast.BoolOp):
        return node
    neutral = isinstance(node.op, ast.And)  # the constant truthiness that can be dropped
    values = [v for v in node.values if not (_is_const(v) and bool(_value(v)) == neutral)]
    for i, v in enumerate(values):
        if _is_const(v) and all(_pure(u) for u in values[:i]):
            return ast.Constant(not neutral)
    if not values:
        return ast.Constant(neutral)
    if len(values) == 1:
        return values[0]
    node.values = values
    return node


class _Simplify(ast.NodeTransformer):
    """Decide tests whose value is now known; splice the taken branch of an `if`."""

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and _is_const(node.operand):
            return ast.Constant(not _value(node.operand))
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        is_and = isinstance(node.op, ast.And)
        values = list(node.values)
        while len(values) > 1 and _is_const(values[0]):
            if bool(_value(values[0])) != is_and:  # False in `and`, True in `or`: the result
                return values[0]
            values.pop(0)
        if len(values) == 1:
            return values[0]
        node.values = values
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            return node
        left, right, op = node.left, node.comparators[0], node.ops[0]
        if _is_const(left) and _is_const(right):
            try:
                return ast.Constant(bool(_COMPARE[type(op)](_value(left), _value(right))))
            except TypeError:
                return node
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.List, ast.Tuple)) and not right.elts \
                and _pure(left):
            return ast.Constant(isinstance(op, ast.NotIn))
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        self.generic_visit(node)
        node.test = _as_test(node.test)
        if _is_const(node.test):
            return node.body if _value(node.test) else node.orelse
        return node

    def _block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            r = self.visit(s)
            if r is None:
                continue
            out.extend(r if isinstance(r, list) else [r])
            if out and isinstance(out[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                break  # the rest of the block is unreachable
        return out

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                block = self._block(value)
                setattr(node, name, block or ([ast.Pass()] if name == "body" else []))
            elif isinstance(value, list):
                setattr(node, name, [self.visit(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, name, self.visit(value))
        return node

    def visit_If(self, node: ast.If) -> ast.stmt | list[ast.stmt]:
        self.generic_visit(node)
        node.test = _as_test(node.test)
        if _is_const(node.test):
            taken = node.body if _value(node.test) else node.orelse
            return [s for s in taken if not isinstance(s, ast.Pass)] or []
        return node

    def visit_For(self, node: ast.For) -> ast.stmt | list[ast.stmt]:
        self.generic_visit(node)
        if isinstance(node.iter, (ast.List, ast.Tuple)) and not node.iter.elts:
            return node.orelse
        return node


class _FoldConfig(ast.NodeTransformer):
    def __init__(self, types: dict[str, list[tuple[str, ...]]], leaves: dict[tuple[str, ...], Any],
                 stored: set[tuple[str, ...]] | None = None) -> None:
        self.types, self.leaves = types, leaves
        self.collect = stored is None  # first pass: only find the config keys the code writes
        self.stored: set[tuple[str, ...]] = set() if stored is None else stored
        self.scopes: list[dict[str, tuple[str, ...]]] = [{}]  # variable -> config path, innermost last
        self.class_attrs: list[dict[str, tuple[str, ...]]] = [{}]  # "self.x" -> config path

    def _path_of(self, node: ast.expr) -> tuple[str, ...] | None:
        ch = _chain(node)
        if ch is None:
            return None
        base, attrs = ch
        root = self.class_attrs[-1].get(base) if base.startswith("self.") else self.scopes[-1].get(base)
        return None if root is None else root + tuple(attrs)

    def _typed(self, ann: ast.expr | None) -> tuple[str, ...] | None:
        paths = self.types.get(_annotation_name(ann) or "", [])
        return paths[0] if len(paths) == 1 else None

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        attrs: dict[str, tuple[str, ...]] = {}
        init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
        if init is not None:
            params = {a.arg: self._typed(a.annotation) for a in init.args.args}
            for s in ast.walk(init):
                if not (isinstance(s, ast.Assign) and len(s.targets) == 1):
                    continue
                pairs = [(s.targets[0], s.value)]
                if isinstance(s.targets[0], ast.Tuple) and isinstance(s.value, ast.Tuple) \
                        and len(s.targets[0].elts) == len(s.value.elts):
                    pairs = list(zip(s.targets[0].elts, s.value.elts, strict=True))  # self.cfg, self.x = cfg, x
                for target, value in pairs:
                    ch = _chain(target)
                    if isinstance(value, ast.Name) and params.get(value.id) is not None and ch \
                            and ch[0].startswith("self.") and not ch[1]:
                        attrs[ch[0]] = params[value.id]  # type: ignore[assignment]
        self.class_attrs.append(attrs)
        self.generic_visit(node)
        self.class_attrs.pop()
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        scope = {a.arg: p for a in [*node.args.args, *node.args.kwonlyargs] if (p := self._typed(a.annotation)) is not None}
        self.scopes.append(scope)
        for s in ast.walk(node):  # local aliases: m = cfg.model
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
                p = self._path_of(s.value)
                if p is not None and p not in self.leaves and p in {q for ps in self.types.values() for q in ps}:
                    scope[s.targets[0].id] = p
        self.generic_visit(node)
        self.scopes.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if not isinstance(node.ctx, ast.Load):
            p = self._path_of(node)
            if p is not None and self.collect:
                self.stored.add(p)
        elif not self.collect:
            p = self._path_of(node)
            if p is not None and p in self.leaves and p[0] not in RUNTIME_KEYS and p not in self.stored:
                lit = _literal(self.leaves[p])
                if lit is not None:
                    return ast.copy_location(lit, node)
        self.generic_visit(node)
        return node


def _stored_attrs(tree: ast.AST) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, (ast.Store, ast.Del)):
            counts[n.attr] = counts.get(n.attr, 0) + 1
    return counts


class _FoldSelfConstants(ast.NodeTransformer):
    """Within a class, `self.x` reads where `self.x = <constant>` is the only store of `x` anywhere."""

    def __init__(self, stored: dict[str, int]) -> None:
        self.stored = stored
        self.consts: list[dict[str, ast.Constant]] = [{}]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        consts: dict[str, ast.Constant] = {}
        for s in ast.walk(node):
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.value, ast.Constant):
                t = s.targets[0]
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" \
                        and self.stored.get(t.attr) == 1:
                    consts[t.attr] = s.value
        self.consts.append(consts)
        self.generic_visit(node)
        self.consts.pop()
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                and node.attr in self.consts[-1]:
            return ast.copy_location(ast.Constant(self.consts[-1][node.attr].value), node)
        self.generic_visit(node)
        return node


def _call_values(fn: ast.FunctionDef, calls: list[ast.Call]) -> dict[str, ast.Constant]:
    """Parameters of `fn` that every call passes the same constant for (explicitly or by default)."""
    a = fn.args
    params = [*a.posonlyargs, *a.args]
    defaults = dict(zip([p.arg for p in params][len(params) - len(a.defaults):], a.defaults, strict=True))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None})
    names = [p.arg for p in params] + [p.arg for p in a.kwonlyargs]
    seen: dict[str, Any] = {}
    for call in calls:
        if any(isinstance(x, ast.Starred) for x in call.args) or any(k.arg is None for k in call.keywords):
            return {}
        given = dict(zip([p.arg for p in params], call.args, strict=False))
        given.update({k.arg: k.value for k in call.keywords if k.arg})
        for n in names:
            v = given.get(n, defaults.get(n))
            key = (type(v.value), v.value) if isinstance(v, ast.Constant) else None
            if key is None or seen.get(n, key) != key:
                seen[n] = None
            else:
                seen[n] = key
    stored = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    stored |= {a.arg for inner in ast.walk(fn) if inner is not fn and isinstance(inner, (ast.FunctionDef, ast.Lambda))
               for a in ast.walk(inner.args) if isinstance(a, ast.arg)}  # a nested function's own parameter
    return {n: ast.Constant(k[1]) for n, k in seen.items() if k is not None and n not in stored}


class _Substitute(ast.NodeTransformer):
    def __init__(self, values: dict[str, ast.Constant]) -> None:
        self.values = values

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return ast.copy_location(ast.Constant(self.values[node.id].value), node)
        return node


def _propagate_arguments(tree: ast.Module) -> bool:
    """A top-level function that is only ever called, always with the same constant for a parameter,
    gets that constant in its body. Returns whether anything changed."""
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    calls: dict[str, list[ast.Call]] = {name: [] for name in funcs}
    called: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in funcs:
            calls[n.func.id].append(n)
            called.add(id(n.func))
    escaped = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in funcs and id(n) not in called}
    changed = False
    for name, fn in funcs.items():
        if name in escaped or not calls[name]:
            continue
        values = _call_values(fn, calls[name])
        if values:
            fn.body = [_Substitute(values).visit(s) for s in fn.body]
            changed = True
    return changed


def specialize(tree: ast.Module, cfg: RunConfig) -> None:
    """In place: fold `cfg`'s values into the code and drop the branches they rule out."""
    types, leaves = _config_tree(cfg)
    collect = _FoldConfig(types, leaves)
    collect.visit(tree)
    _FoldConfig(types, leaves, collect.stored).visit(tree)
    _Simplify().visit(tree)
    _FoldSelfConstants(_stored_attrs(tree)).visit(tree)
    _Simplify().visit(tree)
    for _ in range(3):  # constants reach new call sites as functions are specialized
        if not _propagate_arguments(tree):
            break
        _Simplify().visit(tree)
    ast.fix_missing_locations(tree)
