"""Drop from the inlined core what one config never runs, so the exported script carries only that.

Passes over the module tree of the concatenated core, all independent of what model/ and optim/
happen to define (new kinds and options are handled without touching this file):

1. Constant lookups (`prune_constant_lookups`, run by the specializer): a top-level dict literal only
   ever indexed by constants keeps those entries (`MLP_KINDS['relu2']` once `model.mlp` is folded).
   `prune_registries` does the same for dicts named explicitly.
2. Reachability: starting from every top-level statement that is not a definition (the `__main__`
   guard, module-level calls) and the given entry names, keep the top-level functions, classes and
   assignments that are referenced by name, and the methods whose name is used as an attribute or a
   string anywhere in what is kept (or that Python / torch call implicitly: dunders, `forward`).
   Repeated until nothing new is reached. Abstract methods every subclass overrides and unused names
   of kept imports go too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

# Methods that the interpreter or torch call without naming them in our code.
IMPLICIT_METHODS = frozenset({"forward", "extra_repr", "reset_parameters", "_apply"})


def prune_registries(tree: ast.Module, selected: Mapping[str, str]) -> None:
    """In place: for each top-level dict literal named in `selected`, keep only the entry whose
    string key equals the selected value (the dict is left alone when that key is missing)."""
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)):
            continue
        names = {t.id for t in node.targets if isinstance(t, ast.Name)}
        for name in names & selected.keys():
            d = node.value
            keep = [i for i, k in enumerate(d.keys) if isinstance(k, ast.Constant) and k.value == selected[name]]
            if keep:
                d.keys = [d.keys[i] for i in keep]
                d.values = [d.values[i] for i in keep]


def prune_constant_lookups(tree: ast.Module) -> None:
    """In place: a top-level dict literal that the code only ever indexes with constants (`KINDS['relu2']`,
    after specialization folded the config key) keeps only those entries. A registry of kinds needs no
    declaration: whatever the config does not select is gone."""
    uses: dict[str, set[object] | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and all(isinstance(k, ast.Constant) for k in node.value.keys):
            uses[node.targets[0].id] = set()
    indexed = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in uses:
            indexed[id(n.value)] = n
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Name) and n.id in uses and isinstance(n.ctx, ast.Load)):
            continue
        sub = indexed.get(id(n))
        keys = uses[n.id]
        if keys is None:
            continue
        if sub is not None and isinstance(sub.slice, ast.Constant) and isinstance(sub.ctx, ast.Load):
            keys.add(sub.slice.value)
        else:
            uses[n.id] = None  # iterated, passed on or indexed by a variable: every entry may be read
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and uses.get(node.targets[0].id) is not None and isinstance(node.value, ast.Dict):
            d, keep = node.value, uses[node.targets[0].id]
            pairs = [(k, v) for k, v in zip(d.keys, d.values, strict=True) if k.value in keep]  # type: ignore[union-attr]
            d.keys, d.values = [k for k, _ in pairs], [v for _, v in pairs]


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom)
                                                                and node.module == "__future__"):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return set()


def _is_method(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))


def _method_needed(name: str, used: set[str]) -> bool:
    return (name.startswith("__") and name.endswith("__")) or name in IMPLICIT_METHODS or name in used


class _Refs(ast.NodeVisitor):
    """Names, attribute names and string constants used by a piece of code. Function annotations
    are skipped: under `from __future__ import annotations` they are never evaluated."""

    def __init__(self, modules: frozenset[str] = frozenset(), in_method: bool = False) -> None:
        self.names: set[str] = set()
        self.words: set[str] = set()  # attribute names and string constants: candidate method names
        self.own: set[str] = set()  # `self.x` inside a method: names only its class's family can define
        self.modules = modules  # imported names: `torch.save` names no method of ours
        self.in_method = in_method

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Store):  # a store defines a local (or the statement's own name)
            self.names.add(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.names.update(node.names)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if self.in_method and isinstance(node.value, ast.Name) and node.value.id == "self":
            self.own.add(node.attr)
        elif not (isinstance(root, ast.Name) and root.id in self.modules):
            self.words.add(node.attr)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.words.add(node.value)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            self.visit(stmt)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        # a dataclass field's annotation stays a string (never evaluated): only its value counts
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)


def imported_names(tree: ast.Module) -> frozenset[str]:
    """Names bound by top-level imports and never rebound: `name.attr` on them is never one of the
    script's own methods."""
    imported = {n for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for n in _defined_names(node)}
    rebound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} \
        | {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    return frozenset(imported - rebound)


def _refs_of(nodes: Iterable[ast.AST], modules: frozenset[str] = frozenset(), in_method: bool = False) -> _Refs:
    r = _Refs(modules, in_method)
    for n in nodes:
        r.visit(n)
    return r


def prune_unreachable(tree: ast.Module, entries: Iterable[str] = ()) -> None:
    """In place: drop top-level definitions and methods that nothing kept refers to."""
    _drop_overridden_abstract_methods(tree)
    defs: dict[str, list[int]] = {}
    roots: list[int] = []
    for i, node in enumerate(tree.body):
        names = _defined_names(node)
        if names:
            for n in names:
                defs.setdefault(n, []).append(i)
        else:
            roots.append(i)
    modules = imported_names(tree)
    family = _class_families(tree)
    kept: set[int] = set(roots)
    wanted: set[str] = set(entries)
    used_words: set[str] = set()
    own_words: dict[str, set[str]] = {}  # class family -> names its methods read as `self.x`
    scanned: set[tuple[int, int]] = set()  # (statement, method index or -1) already scanned

    def needed(cls: ast.ClassDef, stmt: ast.stmt) -> bool:
        return not _is_method(stmt) or _method_needed(stmt.name, used_words | own_words.get(family[cls.name], set()))  # type: ignore[attr-defined]

    def scan(i: int, j: int, nodes: Iterable[ast.AST], cls: ast.ClassDef | None = None) -> bool:
        if (i, j) in scanned:
            return False
        scanned.add((i, j))
        r = _refs_of(nodes, modules, in_method=cls is not None)
        wanted.update(r.names)
        used_words.update(r.words)
        if cls is not None:
            own_words.setdefault(family[cls.name], set()).update(r.own)
        return True

    changed = True
    while changed:
        changed = False
        for name in list(wanted):
            for i in defs.get(name, []):
                if i not in kept:
                    kept.add(i)
                    changed = True
        for i in sorted(kept):
            node = tree.body[i]
            if isinstance(node, ast.ClassDef):
                changed |= scan(i, -1, [*node.bases, *node.keywords, *node.decorator_list])
                for j, stmt in enumerate(node.body):
                    if needed(node, stmt):
                        changed |= scan(i, j, [stmt], node if _is_method(stmt) else None)
            else:
                changed |= scan(i, -1, [node])
    body = []
    for i, node in enumerate(tree.body):
        if i not in kept:
            continue
        if isinstance(node, ast.ClassDef):
            node.body = [s for s in node.body if needed(node, s)] or [ast.Pass()]
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and _defined_names(node):  # from abc import ABC, abstractmethod
            node.names = [a for a in node.names if (a.asname or a.name).split(".")[0] in wanted]
        body.append(node)
    tree.body = body


def _class_families(tree: ast.Module) -> dict[str, str]:
    """Each top-level class -> its family: the classes joined to it by inheritance (either way, so a
    `self.x` in a base may run a subclass's x), named by one of them."""
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    parent = {c.name: c.name for c in classes}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for c in classes:
        for b in c.bases:
            if isinstance(b, ast.Name) and b.id in parent:
                parent[root(c.name)] = root(b.id)
    return {n: root(n) for n in parent}


def _drop_overridden_abstract_methods(tree: ast.Module) -> None:
    """An `@abstractmethod` that every subclass in the script overrides is never run (nothing can
    call it but `super()`, which only a subclass could write)."""
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    supers = {n.attr for n in ast.walk(tree)  # super().name(...)
              if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Call)
              and isinstance(n.value.func, ast.Name) and n.value.func.id == "super"}
    for base in classes:
        subs = [c for c in classes if any(isinstance(b, ast.Name) and b.id == base.name for b in c.bases)]
        if not subs:
            continue
        abstract = [m for m in base.body if _is_method(m) and m.name not in supers and any(  # type: ignore[attr-defined]
            isinstance(d, ast.Name) and d.id == "abstractmethod" for d in m.decorator_list)]  # type: ignore[attr-defined]
        overrides = [{s.name for s in c.body if _is_method(s)} for c in subs]  # type: ignore[attr-defined]
        dead = {id(m) for m in abstract if all(m.name in o for o in overrides)}  # type: ignore[attr-defined]
        if dead:
            base.body = [m for m in base.body if id(m) not in dead] or [ast.Pass()]


class _StripAnnotations(ast.NodeTransformer):
    """Function signatures and local variables lose their type hints (never evaluated under
    `from __future__ import annotations`); class bodies keep theirs, which dataclasses read."""

    def _function(self, node):
        node.returns = None
        for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]:
            if a is not None:
                a.annotation = None
        node.body = [self.visit(s) for s in node.body]
        node.body = [s for s in node.body if s is not None] or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        node.body = [self.visit(s) if _is_method(s) or isinstance(s, ast.ClassDef) else s for s in node.body]
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt | None:
        if node.value is None:
            return None
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


def strip_annotations(tree: ast.Module) -> None:
    """In place: drop type hints that have no effect at run time."""
    _StripAnnotations().visit(tree)
    ast.fix_missing_locations(tree)


def drop_pass(tree: ast.Module) -> None:
    """In place: `pass` statements that are not a block's only statement (left where imports of
    golflab's own modules were)."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and len(block) > 1:
                setattr(node, field, [s for s in block if not isinstance(s, ast.Pass)] or block[:1])


def is_pure(node: ast.AST) -> bool:
    """Evaluating it has no side effects (names, attributes of names, constants)."""
    return isinstance(node, (ast.Name, ast.Constant)) or (isinstance(node, ast.Attribute) and is_pure(node.value))


def drop_unread_attributes(tree: ast.Module) -> bool:
    """In place: `self.x = <constant>` inside a class (also a pair of `self.a, self.b = 1, None`) when no
    code anywhere reads an attribute `x` or names it by a string, and the class never reads its own
    `__dict__` / `vars(self)`: specialization folded every read. In a class whose bases are all the
    script's own, also `self.x = <name or attribute of one>` (`self.muon_cfg = cfg.muon`); a framework
    base may act on a store (nn.Module registers a parameter or a submodule). Returns whether anything went."""
    read = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and not isinstance(n.ctx, ast.Store)}
    read |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    def own(c: ast.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
        return not c.keywords and all(isinstance(b, ast.Name) and b.id in classes and b.id not in seen
                                      and own(classes[b.id], seen | {c.name}) for b in c.bases)

    def unread(t: ast.expr, v: ast.expr, plain: bool) -> bool:
        return (isinstance(v, ast.Constant) or (plain and is_pure(v))) and isinstance(t, ast.Attribute) \
            and isinstance(t.value, ast.Name) and t.value.id == "self" and t.attr not in read

    changed = False
    for cls in classes.values():
        plain = own(cls)
        if "__dict__" in read or any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "vars"
                                     for n in ast.walk(cls)):
            continue
        for holder in list(ast.walk(cls)):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(holder, field, None)
                if not (isinstance(block, list) and block and isinstance(block[0], ast.stmt)) or holder is cls:
                    continue
                out: list[ast.stmt] = []
                for st in block:
                    pairs = assign_pairs(st)
                    keep = [(t, v) for t, v in pairs if not unread(t, v, plain)]
                    if not pairs or len(keep) == len(pairs):
                        out.append(st)
                        continue
                    changed = True
                    if len(keep) == 1:
                        out.append(ast.copy_location(ast.Assign(targets=[keep[0][0]], value=keep[0][1]), st))
                    elif keep:
                        out.append(ast.copy_location(ast.Assign(
                            targets=[ast.Tuple([t for t, _ in keep], ast.Store())],
                            value=ast.Tuple([v for _, v in keep], ast.Load())), st))
                setattr(holder, field, out or [ast.Pass()] if field == "body" else out)
    ast.fix_missing_locations(tree)
    return changed


def assign_pairs(node: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) of a single-target assignment, element-wise for `self.a, self.b = a, b`; [] otherwise."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
        return []
    target, value = node.targets[0], node.value
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        return list(zip(target.elts, value.elts, strict=True))
    return [(target, value)]
