"""The specializer's and pruner's general rules, each on a few lines of code, and the guarantee they give
the exported script: every config read but the runtime keys is folded, whatever options the model has."""

from __future__ import annotations

import ast

import pytest

from golflab.artifact.export import specialized_tree
from golflab.artifact.prune import prune_constant_lookups, prune_unreachable
from golflab.artifact.specialize import RUNTIME_KEYS, specialize, unfolded_reads
from golflab.config import load_config


def _specialized(src: str, preset: str = "golf-baseline") -> str:
    tree = ast.parse(src)
    specialize(tree, load_config(preset=preset))
    return ast.unparse(tree)


def test_only_the_keys_main_reads_from_the_environment_stay_unfolded():
    text = _specialized("def f(c: RunConfig):\n    return (c.data.path, c.data.tokenizer, c.data.order, c.seed,\n"
                        "            c.budget.seconds, c.budget.steps, c.budget.tokens)\n")
    assert "return (c.data.path, c.data.tokenizer, 'sequential', c.seed, c.budget.seconds, c.budget.steps, 0)" in text


def test_constants_reach_constructors_and_methods_whose_callers_are_all_known():
    text = _specialized(
        "import subprocess\n"
        "class Loader:\n"
        "    def __init__(self, files, order='sequential', strict=False):\n"
        "        self.files, self.order = files, order\n"
        "        self.strict = strict\n"
        "    def batch(self, n, pad=False):\n"
        "        if self.order == 'shuffled':\n            return 'shuffled'\n"
        "        if self.strict or pad:\n            return 'strict'\n"
        "        return n\n"
        "    def run(self, fast=False):\n        return 'fast' if fast else 'slow'\n"
        "class Seen:\n"
        "    def __init__(self, kind='sequential'):\n        self.kind = kind\n"
        "    def go(self, fast=False):\n        return 'fast' if fast else 'slow'\n"
        "def make(files, evaluate):\n"
        "    evaluate(1, 2)\n"  # a parameter, not the global function below
        "    subprocess.run(['true'])\n"  # a module's function, not Loader.run
        "    loader = Loader(files)\n"
        "    s = Seen('shuffled')\n"
        "    return loader.batch(3), loader.run(), s.go, Seen\n"  # s.go and Seen escape: hidden callers
        "def evaluate(x, mode='plain'):\n    return x if mode == 'plain' else -x\n"
        "def use():\n    return evaluate(4)\n")
    loader = text.split("class Seen")[0]
    assert "'shuffled'" not in loader and "'strict'" not in loader and "return 3" in loader  # batch(3), its only call
    assert "return 'slow'" in loader  # Loader.run(): fast is False at its only call
    assert "self.kind = kind" in text and "return 'fast' if fast else 'slow'" in text  # Seen: left alone
    assert "return 4" in text and "-x" not in text  # evaluate(1, 2) did not count as a call of it


def test_a_spread_options_dict_becomes_keywords_and_local_constants_fold():
    text = _specialized(
        "def options(c: RunConfig, bos):\n    return {'packing': c.eval.packing, 'bos_id': bos}\n"
        "def score(x, packing='best_fit', bos_id=None):\n"
        "    if packing == 'best_fit':\n        return 'rows'\n    return x, bos_id\n"
        "def caller(c: RunConfig, ds):\n"
        "    n = 3\n    k = 1\n    k += 1\n"
        "    return score(n + k, **options(c, ds.bos_id))\n")
    # packing='stream' reached score as a keyword, decided its test, and then went as a parameter read no more
    assert "score(3 + k, bos_id=ds.bos_id)" in text and "def score(x, bos_id=None):" in text
    assert "'rows'" not in text and "k = 1" in text and "n = 3" not in text


def test_a_store_is_no_reference_and_module_attributes_name_no_method():
    tree = ast.parse(
        "import torch\n"
        "class Result:\n    val_bpb: float\n"  # a dataclass field, not a use of the function below
        "class Box:\n    def save(self):\n        return 1\n"
        "def val_bpb():\n    return 0\n"
        "if __name__ == '__main__':\n    torch.save(Box(), 'x')\n    print(Result)\n")
    prune_unreachable(tree)
    text = ast.unparse(tree)
    assert "def val_bpb" not in text and "def save" not in text and "class Box" in text


@pytest.mark.parametrize("preset", ["golf-baseline", "golf-swiglu576", "autoresearch"])
def test_every_config_read_but_the_runtime_keys_is_folded(preset):
    """So a new option left at its off-default costs the script no bytes: its reads become constants
    and the branches they guard are dropped, with no list of options to maintain."""
    cfg = load_config(preset=preset)
    assert unfolded_reads(specialized_tree(cfg), cfg) <= {".".join(k) for k in RUNTIME_KEYS}


def test_a_dict_indexed_only_by_constants_keeps_those_entries():
    tree = ast.parse("KINDS = {'a': 1, 'b': 2}\nALL = {'a': 1, 'b': 2}\n"
                     "def f():\n    return KINDS['b'] + sum(ALL.values())\n")
    prune_constant_lookups(tree)
    text = ast.unparse(tree)
    assert "KINDS = {'b': 2}" in text and "ALL = {'a': 1, 'b': 2}" in text  # ALL is read whole: left alone


def test_an_abstract_method_every_subclass_overrides_is_dropped():
    tree = ast.parse(
        "from abc import ABC, abstractmethod\n"
        "class Base(ABC):\n"
        "    @abstractmethod\n    def encode(self, text): ...\n"
        "    @abstractmethod\n    def save(self, path): ...\n"
        "class A(Base):\n    def encode(self, text):\n        return 1\n"
        "class B(Base):\n    def encode(self, text):\n        return 2\n    def save(self, path):\n        return 3\n"
        "if __name__ == '__main__':\n    A().encode('x'), B().encode('y'), B().save('p')\n")
    prune_unreachable(tree)
    base = ast.unparse(tree).split("class A")[0]
    assert "def encode" not in base and "def save" in base  # A does not override save


def test_a_folded_value_in_an_f_string_becomes_text():
    text = _specialized("def f(c: RunConfig, x):\n    return f'split {c.eval.split} {x:.2f}', f'{c.eval.stride}'\n")
    assert "return (f'split val {x:.2f}', '64')" in text


def test_a_constant_set_inside_a_loop_folds_for_the_statements_after_it():
    text = _specialized("def f(xs):\n    for x in xs:\n        every = 0\n        if every > 0:\n            save()\n"
                        "        y = 2\n        y = 3\n        print(y)\n")
    assert "every" not in text and "save()" not in text and "print(y)" in text  # y is bound twice: left alone


def test_specializing_again_after_pruning_folds_what_dead_code_blocked():
    from golflab.artifact.export import specialize_and_prune

    tree = ast.parse("class A:\n    def __init__(self):\n        self.window = 0\n"
                     "    def attend(self):\n        return 'windowed' if self.window > 0 else 'causal'\n"
                     "def unused(a):\n    a.window = 3\n"  # a second store of `window`, in dead code
                     "print(A().attend())\n")
    specialize_and_prune(tree, load_config(preset="golf-baseline"))
    text = ast.unparse(tree)
    assert "def unused" not in text and "return 'causal'" in text and "windowed" not in text


def test_constant_membership_chains_arithmetic_and_min_are_decided():
    text = _specialized(
        "CODECS = ('zlib', 'lzma')\nWIDTHS = (2, 3)\nLATER = ('a',)\n"
        "def check(codec, bits, n):\n"
        "    if codec not in CODECS or bits not in WIDTHS:\n        raise ValueError('bad')\n"
        "    if not 0 <= 0 < 9:\n        raise ValueError('depth')\n"
        "    if min(0.0, 1.5) < 0:\n        raise ValueError('sigma')\n"
        "    return (1024 + 1, 1.0 - 0.0, 1.0 / 127.0, 0 < 1 < n, 'a' in LATER)\n"
        "def rebind():\n    global LATER\n    LATER = ()\n"  # rebound: not a constant tuple
        "check('zlib', 3, 5)\ncheck('zlib', 3, 6)\n")
    assert "raise" not in text
    assert "return (1025, 1.0, 1.0 / 127.0, 1 < n, 'a' in LATER)" in text  # 1/127 would only get longer


def test_a_call_of_a_function_left_doing_nothing_goes():
    text = _specialized("def check(cfg: ModelConfig, n):\n    if cfg.num_layers < 1:\n        raise ValueError(n)\n"
                        "def side():\n    print('side effect')\n    return 1\n"
                        "def run(cfg: ModelConfig, x):\n    check(cfg, x)\n    check(cfg, side())\n    return x\n"
                        "run(None, 2)\nrun(None, 3)\n")
    assert "raise" not in text and "check(side())" in text  # a call with side effects stays
    assert "check(x)" not in text and "check(cfg, x)" not in text


def test_a_parameter_the_body_never_reads_goes_from_the_signature_and_the_calls():
    text = _specialized(
        "def f(x, unused, y=2, *, flag=True, spare=None):\n    return x + y\n"
        "def g(a, b):\n    return a\n"
        "class Acc:\n    def add(self, v, extra=0):\n        return v\n    def push(self, v, extra=0):\n        return v\n"
        "    def append(self, v, extra=0):\n        return v\n"
        "def run(z):\n    s = set()\n    s.add(z)\n    Acc().push(z, extra=1)\n    Acc().append(z, extra=1)\n"
        "    return f(z, z, 3, flag=False), f(1, z, spare=z), g(z, print(z)), Acc().add(z)\n"
        "run(1)\nrun(2)\n")
    assert "def f(x, y=2):" in text and "f(z, 3)" in text and "f(1)" in text
    assert "def g(a, b):" in text and "g(z, print(z))" in text  # print(z) has a side effect: kept
    assert "def add(self, v):" in text and "s.add(z)" in text  # never passed: only the signature changes
    # a passed parameter stays where another type has a method of that name (x.append may be a list's),
    # and goes from a method no such type has
    assert "def append(self, v, extra=0):" in text and "Acc().append(z, extra=1)" in text
    assert "def push(self, v):" in text and "Acc().push(z)" in text


def test_the_round_trip_reads_its_own_codec_so_only_that_one_stays():
    script = "\n".join(ast.unparse(n) for n in specialized_tree(load_config(preset="golf-baseline")).body)
    assert "import zlib" in script and "import lzma" not in script and "def blob_codec" not in script
    assert "brotli" not in script.replace("('zlib', 'lzma', 'brotli', 'zstd')", "")  # the tuple names the ids
    assert "class QuantStats" not in script and "class CategoryStats" not in script  # the round trip needs no stats
    # it decodes bytes it just made: no checks against damaged files, no decoder int8_pg does not write
    assert "def check_serialized" not in script and "crc32(payload) !=" not in script
    assert "def unpack_int6" not in script and "def lqer_correction" not in script


def test_tab_indentation_leaves_multi_line_strings_alone():
    from golflab.artifact.export import tab_indent

    src = 'def f():\n    """a\n    b"""\n    if 1:\n        return """x\n        y"""\n'
    out = tab_indent(src)
    assert out == 'def f():\n\t"""a\n    b"""\n\tif 1:\n\t\treturn """x\n        y"""\n'
    compile(out, "t", "exec")


def test_an_attribute_set_to_a_constant_and_never_read_goes():
    from golflab.artifact.prune import drop_unread_attributes

    tree = ast.parse("class A:\n    def __init__(self):\n        self.gone, self.kept = None, None\n"
                     "        self.named = 0\n        self.computed = print()\n"
                     "    def f(self):\n        return self.kept, getattr(self, 'named')\n"
                     "class B:\n    def __init__(self):\n        self.gone = 1\n    def g(self):\n        return vars(self)\n")
    assert drop_unread_attributes(tree)
    text = ast.unparse(tree)
    assert "self.kept = None" in text and "self.named = 0" in text and "self.computed = print()" in text
    assert text.count("self.gone") == 1  # B reads its own vars(): its attributes stay


def test_an_alias_that_folding_left_unread_goes_and_so_does_the_parameter_it_read():
    text = _specialized(
        "def kernels(cfg: RunConfig, n):\n"
        "    m = cfg.model\n"
        "    stats: dict = {}\n"
        "    total = 0\n"
        "    for i in range(n):\n        total += i\n"
        "    seen = []\n"
        "    def inner():\n        return seen\n"
        "    return m.model_dim, total, inner\n"
        "def user(cfg: RunConfig):\n"
        "    return kernels(cfg, 3)\n"
        "def glob():\n    global G\n    G = 1\n"
        "def dyn(cfg: RunConfig):\n    t = cfg.train\n    return locals()\n")
    assert "m = cfg.model" not in text and "stats" not in text  # the read of m.model_dim folded to 512
    assert "total = 0" in text and "seen = []" in text  # read by `+=` and by a nested function
    assert "G = 1" in text and "t = cfg.train" in text  # a global; a function that reads its locals()
    assert "def kernels():" in text and "return kernels()" in text and "range(3)" in text  # n = 3 as well


def test_an_attribute_left_none_stays_none_when_only_code_guarded_by_it_would_set_it():
    text = _specialized(
        "class T:\n"
        "    def __init__(self, cfg: RunConfig):\n"
        "        self.ema = Shadow() if cfg.schedule.ema_decay > 0 else None\n"
        "        self.other = None\n"
        "    def warm(self):\n"
        "        if self.ema is not None:\n            self.ema = Shadow()\n"
        "        if self.other is not None:\n            self.other = 1\n"
        "        self.other = 2\n"  # an unguarded store: other may be set
        "    def step(self):\n"
        "        if self.ema is not None:\n            self.ema.update()\n"
        "        return self.other\n")
    assert "Shadow" not in text and "update" not in text  # golf-baseline's ema_decay is 0
    assert "if self.other is not None" in text and "return self.other" in text


def test_a_call_of_a_function_that_only_returns_a_constant_becomes_the_constant():
    text = _specialized(
        "def head_dim_of(m: ModelConfig):\n    return m.head_dim or m.model_dim // m.num_heads\n"
        "def evaluator(cfg: RunConfig):\n    return None if not cfg.eval.ttt.enabled else make()\n"
        "def name():\n    return 'a long string that would only be repeated'\n"
        "def once():\n    'A docstring.'\n    return 'a long string called once only'\n"
        "def shadowed():\n    return 1\n"
        "def user(cfg: RunConfig, shadowed):\n"
        "    tt = evaluator(cfg)\n"
        "    if tt is not None:\n        return tt()\n"
        "    return 4 * head_dim_of(cfg.model), name(), shadowed(), name(), once()\n")
    # golf-baseline: 512 // 8; no TTT; a long string is written in only where it is not repeated
    assert "return (256, name(), shadowed(), name(), 'a long string called once only')" in text and "tt" not in text


def test_a_tuple_assignment_with_constants_splits_so_each_name_folds():
    text = _specialized(
        "def f(x):\n    s, orth = 1.0, False\n    return g(x, s, orth)\n"
        "def h(x):\n    a, b = b, a\n    c, d = x(), x()\n    return a, b, c, d\n"
        "class K:\n    def __init__(self, n):\n        self.n, self.kind = n, 'plain'\n")
    assert "return g(x, 1.0, False)" in text and "s, orth" not in text
    assert "a, b = (b, a)" in text and "c, d = (x(), x())" in text  # a swap; two calls keep their order in one line
    assert "self.n = n" in text and "self.kind = 'plain'" in text


def test_the_script_runs_without_golflabs_internal_asserts():
    script = "\n".join(ast.unparse(n) for n in specialized_tree(load_config(preset="golf-baseline")).body)
    assert "assert " not in script and "unknown parameter role" not in script
    assert "does not exist" in script  # a user's error (a missing data folder) keeps its message


def test_a_method_read_only_as_another_classs_self_attribute_goes():
    tree = ast.parse(
        "class Head:\n    def logits(self, x):\n        return x\n    def scores(self, x):\n        return self.logits(x)\n"
        "class Base:\n    def run(self):\n        return self.step()\n"
        "class Sub(Base):\n    def step(self):\n        return 1\n"
        "class Model:\n    def logits(self, x):\n        return Head().scores(x)\n    def unused(self):\n        pass\n"
        "print(Model, Sub().run())\n")
    prune_unreachable(tree)
    text = ast.unparse(tree)
    assert "class Head" not in text  # Model.logits is never called: Head's self.logits names Head's own
    assert "def step" in text and "def unused" not in text  # a base's self.step runs the subclass's


def test_a_local_left_none_is_none_where_it_is_read():
    text = _specialized(
        "def f(xs):\n    lanes: tuple | None = None\n    y = 0\n    for x in xs:\n"
        "        y = lanes[0] if lanes is not None else y\n        lanes = (x, lanes[1]) if lanes is not None else None\n"
        "        if lanes is not None:\n            lanes = g(lanes)\n        y = y + x\n"
        "    if lanes is not None:\n        y = lanes[0]\n    return y\n"
        "def h(xs):\n    acc = None\n    for x in xs:\n        acc = x if acc is None else acc + x\n    return acc\n")
    assert "lanes" not in text and "y = y\n" not in text and "y = y + x" in text
    assert "acc = x if acc is None else acc + x" in text  # a store that may set it: not folded


def test_int_and_float_of_a_constant_are_decided():
    text = _specialized("def f(n):\n    return int(16000000), float(64), int(n), min(1, 2.5)\n")
    assert "return (16000000, 64.0, int(n), 1)" in text
    assert "return int(3)" in _specialized("def g(int):\n    return int(3)\n")  # g binds its own int


def test_type_checking_blocks_go_and_constants_inside_boolean_chains_are_decided():
    chains = ("def f(a, b):\n    p = a and True and b\n    q = a and False and b\n    r = a or False or b\n"
              "    s = a or True or b\n    return (p, q, r, s)\n")
    text = _specialized("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from x import Y\nelse:\n    Z = 1\n"
                        + chains)
    assert "from x import Y" not in text and "Z = 1" in text
    assert "p = a and b" in text and "q = a and False\n" in text
    assert "r = a or b" in text and "s = a or True\n" in text
    original: dict = {}
    folded: dict = {}
    exec(chains, original)
    exec(text[text.index("def f"):], folded)
    for a in (0, 1, 2, None, ""):
        for b in (0, 3, None):  # the folded chains keep Python's values, not only their truthiness
            assert folded["f"](a, b) == original["f"](a, b)


def test_an_attribute_only_ever_set_to_values_that_are_never_none_is_not_none():
    src = (
        "import torch\nfrom torch import nn\n"
        "def declare(p, role):\n    p.role = role\n    return p\n"
        "def new_param(shape, role):\n    return declare(nn.Parameter(torch.empty(shape)), role)\n"
        "def fresh(shape):\n    param = nn.Parameter(torch.empty(shape))\n    return param\n"
        "def maybe(n):\n    if n:\n        return nn.Parameter(torch.empty(n))\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        self.scale = new_param((n,), 'scalar')\n"
        "        self.gate = maybe(n)\n"
        "        self.other = new_param((n,), 'scalar')\n"
        "        self.bias = fresh((n,))\n"
        "    def forward(self, x):\n"
        "        if self.scale is not None:\n            x = x * self.scale\n"
        "        if self.gate is not None:\n            x = x * self.gate\n"
        "        if self.other is None:\n            return x\n"
        "        return x + self.other if self.bias is not None else x\n"
        "def reset(b):\n    b.other = None\n")
    text = _specialized(src)
    assert "if self.scale is not None" not in text and "x = x * self.scale" in text  # new_param never gives None
    assert "return x + self.other\n" in text + "\n"  # nor does fresh(), through its local
    assert "if self.gate is not None" in text  # maybe() falls off its end: None
    assert "if self.other is None" in text  # another store sets it None
    text = _specialized(src + "def setter(b, k):\n    setattr(b, k, None)\n")
    assert "if self.scale is not None" in text  # a setattr by a name not known here may store anything


def test_round_and_math_ceil_of_constants_are_decided():
    src = ("import math\ndef width(m: ModelConfig):\n"
           "    raw = round(m.mlp_mult * m.model_dim, 2)\n    return math.ceil(raw / 64) * 64\n")
    assert "return 1024" in _specialized(src)  # golf-baseline: 2.0 x 512, a multiple of 64
    shadowed = _specialized(src + "def other(math):\n    return math.ceil(2.5)\n")
    assert "math.ceil(16.0)" in shadowed  # where a name math is bound, it may not be the module


def test_a_value_stored_only_to_be_returned_is_returned():
    text = _specialized("def f(x):\n    y = x * 2\n    return y\n"
                        "def g(x):\n    x = x + 1\n    return x\n"
                        "def h(x):\n    y = x\n    print(y)\n    y = y + 1\n    return y\n")
    assert "return x * 2" in text and "return x + 1" in text
    assert "print(y)" in text and "return y + 1" not in text  # y is read elsewhere: kept as it is


def test_an_unread_attribute_store_of_a_name_goes_only_where_no_framework_base_acts_on_stores():
    from golflab.artifact.prune import drop_unread_attributes

    tree = ast.parse("class Table:\n    def __init__(self, cfg, w):\n        self.sub = cfg.muon\n        self.n = 3\n"
                     "class Head(nn.Module):\n    def __init__(self, w):\n        self.weight = w\n        self.flag = None\n")
    assert drop_unread_attributes(tree)
    text = ast.unparse(tree)
    assert "self.sub" not in text and "self.n" not in text and "self.flag" not in text
    assert "self.weight = w" in text  # nn.Module registers a parameter stored this way
