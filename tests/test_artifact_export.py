"""The export boundary: the declared core modules, their imports and top-level names, and pruning."""

from __future__ import annotations

import ast
import sys

import pytest

from golflab.artifact import export
from golflab.artifact.prune import prune_registries, prune_unreachable
from golflab.config import load_config
from golflab.config.loader import from_toml_file
from tests.export_support import run_exported_script, train_on_one_thread

# What a core module may import besides earlier core modules (docs/ARCHITECTURE.md, "portable core").
ALLOWED_THIRD_PARTY = {"numpy", "torch", "sentencepiece", "tiktoken", "brotli", "zstandard", "tomli"}  # tomli: Python < 3.11


def _imports(name: str) -> list[str]:
    tree = ast.parse(export._module_path(name).read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def test_core_modules_import_only_earlier_core_modules_stdlib_and_allowed_packages():
    export.check_boundary()
    for i, name in enumerate(export.CORE_MODULES):
        for mod in _imports(name):
            top = mod.split(".")[0]
            if top == "golflab":
                assert mod in export.CORE_MODULES[:i] or mod in export.NOT_INLINED or mod in export.OMITTED, (name, mod)
            else:
                assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (name, mod)


def test_core_top_level_names_are_unique():
    owner: dict[str, str] = {}
    for name, block in zip(export.CORE_MODULES, export._inlined_core(), strict=True):
        for top in export._top_level_names(ast.parse(block).body):
            assert top not in owner, f"{top} defined in {owner.get(top)} and {name}"
            owner[top] = name


def test_pruning_keeps_what_is_reached_and_the_selected_registry_entry():
    tree = ast.parse(
        "import os\nimport json\n"
        "class A:\n    def used(self): return helper()\n    def unused(self): return other()\n"
        "    def forward(self): return 1\n"
        "def helper(): return KINDS['b']()\n"
        "def other(): return 2\n"
        "def kind_a(): return 'a'\n"
        "def kind_b(): return os.sep\n"
        "KINDS = {'a': kind_a, 'b': kind_b}\n"
        "if __name__ == '__main__':\n    A().used()\n")
    prune_registries(tree, {"KINDS": "b"})
    prune_unreachable(tree)
    text = ast.unparse(tree)
    assert "kind_a" not in text and "def other" not in text and "def unused" not in text and "json" not in text
    assert "def used" in text and "def forward" in text and "kind_b" in text and "import os" in text


@pytest.mark.parametrize("preset", ["golf-baseline", "golf-swiglu576"])
def test_exported_script_holds_only_what_the_config_uses(preset):
    script = export.render_script(load_config(preset=preset))
    ast.parse(script)
    for absent in ("train_sentencepiece", "def load_config", "def parse_budget", "def override_to_dict",
                   "def diff_from_default"):
        assert absent not in script
    unused_mlp = "class SwiGLU" if preset == "golf-baseline" else "class ActMLP"
    assert unused_mlp not in script


@pytest.mark.parametrize("preset", ["tiny", "golf-baseline", "golf-swiglu576", "golf-frontier", "autoresearch"])
def test_every_presets_script_compiles_without_warnings(preset):
    """Folding must not leave code the compiler flags (e.g. `None[p]` inside a branch it kept)."""
    import warnings

    cfg = load_config(preset=preset)
    script = export.render_script(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(script, "train_gpt.py", "exec")
    # the frontier's off-by-default lanes leave nothing behind in the presets that do not use them
    if cfg.model.parallel_start == 0:
        assert "parallel_resid[" not in script


def test_a_script_rendered_once_per_config_is_stamped_with_each_runs_seed_budget_and_paths():
    """render_script reuses one render for every seed and budget of a config; the result must equal a
    render of that run's own config, byte for byte."""
    first = load_config(preset="tiny", overrides=["seed=3", "budget.seconds=30"])
    export.render_script(first)  # fills the cache
    other = load_config(preset="tiny", overrides=["seed=11", "budget.steps=40", "budget.seconds=0",
                                                  "data.path=/somewhere/data"])
    assert export.render_script(other) == export._render(other)
    assert "\nseed = 11\n" in export.render_script(other)


def test_a_rendered_script_is_read_back_from_the_cache_until_a_source_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv(export.SCRIPT_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(export, "_RENDERED", {})
    cfg = load_config(preset="tiny", overrides=["seed=4"])
    script = export.render_script(cfg)
    base = export._RENDERED[next(iter(export._RENDERED))]
    assert [p.read_text() for p in tmp_path.iterdir()] == [base]
    renders = []
    monkeypatch.setattr(export, "_render", lambda c: renders.append(c) or base)
    export._RENDERED.clear()  # a new process: the folder answers, no render
    assert export.render_script(cfg) == script and renders == []
    export._RENDERED.clear()
    monkeypatch.setattr(export, "source_digest", lambda: "an edited checkout")
    export.render_script(cfg)
    assert len(renders) == 1 and len(list(tmp_path.iterdir())) == 2
    monkeypatch.setenv(export.SCRIPT_CACHE_ENV, "")  # off: every new process renders
    export._RENDERED.clear()
    export.render_script(cfg)
    assert len(renders) == 2


def test_a_prefetched_script_is_rendered_by_a_child_process_and_read_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setenv(export.SCRIPT_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(export, "_RENDERED", {})
    cfg = load_config(preset="tiny", overrides=["seed=9"])
    export.prefetch_script(cfg)
    monkeypatch.setattr(export, "_render", lambda c: pytest.fail("the parent rendered"))
    script = export.render_script(cfg)  # waits for the child, then reads its file
    assert "\nseed = 9\n" in script and sorted(p.suffix for p in tmp_path.iterdir()) == [".py"]
    export.prefetch_script(cfg)  # in memory now: no second child
    assert export._PREFETCH == {}


def test_the_source_digest_sees_an_edit_of_any_golflab_file(tmp_path, monkeypatch):
    fake = tmp_path / "golflab" / "artifact"
    fake.mkdir(parents=True)
    (fake.parent / "model.py").write_text("x = 1\n")
    monkeypatch.setattr(export, "__file__", str(fake / "export.py"))
    before = export.source_digest()
    (fake.parent / "model.py").write_text("x = 2\n")
    assert export.source_digest() != before


@pytest.mark.parametrize("preset", ["golf-baseline", "golf-frontier"])
def test_the_scripts_config_toml_reads_back_in_golflab_as_the_runs_config(preset):
    """The script embeds only part of the config (what its code reads, the runtime keys, the keys off
    golflab's defaults); the config.toml it writes must still read back in golflab as the whole config."""
    from golflab.config.loader import build_config, tomllib  # tomli before Python 3.11

    cfg = load_config(preset=preset, overrides=["seed=5", "data.path=/some/data", "budget.seconds=30",
                                                "model.mlp_mult=3.0", "artifact.lqer_rank=2"])
    tree = ast.parse(export.render_script(cfg))
    wanted = {"config_from_dict", "to_dict", "_toml_value", "dumps_toml", "to_toml", "CONFIG"}
    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                 or getattr(n, "name", None) in wanted
                 or (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) in wanted)]
    ns: dict = {}
    exec(compile(tree, "train_gpt.py", "exec"), ns)
    embedded = tomllib.loads(ns["CONFIG"])
    assert "ttt" not in embedded.get("eval", {}) and embedded["artifact"]["lqer_rank"] == 2
    assert len(embedded["artifact"]) < len(vars(cfg.artifact))  # not all of it
    script_cfg = ns["config_from_dict"](embedded)
    script_cfg.data.path = "/some/data"  # as main() sets it from DATA_PATH
    assert build_config([tomllib.loads(ns["to_toml"](script_cfg))]) == cfg


def test_the_embedded_config_holds_what_the_code_reads_through_types_aliases_and_registries():
    from golflab.artifact.embedded_config import ANY, config_reads, declared_roles, embedded_config
    from golflab.model.params import ROLES

    src = """
KINDS = {'a': lambda cfg: Thing(), 'b': lambda cfg: Thing(cfg.width)}
def build(cfg: ModelConfig):
    return KINDS['a'](cfg)
def table(cfg: OptimConfig, role):
    return getattr(cfg, 'matrix'), getattr(cfg, role)
def run(cfg: RunConfig, trainer):
    m = cfg.model
    build(m)
    table(cfg.optim, 'scalar')
    cfg.data.path = 'x'
    return trainer.cfg.eval.stride + cfg.budget.seconds, print(cfg.schedule)
"""
    cfg = load_config(preset="tiny")
    reads = config_reads(ast.parse(src), cfg)
    assert reads == {("optim", "matrix"), ("optim", ANY), ("schedule",), ("eval", "stride"), ("budget", "seconds")}
    embedded = embedded_config(ast.parse(src), cfg)  # any role: those the model declares
    assert set(embedded["optim"]) & set(ROLES) == declared_roles(cfg) and "schedule" in embedded
    assert {"matrix", "tied_embed", "scalar"} <= declared_roles(cfg) and "value_embed" not in declared_roles(cfg)
    tree = ast.parse(src.replace("KINDS['a']", "KINDS['b']"))  # a kind that reads it: all of the model's keys
    assert ("model",) in config_reads(tree, load_config(preset="tiny"))


# Options the golf presets leave off, all on at once: the specialized script must keep every path they take.
MANY_OPTIONS = ["model.mlp=swiglu", "model.num_registers=2", "model.value_embed_layers=[0,1]", "model.v_norm=true",
                "model.attn_window=32", "model.window_layers=[0]", "model.mos_experts=2", "model.tie_embeddings=false",
                "optim.matrix.optimizer=normuon", "optim.muon.ns_coeffs=polar_express", "optim.grad_clip=1.0",
                "schedule.ema_decay=0.9", "schedule.warmup_steps=2", "data.order=shuffled", "data.align_bos=true",
                "artifact.quant=int6", "artifact.compress=lzma", "eval.stride=64", "train.log_every=1",
                "eval.val_every=0", "eval.val_tokens=4096"]


@pytest.mark.slow
def test_a_script_specialized_to_many_options_reproduces_golflab(tiny_dataset, tmp_path):
    cfg = load_config(preset="tiny", budget="4steps", extra={"data": {"path": str(tiny_dataset)}}, overrides=MANY_OPTIONS)
    exported = run_exported_script(cfg, tiny_dataset, tmp_path)
    own = train_on_one_thread(cfg, tmp_path / "own")
    for key in ("val_loss", "sliding_val_loss"):
        assert exported[key] == pytest.approx(own[key], rel=1e-5)
    assert exported["artifact"]["val_loss"] == pytest.approx(own["artifact"]["val_loss"], rel=1e-5)
    assert exported["config_hash"] is None  # golflab hashes the whole config, which the script does not hold
    assert from_toml_file(tmp_path / "exported" / "config.toml") == from_toml_file(tmp_path / "own" / "config.toml")


def test_specialize_folds_config_reads_by_type_hint_and_drops_dead_branches():
    from golflab.artifact.specialize import specialize

    cfg = load_config(preset="golf-baseline")
    tree = ast.parse(
        "class M:\n"
        "    def __init__(self, cfg: ModelConfig, other):\n"
        "        self.cfg = cfg\n"
        "        self.regs = 'R' if cfg.num_registers else None\n"
        "        self.n = other.num_registers\n"  # not a config: left alone
        "    def forward(self, x):\n"
        "        if self.regs is not None:\n            x = x + 1\n"
        "        if self.cfg.mlp == 'relu2' and x:\n            return x\n        return -x\n"
        "        print('unreachable')\n"
        "def run(c: RunConfig):\n"
        "    return c.seed, c.budget.seconds, c.model.model_dim\n"  # seed and budget come from the environment
        "def pack(data, codec):\n    if codec == 'zlib':\n        return 1\n    return 2\n"
        "def use(a: ArtifactConfig):\n    return pack(b'', a.compress)\n")
    specialize(tree, cfg)
    text = ast.unparse(tree)
    assert "self.regs = None" in text and "if self.regs" not in text and "x = x + 1" not in text
    assert "other.num_registers" in text and "unreachable" not in text and "if x:" in text
    assert "return (c.seed, c.budget.seconds, 512)" in text
    assert "return 2" not in text  # pack's codec is 'zlib' at its only call site
