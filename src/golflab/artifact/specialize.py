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
import collections
import copy
import dataclasses
import functools
import math
import operator
from typing import Any

from golflab.artifact.prune import (
    assign_pairs,
    imported_names,
    is_pure,
    prune_constant_lookups,
    prune_unreachable,
)
from golflab.config.schema import RunConfig

# The keys the script's main() takes from its environment (export.FOOTER): never folded.
RUNTIME_KEYS = frozenset({("data", "path"), ("data", "tokenizer"), ("seed",), ("budget", "seconds"), ("budget", "steps")})
_SCALARS = (bool, int, float, str, type(None))
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


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


def _as_test(node: ast.expr) -> ast.expr:
    """Where only truthiness counts (an `if` test): `a and True` is `a`, and `a and False` is False
    when evaluating `a` has no side effects (likewise for `or`)."""
    if not isinstance(node, ast.BoolOp):
        return node
    neutral = isinstance(node.op, ast.And)  # the constant truthiness that can be dropped
    values = [v for v in node.values if not (_is_const(v) and bool(_value(v)) == neutral)]
    for i, v in enumerate(values):
        if _is_const(v) and all(is_pure(u) for u in values[:i]):
            return ast.Constant(not neutral)
    if not values:
        return ast.Constant(neutral)
    if len(values) == 1:
        return values[0]
    node.values = values
    return node


def _bound_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)} \
        | {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)} \
        | {n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


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
        for i, v in enumerate(values[:-1]):  # a later constant: one that decides ends the chain there,
            if _is_const(v) and bool(_value(v)) != is_and:  # a neutral one before the last is skipped
                values = values[: i + 1]
                break
        values = [v for v in values[:-1] if not (_is_const(v) and bool(_value(v)) == is_and)] + values[-1:]
        if len(values) == 1:
            return values[0]
        node.values = values
        return node

    def __init__(self, tuples: dict[str, list[Any]] | None = None) -> None:
        self.tuples = tuples or {}  # top-level names bound once to a tuple of constants
        self.shadowed: set[str] = set()  # builtins the code binds itself (set by visit_Module)

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.shadowed = _bound_names(node)
        return self.generic_visit(node)  # type: ignore[return-value]

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) > 1 and type(node.ops[0]) in _COMPARE and _is_const(node.left) \
                and _is_const(node.comparators[0]):  # 0 <= 0 < n: decide the first link, keep the rest
            try:
                first = bool(_COMPARE[type(node.ops[0])](_value(node.left), _value(node.comparators[0])))
            except TypeError:
                return node
            if not first:
                return ast.Constant(False)
            rest = ast.Compare(left=node.comparators[0], ops=node.ops[1:], comparators=node.comparators[1:])
            return self.visit_Compare(ast.copy_location(rest, node))
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            return node
        if isinstance(node.ops[0], (ast.In, ast.NotIn)) and isinstance(node.comparators[0], ast.Name) \
                and node.comparators[0].id in self.tuples and _is_const(node.left):  # 'zlib' in CODECS
            found = _value(node.left) in self.tuples[node.comparators[0].id]
            return ast.Constant(found == isinstance(node.ops[0], ast.In))
        left, right, op = node.left, node.comparators[0], node.ops[0]
        if _is_const(left) and _is_const(right):
            try:
                return ast.Constant(bool(_COMPARE[type(op)](_value(left), _value(right))))
            except TypeError:
                return node
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.List, ast.Tuple)) and not right.elts \
                and is_pure(left):
            return ast.Constant(isinstance(op, ast.NotIn))
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        """`min(0.0, 0.0)` / `max(...)` of numeric constants, `int(16000000)` / `float(64)` / `round(x, 2)` /
        `math.ceil(16.0)` of them (the builtins and the module: no local binds the name); `any(...)` /
        `all(...)` of a generator over an empty literal (`any(p in name for p in [])`: the fp16 patterns
        of a config that names none)."""
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in ("ceil", "floor") and isinstance(f.value, ast.Name) \
                and f.value.id == "math" and "math" not in self.shadowed and len(node.args) == 1 and not node.keywords \
                and isinstance(node.args[0], ast.Constant) and type(node.args[0].value) in (int, float) \
                and math.isfinite(node.args[0].value):
            return ast.copy_location(ast.Constant(getattr(math, f.attr)(node.args[0].value)), node)
        if isinstance(node.func, ast.Name) and node.func.id in ("any", "all") and node.func.id not in self.shadowed \
                and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.GeneratorExp):
            first = node.args[0].generators[0].iter  # evaluated first; when empty, nothing else runs
            if isinstance(first, (ast.List, ast.Tuple)) and not first.elts:
                return ast.copy_location(ast.Constant(node.func.id == "all"), node)
        if not (isinstance(node.func, ast.Name) and node.func.id not in self.shadowed and not node.keywords
                and all(isinstance(x, ast.Constant) and type(x.value) in (int, float) for x in node.args)):
            return node
        values = [x.value for x in node.args]  # type: ignore[attr-defined]
        if node.func.id == "round" and len(values) in (1, 2) and all(math.isfinite(v) for v in values) \
                and (len(values) == 1 or type(values[1]) is int):
            return ast.copy_location(ast.Constant(round(*values)), node)
        if node.func.id in ("min", "max") and len(values) > 1:
            return ast.copy_location(ast.Constant((min if node.func.id == "min" else max)(values)), node)
        if node.func.id in ("int", "float") and len(values) == 1:
            return ast.copy_location(ast.Constant((int if node.func.id == "int" else float)(values[0])), node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        """`1024 + 1` -> `1025`, `1.0 - 0.0` -> `1.0`, when the result is no longer than the expression."""
        self.generic_visit(node)
        if type(node.op) in _ARITH and all(isinstance(x, ast.Constant) and type(x.value) in (int, float)
                                           for x in (node.left, node.right)):
            try:
                value = _ARITH[type(node.op)](node.left.value, node.right.value)  # type: ignore[attr-defined]
            except (ArithmeticError, ValueError):
                return node
            if isinstance(value, (int, float)) and math.isfinite(value) and len(repr(value)) <= len(ast.unparse(node)):
                return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        """f"final {'val'}: ..." -> "final val: ..." (format(x, '') is str(x) for these scalars)."""
        self.generic_visit(node)
        parts: list[ast.expr] = []
        for v in node.values:
            if isinstance(v, ast.FormattedValue) and v.conversion == -1 and v.format_spec is None \
                    and isinstance(v.value, ast.Constant) and isinstance(v.value.value, _SCALARS):
                v = ast.Constant(str(v.value.value))
            if isinstance(v, ast.Constant) and parts and isinstance(parts[-1], ast.Constant):
                parts[-1] = ast.Constant(parts[-1].value + v.value)
            else:
                parts.append(v)
        if all(isinstance(v, ast.Constant) for v in parts):
            return ast.Constant("".join(v.value for v in parts))  # type: ignore[attr-defined]
        node.values = parts
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
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" and "TYPE_CHECKING" not in self.shadowed:
            node.test = ast.Constant(False)  # typing's flag, False when the script runs
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
        self.read: set[tuple[str, ...]] = set()  # leaves the collecting pass saw read
        self.scopes: list[dict[str, tuple[str, ...]]] = [{}]  # variable -> config path, innermost last
        self.class_attrs: list[dict[str, tuple[str, ...]]] = [{}]  # "self.x" -> config path
        self.attr_stores: dict[str, int] = {}

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.attr_stores = _stored_attrs(node)
        self.generic_visit(node)
        return node

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
            sub_configs = {q for ps in self.types.values() for q in ps}
            for s in ast.walk(init):
                for target, value in assign_pairs(s):
                    ch, src = _chain(target), _chain(value)
                    if not (ch and ch[0].startswith("self.") and not ch[1] and src and params.get(src[0]) is not None):
                        continue
                    path = params[src[0]] + tuple(src[1])  # type: ignore[operator]
                    # `self.cfg = cfg`, or `self.muon_cfg = cfg.muon` when no other code rebinds it
                    if not src[1] or (path in sub_configs and self.attr_stores.get(ch[0][5:]) == 1):
                        attrs[ch[0]] = path
        self.class_attrs.append(attrs)
        self.generic_visit(node)
        self.class_attrs.pop()
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        a = node.args
        params = [x for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x is not None]
        # a nested function sees its enclosing function's config variables, unless it rebinds them
        scope = {k: v for k, v in self.scopes[-1].items() if k not in {x.arg for x in params}}
        scope.update({x.arg: p for x in params if (p := self._typed(x.annotation)) is not None})
        self.scopes.append(scope)
        for s in ast.walk(node):  # local aliases: m = cfg.model; cfg, log = self.cfg, self.log
            if not (isinstance(s, ast.Assign) and len(s.targets) == 1):
                continue
            pairs = [(s.targets[0], s.value)]
            if isinstance(s.targets[0], ast.Tuple) and isinstance(s.value, ast.Tuple) \
                    and len(s.targets[0].elts) == len(s.value.elts):
                pairs = list(zip(s.targets[0].elts, s.value.elts, strict=True))
            for target, value in pairs:
                p = self._path_of(value) if isinstance(target, ast.Name) else None
                if p is not None and p not in self.leaves and p in {q for ps in self.types.values() for q in ps}:
                    scope[target.id] = p  # type: ignore[attr-defined]
        self.generic_visit(node)
        self.scopes.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if not isinstance(node.ctx, ast.Load):
            p = self._path_of(node)
            if p is not None and self.collect:
                self.stored.add(p)
        elif self.collect:
            p = self._path_of(node)
            if p is not None and p in self.leaves:
                self.read.add(p)
        else:
            p = self._path_of(node)
            if p is not None and p in self.leaves and p not in RUNTIME_KEYS and p not in self.stored:
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


def _guarded_stores(tree: ast.AST) -> dict[str, int]:
    """Stores of `self.x` inside the body of an `if self.x is not None:` (they run only once `x` is set)."""
    counts: dict[str, int] = {}
    for n in ast.walk(tree):
        test = n.test if isinstance(n, ast.If) else None
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot) \
                and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None \
                and isinstance(test.left, ast.Attribute) and isinstance(test.left.value, ast.Name) \
                and test.left.value.id == "self":
            attr = test.left.attr
            for m in ast.walk(ast.Module(body=n.body, type_ignores=[])):
                if isinstance(m, ast.Attribute) and m.attr == attr and isinstance(m.ctx, ast.Store) \
                        and isinstance(m.value, ast.Name) and m.value.id == "self":
                    counts[attr] = counts.get(attr, 0) + 1
    return counts


class _FoldSelfConstants(ast.NodeTransformer):
    """Within a class, `self.x` reads where `self.x = <constant>` is the only store of `x` anywhere, or
    `self.x = None` is, apart from stores under `if self.x is not None:` (which then never run)."""

    def __init__(self, stored: dict[str, int], guarded: dict[str, int] | None = None) -> None:
        self.stored = stored
        self.guarded = guarded or {}
        self.consts: list[dict[str, ast.Constant]] = [{}]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        consts: dict[str, ast.Constant] = {}
        for s in ast.walk(node):
            for t, v in assign_pairs(s):
                if isinstance(v, ast.Constant) and isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) \
                        and t.value.id == "self" and (self.stored.get(t.attr) == 1 or (
                            v.value is None and self.stored.get(t.attr, 0) - self.guarded.get(t.attr, 0) == 1)):
                    consts[t.attr] = v
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


class _NeverNone:
    """Which expressions can never be None: literals, constructor calls (a class of the tree, or a
    capitalized attribute such as `nn.Parameter(...)`), and calls of top-level functions that end in a
    return and only return such values, a local bound once to one (`new_param(...)`: `param =
    nn.Parameter(...)`, then `return param`), or a parameter when the call passes such a value for it."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.decorator_list}
        self.active: set[str] = set()  # recursion guard

    def __call__(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return node.value is not None
        if isinstance(node, (ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp,
                             ast.JoinedStr, ast.Compare)):
            return True
        if not isinstance(node, ast.Call):
            return False
        f = node.func
        if isinstance(f, ast.Attribute):
            return f.attr[:1].isupper()
        if not isinstance(f, ast.Name):
            return False
        if f.id in self.classes:
            return True
        fn = self.functions.get(f.id)
        if fn is None or f.id in self.active or not fn.body or not isinstance(fn.body[-1], ast.Return):
            return False
        params = [a.arg for a in fn.args.args]
        stores = collections.Counter(n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load))
        once = {n.targets[0].id: n.value for n in ast.walk(fn)  # a local bound only by `x = value`: that value
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                and stores[n.targets[0].id] == 1 and n.targets[0].id not in params}
        self.active.add(f.id)
        try:
            for r in (n for n in ast.walk(fn) if isinstance(n, ast.Return)):
                v = r.value
                if isinstance(v, ast.Name) and v.id in once:
                    v = once[v.id]  # type: ignore[assignment]
                if isinstance(v, ast.Name) and v.id in params and not fn.args.defaults:
                    i = params.index(v.id)
                    if not (i < len(node.args) and self(node.args[i])):
                        return False
                elif v is None or not self(v):
                    return False
            return not any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Lambda, ast.FunctionDef)) for n in ast.walk(fn)
                           if n is not fn)
        finally:
            self.active.discard(f.id)


class _FoldNeverNoneAttrs(ast.NodeTransformer):
    """`self.x is None` -> False (`is not None` -> True) where every store of an attribute `x`, anywhere,
    is `self.x = <a value that is never None>` (`self.resid_mix = new_param(...)`), and no `setattr` /
    `delattr` names `x` (or an attribute the code cannot see) and no code reaches into a `__dict__`."""

    def __init__(self, tree: ast.Module) -> None:
        never_none = _NeverNone(tree)
        values: dict[str, list[ast.expr | None]] = {}
        for n in ast.walk(tree):
            if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete, ast.For, ast.With, ast.NamedExpr)):
                pairs = assign_pairs(n)
                paired = {id(t) for t, _ in pairs}
                for t, v in pairs:
                    if isinstance(t, ast.Attribute):
                        values.setdefault(t.attr, []).append(v if isinstance(t.value, ast.Name) and t.value.id == "self" else None)
                for m in ast.walk(n):
                    if isinstance(m, ast.Attribute) and isinstance(m.ctx, (ast.Store, ast.Del)) and id(m) not in paired:
                        values.setdefault(m.attr, []).append(None)
        setters = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                   and n.func.id in ("setattr", "delattr") and len(n.args) >= 2]
        if any(not isinstance(c.args[1], ast.Constant) for c in setters) \
                or any(isinstance(n, ast.Attribute) and n.attr == "__dict__" for n in ast.walk(tree)):
            self.attrs: set[str] = set()  # a store this pass cannot see
            return
        named = {c.args[1].value for c in setters}  # type: ignore[attr-defined]
        self.attrs = {a for a, vs in values.items() if a not in named and all(v is not None and never_none(v) for v in vs)}

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot)) and isinstance(node.comparators[0], ast.Constant) \
                and node.comparators[0].value is None and isinstance(node.left, ast.Attribute) \
                and isinstance(node.left.value, ast.Name) and node.left.value.id == "self" and node.left.attr in self.attrs:
            return ast.copy_location(ast.Constant(isinstance(node.ops[0], ast.IsNot)), node)
        return node


def _call_values(fn: ast.FunctionDef, calls: list[ast.Call], implicit: int = 0) -> dict[str, ast.Constant]:
    """Parameters of `fn` that every call passes the same constant for (explicitly or by default);
    `implicit` leading parameters (a method's self) are bound by Python, not by the call."""
    a = fn.args
    params = [*a.posonlyargs, *a.args][implicit:]
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
        self.count = 0  # reads replaced

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            self.count += 1
            return ast.copy_location(ast.Constant(self.values[node.id].value), node)
        return node


class _Calls(ast.NodeVisitor):
    """Every call of a global name and of an attribute name, skipping names a function binds locally
    (a parameter `evaluate` is not the global `evaluate`), and every other use of those names: a
    function or method that is passed around, looked up by string or named outside a call has
    callers this pass cannot see. Annotations are skipped (never evaluated)."""

    def __init__(self, modules: frozenset[str] = frozenset()) -> None:
        self.modules = modules  # `subprocess.run(...)` calls no method of ours
        self.by_name: dict[str, list[ast.Call]] = {}
        self.by_attr: dict[str, list[ast.Call]] = {}
        self.escaped_names: set[str] = set()
        self.escaped_attrs: set[str] = set()  # attributes used other than as a call, and string constants
        self.local: list[set[str]] = []
        self._callee: set[int] = set()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        a = node.args
        bound = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x is not None}
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                    bound.add(n.id)
        for d in [*a.defaults, *a.kw_defaults, *getattr(node, "decorator_list", [])]:
            if d is not None:
                self.visit(d)
        self.local.append(bound)
        for stmt in body:
            self.visit(stmt)
        self.local.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if isinstance(f, ast.Name) and not any(f.id in b for b in self.local):
            self.by_name.setdefault(f.id, []).append(node)
            self._callee.add(id(f))
            if f.id == "isinstance" and len(node.args) == 2:  # a type check calls nothing
                kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
                self._callee.update(id(k) for k in kinds if isinstance(k, ast.Name))
        elif isinstance(f, ast.Attribute):
            root = f.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in self.modules):
                self.by_attr.setdefault(f.attr, []).append(node)
            self._callee.add(id(f))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if id(node) not in self._callee and not any(node.id in b for b in self.local):
            self.escaped_names.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if id(node) not in self._callee:
            self.escaped_attrs.add(node.attr)
        self.visit(node.value)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.escaped_attrs.add(node.value)


def _plain_method(fn: ast.stmt) -> bool:
    """A method called only as `obj.name(...)` with self bound: no staticmethod / classmethod /
    property (a decorator call such as `torch.no_grad()` keeps the signature)."""
    return isinstance(fn, ast.FunctionDef) and all(isinstance(d, ast.Call) for d in fn.decorator_list)


def _targets(tree: ast.Module, calls: _Calls) -> list[tuple[ast.FunctionDef, list[ast.Call], int]]:
    """(function, all its calls, implicit leading arguments) for every function whose callers are
    all known: top-level functions, `__init__` of classes only ever called by name, and methods of
    classes whose bases are golflab's own (no framework calls them behind our back) with a name
    that no other class defines."""
    out: list[tuple[ast.FunctionDef, list[ast.Call], int]] = []
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    subclassed = {b.id for c in classes.values() for b in c.bases if isinstance(b, ast.Name)}
    defined_methods: dict[str, int] = {}
    for c in classes.values():
        for m in c.body:
            if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined_methods[m.name] = defined_methods.get(m.name, 0) + 1
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name not in calls.escaped_names:
            out.append((node, calls.by_name.get(node.name, []), 0))
        if not isinstance(node, ast.ClassDef):
            continue
        init = next((m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None)
        hidden_ctor = node.name in subclassed or node.name in calls.escaped_names or any(
            isinstance(m, ast.FunctionDef) and any(isinstance(d, ast.Name) and d.id == "classmethod"
                                                   for d in m.decorator_list) for m in node.body)  # cls(...)
        if init is not None and not hidden_ctor:
            out.append((init, calls.by_name.get(node.name, []), 1))
        if not all(isinstance(b, ast.Name) and b.id in classes for b in node.bases) or node.keywords:
            continue
        for m in node.body:
            if not _plain_method(m):
                continue
            sites = calls.by_attr.get(m.name, [])  # type: ignore[attr-defined]
            unbound = any(isinstance(c.func.value, ast.Name) and c.func.value.id in classes  # type: ignore[attr-defined]
                          for c in sites)  # C.method(obj, ...) passes self explicitly
            if not (m.name.startswith("__") and m.name.endswith("__")) and not unbound \
                    and defined_methods[m.name] == 1 and m.name not in calls.escaped_attrs:
                out.append((m, sites, 1))  # type: ignore[arg-type]
    return out


def _propagate_arguments(tree: ast.Module, modules: frozenset[str]) -> bool:
    """A function, constructor or method whose callers are all known and all pass the same constant
    for a parameter (explicitly or by default) gets that constant in its body. Returns whether
    anything changed."""
    calls = _Calls(modules)
    calls.visit(tree)
    changed = False
    for fn, sites, implicit in _targets(tree, calls):
        if not sites:
            continue
        values = _call_values(fn, sites, implicit)
        if values:
            sub = _Substitute(values)
            fn.body = [sub.visit(s) for s in fn.body]
            changed = changed or sub.count > 0
    return changed


@functools.cache
def _external_methods() -> frozenset[str]:
    """Method names of the types that the script's code calls methods of besides its own (builtins,
    tensors, modules, optimizers, arrays, paths, files): a call `x.name(...)` of any other name is a
    call of the script's own method."""
    import io
    import pathlib

    import numpy as np
    import torch

    kinds = [object, list, dict, set, frozenset, str, bytes, bytearray, int, float, tuple, io.TextIOWrapper,
             io.BufferedWriter, pathlib.Path, np.ndarray, np.memmap, np.random.Generator, torch.Tensor,
             torch.nn.Module, torch.optim.Optimizer, torch.Generator, torch.device]
    return frozenset(name for k in kinds for name in dir(k))


def _drop_unused_parameters(tree: ast.Module, modules: frozenset[str]) -> bool:
    """A parameter that the body of a function never reads, when every caller is known, goes from the
    signature and from every call (its argument must have no side effects: a name, a constant).
    Returns whether anything changed."""
    calls = _Calls(modules)
    calls.visit(tree)
    changed = False
    for fn, sites, implicit in _targets(tree, calls):
        a = fn.args
        if any(isinstance(x, ast.Starred) for c in sites for x in c.args) or any(k.arg is None for c in sites for k in c.keywords):
            continue
        names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        if {"locals", "vars"} & names or a.posonlyargs:
            continue
        positional = a.args[implicit:]
        for p in [*positional, *a.kwonlyargs]:
            if p.arg in names:
                continue
            i = positional.index(p) if p in positional else None
            given = [c.args[i] if i is not None and i < len(c.args) else
                     next((k.value for k in c.keywords if k.arg == p.arg), None) for c in sites]
            if not all(g is None or is_pure(g) for g in given):
                continue
            if fn.name != "__init__" and implicit and fn.name in _external_methods() and any(g is not None for g in given):
                continue  # `x.add(...)` may be a set's: there, only a method's never-passed parameters go
            for c in sites:
                if i is not None and i < len(c.args):
                    del c.args[i]
                else:
                    c.keywords = [k for k in c.keywords if k.arg != p.arg]
            if i is not None:
                j = implicit + i - (len(a.args) - len(a.defaults))  # its default's index, if it has one
                if j >= 0:
                    del a.defaults[j]
                a.args.remove(p)
                positional.remove(p)
            else:
                k = a.kwonlyargs.index(p)
                del a.kwonlyargs[k], a.kw_defaults[k]
            changed = True
    return changed


def bind_counts(root: ast.AST) -> dict[str, int]:
    """How many times each name is bound under `root`: stores, parameters, global / nonlocal."""
    binds: dict[str, int] = {}
    for n in ast.walk(root):
        names = [n.id] if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load) else \
            [n.arg] if isinstance(n, ast.arg) else list(n.names) if isinstance(n, (ast.Global, ast.Nonlocal)) else []
        for name in names:
            binds[name] = binds.get(name, 0) + 1
    return binds


class _SplitConstantTuples(ast.NodeTransformer):
    """`a, b = x, <constant>` -> `a = x` and `b = <constant>` when the targets are distinct names or
    attributes of `self` that no value mentions (nor `self`) and at most one value is not a constant
    (so no order of evaluation changes): each then folds on its own (`s, orth = 1.0, False`)."""

    @staticmethod
    def _name(t: ast.expr) -> str | None:
        if isinstance(t, ast.Name):
            return t.id
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
            return "self." + t.attr
        return None

    def _split(self, node: ast.stmt) -> ast.stmt | list[ast.stmt]:
        self.generic_visit(node)
        pairs = assign_pairs(node)
        names = [self._name(t) for t, _ in pairs]
        if len(pairs) < 2 or None in names or len(set(names)) < len(names):
            return node
        bases = {n.split(".")[0] for n in names}  # type: ignore[union-attr]
        mentioned = {n.id for _, v in pairs for n in ast.walk(v) if isinstance(n, ast.Name)}
        if bases & mentioned or sum(not _is_const(v) for _, v in pairs) > 1:
            return node
        return [ast.copy_location(ast.Assign(targets=[t], value=v), node) for t, v in pairs]

    visit_Assign = _split


class _FoldLocalConstants(ast.NodeTransformer):
    """`x = <constant>` in a function, when nothing else in the function binds `x`: its reads in the
    statements after it in the same block become the constant, and the assignment goes once no read
    is left (not for a long string, which would only be repeated)."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        binds = bind_counts(node)
        folded: list[tuple[list[ast.stmt], ast.Assign]] = []
        for holder in list(ast.walk(node)):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(holder, field, None)
                if not (isinstance(block, list) and block and isinstance(block[0], ast.stmt)):
                    continue
                for i, st in enumerate(block):
                    if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) \
                            and isinstance(st.value, ast.Constant) and binds.get(st.targets[0].id) == 1 \
                            and not (isinstance(st.value.value, str) and len(st.value.value) > 16):
                        sub = _Substitute({st.targets[0].id: st.value})
                        block[i + 1:] = [sub.visit(x) for x in block[i + 1:]]
                        folded.append((block, st))
        for block, st in folded:
            name = st.targets[0].id  # type: ignore[attr-defined]
            if not any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(node)):
                block.remove(st)
                if not block:
                    block.append(ast.Pass())
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]


def _is_not_none(test: ast.expr, name: str) -> bool:
    """`test` is `name is not None`."""
    return isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot) \
        and isinstance(test.left, ast.Name) and test.left.id == name \
        and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None


class _FoldNoneLocals(ast.NodeTransformer):
    """A local set to None once, whose every other store sits under `if x is not None:` or is
    `x = <value> if x is not None else None`, is None wherever it is read (the parallel lanes of a
    model that has none): its reads become None, and the tests on it are then decided."""

    def __init__(self, tuples: dict[str, list[Any]]) -> None:
        self.simplify = _Simplify(tuples)

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.simplify.shadowed = _bound_names(node)  # as _Simplify.visit_Module would
        return self.generic_visit(node)  # type: ignore[return-value]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        binds = bind_counts(node)
        nones: dict[str, int] = {}
        kept: dict[str, int] = {}  # stores that keep None: guarded, or `... if x is not None else None`
        for n in ast.walk(node):
            pairs = [(n.target, n.value)] if isinstance(n, ast.AnnAssign) and n.value is not None else assign_pairs(n)
            for t, v in pairs:
                if isinstance(t, ast.Name) and isinstance(v, ast.Constant) and v.value is None:
                    nones[t.id] = nones.get(t.id, 0) + 1
                elif isinstance(t, ast.Name) and isinstance(v, ast.IfExp) and _is_not_none(v.test, t.id) \
                        and isinstance(v.orelse, ast.Constant) and v.orelse.value is None:
                    kept[t.id] = kept.get(t.id, 0) + 1
            if isinstance(n, ast.If) and isinstance(n.test, ast.Compare) and isinstance(n.test.left, ast.Name) \
                    and _is_not_none(n.test, n.test.left.id):
                x = n.test.left.id
                kept[x] = kept.get(x, 0) + bind_counts(ast.Module(body=n.body, type_ignores=[])).get(x, 0)
        names = {x for x, k in nones.items() if k == 1 and binds.get(x) == 1 + kept.get(x, 0)}
        if names:
            sub = _Substitute({x: ast.Constant(None) for x in names})
            node.body = [sub.visit(st) for st in node.body]
            self.simplify.visit(node)  # decide the tests now, so the stores left are dead ones
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]


class _DropDeadLocals(ast.NodeTransformer):
    """`x = <value without side effects>` (or `x: T = ...`) in a function (a name, an attribute of one,
    a constant, or a dict / list / tuple / set of those) when nothing in the function reads `x` (an
    augmented assignment and `del x` count as reads): folding left the alias unread (`m = cfg.model`);
    also `x = x`; and `x = value` then `return x`, when nothing else reads `x` (the value may), is `return value`.
    Not in a function that declares `x` global or nonlocal or calls locals(), vars(), eval() or exec()."""

    @staticmethod
    def _free(node: ast.AST) -> bool:
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(is_pure(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(k is not None and is_pure(k) and is_pure(v) for k, v in zip(node.keys, node.values, strict=True))
        return is_pure(node)

    @classmethod
    def _dead(cls, st: ast.stmt, read: set[str]) -> bool:
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            target, value = st.targets[0], st.value
        elif isinstance(st, ast.AnnAssign) and st.value is not None:
            target, value = st.target, st.value
        else:
            return False
        return isinstance(target, ast.Name) and ((target.id not in read and cls._free(value)) or (
            isinstance(value, ast.Name) and value.id == target.id))  # x = x (a decided `x if c else x`)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        read: set[str] = set()
        loads: dict[str, int] = {}
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store):
                read.add(n.id)
                loads[n.id] = loads.get(n.id, 0) + 1
            elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                read.add(n.target.id)
            elif isinstance(n, (ast.Global, ast.Nonlocal)):
                read.update(n.names)
        if read & {"locals", "vars", "eval", "exec"}:
            return node
        for holder in list(ast.walk(node)):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(holder, field, None)
                if not (isinstance(block, list) and block and isinstance(block[0], ast.stmt)):
                    continue
                kept = [st for st in block if not self._dead(st, read)]
                if len(kept) != len(block):
                    block[:] = kept or ([ast.Pass()] if field == "body" else [])
                for i in range(len(block) - 1):  # `x = value; return x`, x read nowhere else: `return value`
                    st, nxt = block[i], block[i + 1]
                    if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) \
                            and isinstance(nxt, ast.Return) and isinstance(nxt.value, ast.Name) \
                            and nxt.value.id == st.targets[0].id and loads.get(nxt.value.id, 0) == 1 + sum(
                                isinstance(m, ast.Name) and m.id == nxt.value.id for m in ast.walk(st.value)):
                        block[i:i + 2] = [ast.copy_location(ast.Return(st.value), nxt), ast.Pass()]
                block[:] = [st for st in block if not isinstance(st, ast.Pass)] or block[:1]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]


def _returned_dict(fn: ast.FunctionDef) -> ast.Dict | None:
    """The dict literal `fn` returns, when that is all it does, its keys are strings, and it names
    nothing but its own (plain positional) parameters."""
    a = fn.args
    if a.posonlyargs or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or fn.decorator_list \
            or len(fn.body) != 1 or not isinstance(fn.body[0], ast.Return) or not isinstance(fn.body[0].value, ast.Dict):
        return None
    d = fn.body[0].value
    params = {x.arg for x in a.args}
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in d.keys):
        return None
    if any(isinstance(n, ast.Name) and n.id not in params for v in d.values for n in ast.walk(v)):
        return None
    return d


class _SpreadKeywords(ast.NodeTransformer):
    """`f(**{"a": x})` and `f(**g(y))`, where g only returns such a dict, become `f(a=...)`: the
    keywords then reach `_propagate_arguments` one by one."""

    def __init__(self, tree: ast.Module) -> None:
        fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and _returned_dict(n) is not None]
        self.dict_fns = {n.name: _returned_dict(n) for n in fns}
        self.params = {n.name: [x.arg for x in n.args.args] for n in fns}
        self.local: list[set[str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.local.append({n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
                          | {x.arg for x in ast.walk(node.args) if isinstance(x, ast.arg)})
        self.generic_visit(node)
        self.local.pop()
        return node

    def _spread(self, value: ast.expr) -> list[ast.keyword] | None:
        if isinstance(value, ast.Dict):
            if all(isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.isidentifier() for k in value.keys):
                return [ast.keyword(k.value, v) for k, v in zip(value.keys, value.values, strict=True)]  # type: ignore[union-attr]
            return None
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in self.dict_fns
                and not any(value.func.id in b for b in self.local) and not value.keywords
                and len(value.args) == len(self.params[value.func.id]) and all(is_pure(x) for x in value.args)):
            return None
        bind = dict(zip(self.params[value.func.id], value.args, strict=True))

        class Bind(ast.NodeTransformer):
            def visit_Name(self, n: ast.Name) -> ast.expr:
                return copy.deepcopy(bind[n.id])

        return self._spread(Bind().visit(copy.deepcopy(self.dict_fns[value.func.id])))

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        out: list[ast.keyword] = []
        for k in node.keywords:
            spread = self._spread(k.value) if k.arg is None else None
            out.extend(spread if spread is not None else [k])
        names = [k.arg for k in out if k.arg]
        if len(names) == len(set(names)):
            node.keywords = out
        return node


def constant_tuples(tree: ast.Module) -> dict[str, list[Any]]:
    """Top-level names bound once, to a tuple of constants, and never bound again anywhere (a tuple
    cannot change, so `'zlib' in CODECS` is decided)."""
    binds = bind_counts(tree)
    out: dict[str, list[Any]] = {}
    for node in tree.body:
        for t, v in assign_pairs(node):
            if isinstance(t, ast.Name) and isinstance(v, ast.Tuple) and _is_const(v) and binds.get(t.id) == 1:
                out[t.id] = _value(v)
    return out


def _does_nothing(fn: ast.stmt) -> bool:
    return isinstance(fn, ast.FunctionDef) and not fn.decorator_list and all(isinstance(s, ast.Pass) for s in fn.body)


def _returned_constant(fn: ast.stmt, calls: int) -> ast.Constant | None:
    """The constant a top-level function of no parameters returns, when that is all it does (after a
    docstring), and it is not a long string called more than once (which would only be repeated)."""
    body = fn.body[1:] if isinstance(fn, ast.FunctionDef) and len(fn.body) > 1 and _is_docstring(fn.body[0]) \
        else getattr(fn, "body", [])
    if not (isinstance(fn, ast.FunctionDef) and not fn.decorator_list and len(body) == 1
            and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.Constant)):
        return None
    a = fn.args
    if a.posonlyargs or a.args or a.kwonlyargs or a.vararg or a.kwarg:
        return None
    value = body[0].value
    return None if isinstance(value.value, (str, bytes)) and len(value.value) > 16 and calls > 1 else value


def _is_docstring(st: ast.stmt) -> bool:
    return isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str)


class _InlineConstantCalls(ast.NodeTransformer):
    """`f()` becomes `c` where the top-level `def f(): return c` (its options all folded: `head_dim_of()`
    -> 64, `ttt_evaluator()` -> None), unless something else binds the name `f`."""

    def __init__(self, tree: ast.Module) -> None:
        bound = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)]
        bound += [x.arg for x in ast.walk(tree) if isinstance(x, ast.arg)]
        calls: dict[str, int] = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                calls[n.func.id] = calls.get(n.func.id, 0) + 1
        self.values = {n.name: c for n in tree.body
                       if isinstance(n, ast.FunctionDef) and (c := _returned_constant(n, calls.get(n.name, 0))) is not None}
        for name in bound:
            self.values.pop(name, None)
        defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        for name in set(defs):
            if defs.count(name) > 1:  # a method of the same name, or a second definition
                self.values.pop(name, None)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.values and not node.args and not node.keywords:
            return ast.copy_location(ast.Constant(self.values[node.func.id].value), node)
        return node


class _DropNoOpCalls(ast.NodeTransformer):
    """`check(cfg, x)` as a statement, where the top-level function `check` is left with nothing but
    `pass` (its tests all decided) and the arguments have no side effects: the call goes; so does
    `obj.prepare(...)` where every method of that name does nothing and no other type has one, and a
    `for` loop over an attribute that then does nothing (`for block in self.blocks: pass`)."""

    def __init__(self, tree: ast.Module) -> None:
        self.noop = {n.name for n in tree.body if _does_nothing(n)}
        methods: dict[str, list[ast.stmt]] = {}
        for c in tree.body:
            for m in c.body if isinstance(c, ast.ClassDef) else []:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.setdefault(m.name, []).append(m)
        self.noop_methods = {name for name, defs in methods.items()
                             if all(_does_nothing(m) for m in defs) and not name.startswith("__")
                             and name not in _external_methods()}
        self.local: list[set[str]] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        self.local.append({n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
                          | {x.arg for x in ast.walk(node.args) if isinstance(x, ast.arg)})
        self.generic_visit(node)
        node.body = node.body or [ast.Pass()]
        self.local.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Expr(self, node: ast.Expr) -> ast.stmt | None:
        c = node.value
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in self.noop \
                and not any(c.func.id in b for b in self.local) \
                and all(is_pure(x) for x in [*c.args, *(k.value for k in c.keywords)]):
            return None
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr in self.noop_methods \
                and all(is_pure(x) for x in [c.func.value, *c.args, *(k.value for k in c.keywords)]):
            return None
        return node

    def visit_For(self, node: ast.For) -> ast.stmt | None:
        self.generic_visit(node)
        if all(isinstance(s, ast.Pass) for s in node.body) and not node.orelse and isinstance(node.target, ast.Name) \
                and isinstance(node.iter, ast.Attribute) and is_pure(node.iter):
            return None
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if field == "body" and isinstance(block, list) and not block and not isinstance(node, ast.Module):
                node.body = [ast.Pass()]  # type: ignore[attr-defined]
        return node


def unfolded_reads(tree: ast.Module, cfg: RunConfig) -> set[str]:
    """The config keys the code still reads through a config-typed variable (dotted): after
    `specialize`, only the runtime keys and keys the code itself writes should be left."""
    collect = _FoldConfig(*_config_tree(cfg))
    collect.visit(tree)
    return {".".join(p) for p in collect.read}


def specialize(tree: ast.Module, cfg: RunConfig, prune: bool = False) -> None:
    """In place: fold `cfg`'s values into the code and drop the branches they rule out; with `prune`
    (a whole script, whose top-level statements are its entry points), also drop what nothing reaches
    between the passes, which do not change the result but then walk a fraction of the tree."""
    types, leaves = _config_tree(cfg)
    collect = _FoldConfig(types, leaves)
    collect.visit(tree)
    _FoldConfig(types, leaves, collect.stored).visit(tree)
    tuples = constant_tuples(tree)
    _Simplify(tuples).visit(tree)
    _SpreadKeywords(tree).visit(tree)
    _SplitConstantTuples().visit(tree)
    if prune:
        prune_unreachable(tree)
    modules = imported_names(tree)
    for _ in range(8):  # constants reach new call sites as functions are specialized
        prune_constant_lookups(tree)  # KINDS['relu2'] only: the other kinds' calls no longer count
        _InlineConstantCalls(tree).visit(tree)
        _FoldSelfConstants(_stored_attrs(tree), _guarded_stores(tree)).visit(tree)
        _FoldNeverNoneAttrs(tree).visit(tree)
        _FoldLocalConstants().visit(tree)
        _FoldNoneLocals(tuples).visit(tree)
        _DropDeadLocals().visit(tree)
        _Simplify(tuples).visit(tree)
        _DropNoOpCalls(tree).visit(tree)
        if prune:
            prune_unreachable(tree)
        if not (_propagate_arguments(tree, modules) | _drop_unused_parameters(tree, modules)):
            break
        _Simplify(tuples).visit(tree)
    ast.fix_missing_locations(tree)
