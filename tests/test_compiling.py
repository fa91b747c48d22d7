"""torch.compile around a run: the warm-up stops once the graphs stop changing, and the lab's compile
cache makes a fresh process take its graphs from the saved artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from golflab.config import to_toml
from golflab.engine.backend import Executor, Slot
from golflab.train.compiling import COMPILE_CACHE_ENV, QUIET_WARMUP_STEPS, warm_up_compile
from tests.test_train import cfg_for


def _counter(compiles_at: set[int]):
    """A fake graph counter: the step numbers in `compiles_at` each build one graph."""
    state = {"step": 0, "graphs": 0}

    def step() -> None:
        state["step"] += 1
        state["graphs"] += state["step"] in compiles_at

    return step, lambda: state["graphs"]


@pytest.mark.parametrize(("compiles_at", "max_steps", "expected"), [
    (set(), 20, QUIET_WARMUP_STEPS),  # eager: nothing to wait for
    ({1}, 20, 1 + QUIET_WARMUP_STEPS),  # forward and backward built at the first step
    ({1, 2}, 20, 2 + QUIET_WARMUP_STEPS),  # a recompile at the second step (a guard that changed)
    ({1, 3}, 20, 3 + QUIET_WARMUP_STEPS),  # one quiet step in between does not end it
    ({1, 2, 3}, 3, 3),  # the configured count stays the upper bound
    (set(), 0, 0),
])
def test_warm_up_runs_until_the_graphs_stop_changing(compiles_at, max_steps, expected):
    step, count = _counter(compiles_at)
    assert warm_up_compile(step, max_steps, count) == expected


def test_lab_runs_get_a_compile_cache_in_the_lab_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(COMPILE_CACHE_ENV, raising=False)
    env = Executor().env(Slot(0), tmp_path)
    assert env[COMPILE_CACHE_ENV] == str(tmp_path / "compile-cache")
    monkeypatch.setenv(COMPILE_CACHE_ENV, "/elsewhere")  # a user's own cache folder wins
    assert Executor().env(Slot(0), tmp_path)[COMPILE_CACHE_ENV] == "/elsewhere"


@pytest.mark.slow
def test_a_fresh_process_takes_its_graphs_from_the_carried_cache(tiny_dataset, tmp_path):
    """Two processes with separate inductor caches (as on two machines) and one carried artifact folder:
    the first compiles and saves, the second loads and takes its graphs from the cache."""
    cfg = cfg_for(tiny_dataset, "3steps", "train.compile=on", "eval.enabled=false", "artifact.enabled=false",
                  "schedule.compile_warmup_steps=5")
    (tmp_path / "c.toml").write_text(to_toml(cfg))
    carried = tmp_path / "carried"
    logs = []
    for k in (1, 2):
        env = {**os.environ, COMPILE_CACHE_ENV: str(carried), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / f"ind{k}"),
               "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "golflab", "train", "--config", str(tmp_path / "c.toml"),
                        "--out", str(tmp_path / f"run{k}")], env=env, check=True, capture_output=True, timeout=900)
        logs.append(Path(tmp_path / f"run{k}" / "train.log").read_text())
    assert len(list(carried.glob("*.bin"))) == 1, "one shape, one artifact file"
    assert "compile cache: saved" in logs[0] and ", 0 graphs from the cache" in logs[0]
    assert "compile cache: 1 artifact file(s) loaded" in logs[1]
    assert ", 0 graphs from the cache" not in logs[1] and "graphs from the cache" in logs[1]


def test_a_cache_torch_refuses_is_skipped_with_a_line_not_a_failed_run(tmp_path, monkeypatch):
    from golflab.train.compiling import load_compile_cache, save_compile_cache

    (tmp_path / "bad.bin").write_bytes(b"not a cache artifact")
    monkeypatch.setenv(COMPILE_CACHE_ENV, str(tmp_path))
    said: list[str] = []
    assert load_compile_cache(said.append) == 0
    assert said and said[0].startswith("compile cache: skipped bad.bin")
    monkeypatch.setenv(COMPILE_CACHE_ENV, str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")  # the folder cannot be made: saving must not raise
    import torch

    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"x", None))
    assert save_compile_cache({"k": 1}, said.append) is None and said[-1].startswith("compile cache: not saved")


def test_a_process_keeps_the_graphs_of_several_configs_and_drops_them_when_the_kernels_change(monkeypatch):
    """A persistent worker keeps its graphs for a run of a key it has seen, also after runs of other keys
    (a lab alternating arms), and drops them for other SDPA flags (not among dynamo's guards, so a reused
    graph would keep the old kernel) and for a key beyond KEYS_PER_RESET."""
    import torch

    from golflab.train import compiling

    monkeypatch.setattr(compiling, "_compiled_for", set())
    monkeypatch.setattr(compiling, "_sdp_of_graphs", None)
    torch._dynamo.reset()
    fn = torch.compile(lambda x: x * 2 + 1, dynamic=False)
    x = torch.ones(3)

    def graphs_built_by_a_call() -> int:
        before = compiling.graphs_compiled()
        fn(x)
        return compiling.graphs_compiled() - before

    def key(layers: int, **sdp: bool) -> dict:
        return {"model": {"num_layers": layers}, "sdp": {**compiling.sdp_flags(), **sdp}}

    assert compiling.fresh_graphs_unless(key(2)) is False  # the process's first key
    assert graphs_built_by_a_call() >= 1
    assert compiling.fresh_graphs_unless(key(2)) is False  # the same key: graphs kept
    assert graphs_built_by_a_call() == 0
    assert compiling.fresh_graphs_unless(key(3)) is False  # another model: dynamo's guards tell them apart
    assert compiling.fresh_graphs_unless(key(2)) is False  # and the first one's graphs are still there
    assert graphs_built_by_a_call() == 0
    assert torch._dynamo.config.recompile_limit >= compiling.RECOMPILE_LIMIT
    flipped = not compiling.sdp_flags()["cudnn"]
    assert compiling.fresh_graphs_unless(key(2, cudnn=flipped)) is True
    assert graphs_built_by_a_call() >= 1  # traced again, under the new flags
    for layers in range(3, 2 + compiling.KEYS_PER_RESET):
        assert compiling.fresh_graphs_unless(key(layers, cudnn=flipped)) is False
    assert compiling.fresh_graphs_unless(key(99, cudnn=flipped)) is True  # one key too many
    torch._dynamo.reset()


@pytest.mark.slow
def test_a_regional_compile_traces_one_block_for_all_and_computes_what_eager_does():
    """train.compile=regional: the blocks share their traced graphs whatever their number (their parameters
    are graph inputs), and a step's loss and gradients are eager's to rounding."""
    import torch
    from torch._dynamo.utils import counters

    from golflab.config.loader import load_config
    from golflab.model.gpt import build_model
    from golflab.train.compiling import compile_model

    def graphs_loss_grads(layers: int, regional: bool) -> tuple[int, torch.Tensor, list[torch.Tensor]]:
        cfg = load_config(preset="tiny", overrides=[f"model.num_layers={layers}", "model.vocab_size=64"])
        model = build_model(cfg.model, 0)
        net = compile_model(model, regional=True) if regional else model
        torch._dynamo.reset()
        counters.clear()
        idx = torch.randint(0, 64, (2, cfg.model.seq_len), generator=torch.Generator().manual_seed(1))
        loss = net(idx, idx.roll(-1, 1))
        loss.backward()
        return counters["stats"]["unique_graphs"], loss.detach(), [p.grad for p in model.parameters()]

    g2, *_ = graphs_loss_grads(2, regional=True)
    g4, loss4, grads4 = graphs_loss_grads(4, regional=True)
    # the head's graph, one block's, and the first block's again (its input is x0 itself: an aliasing guard)
    assert g2 == g4 <= 3, "the graphs do not grow with the depth"
    _, eager_loss, eager_grads = graphs_loss_grads(4, regional=False)
    torch.testing.assert_close(loss4, eager_loss, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads4, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch._dynamo.reset()


AMPERE, HOPPER = (8, 0), (9, 0)


@pytest.mark.parametrize(("attention", "sets", "fp32", "capability", "enabled"), [
    ("flash", [], False, HOPPER, {"flash", "efficient", "math"}),  # the reference's set, on every GPU
    ("auto", [], False, AMPERE, {"flash", "efficient", "math"}),  # nothing masked: the reference's kernels
    ("auto", [], False, HOPPER, {"cudnn"}),  # Hopper: cuDNN, 1.15x faster than flash on golf-baseline
    ("flex", [], False, HOPPER, {"cudnn"}),
    ("auto", [], True, HOPPER, {"flash", "efficient", "math"}),  # fp32: cuDNN does not run it
    ("auto", ["model.head_dim=12"], False, HOPPER, {"flash", "efficient", "math"}),  # cuDNN needs 8 | hd
    # a document mask before Hopper: a masked call flash refuses lands on cuDNN, not on math
    ("auto", ["model.doc_mask=true"], False, AMPERE, {"flash", "cudnn"}),
    ("auto", ["model.attn_window=8", "model.window_layers=[0]"], False, AMPERE, {"flash", "cudnn"}),
    ("auto", ["model.doc_mask=true"], True, AMPERE, {"flash", "cudnn", "math"}),  # fp32: neither runs it
    ("auto", ["model.doc_mask=true", "model.head_dim=12"], False, HOPPER, {"flash", "cudnn", "math"}),
    ("auto", ["model.doc_mask=true"], False, HOPPER, {"cudnn"}),
    ("cudnn", [], False, AMPERE, {"cudnn"}),
])
def test_train_attention_picks_the_sdpa_kernels(attention, sets, fp32, capability, enabled):
    from golflab.config.loader import load_config
    from golflab.train.backends import sdpa_kernels

    cfg = load_config(preset="tiny", overrides=[f"train.attention={attention}", *sets])
    assert {k for k, on in sdpa_kernels(cfg, fp32, capability).items() if on} == enabled


def test_setup_backends_sets_the_flags_of_the_devices_capability_and_leaves_a_cpu_run_alone(monkeypatch):
    import torch

    from golflab.config.loader import load_config
    from golflab.train.backends import setup_backends
    from golflab.train.compiling import sdp_flags, set_sdp_flags

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: HOPPER)
    saved, saved_tag = sdp_flags(), torch.compiler.config.cache_key_tag
    try:
        setup_backends(torch.device("cuda"), load_config(preset="tiny"))  # sets flags only: no GPU needed
        assert {k for k, on in sdp_flags().items() if on} == {"cudnn"}
        before = sdp_flags()
        setup_backends(torch.device("cpu"), load_config(preset="tiny", overrides=["train.attention=flash"]))
        assert sdp_flags() == before
    finally:
        set_sdp_flags(saved)
        torch.compiler.config.cache_key_tag = saved_tag


def test_graphs_cached_under_other_sdpa_kernels_are_not_reused(tmp_path, monkeypatch):
    """The inductor cache must miss when only the SDPA kernel flags changed: its key does not see them, so
    set_sdp_flags names them in torch.compiler.config.cache_key_tag. Without that, the third call hits."""
    import torch
    from torch._dynamo.utils import counters

    from golflab.train.compiling import sdp_flags, set_sdp_flags

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.delenv("TORCH_COMPILE_CACHE_KEY_TAG", raising=False)
    saved, saved_tag = sdp_flags(), torch.compiler.config.cache_key_tag
    x = torch.arange(6.0)

    def cache_hits_of_a_fresh_trace() -> int:
        torch._dynamo.reset()
        before = counters["inductor"]["fxgraph_cache_hit"]
        torch.compile(lambda t: t.sin() * 3 + t, dynamic=False)(x)
        return counters["inductor"]["fxgraph_cache_hit"] - before

    try:
        set_sdp_flags({"flash": True, "cudnn": False, "efficient": True, "math": True})
        assert cache_hits_of_a_fresh_trace() == 0  # an empty cache
        assert cache_hits_of_a_fresh_trace() == 1  # the same flags: the cached graph is the right one
        set_sdp_flags({"flash": False, "cudnn": True, "efficient": False, "math": False})
        assert cache_hits_of_a_fresh_trace() == 0  # other kernels: traced and compiled again
    finally:
        set_sdp_flags(saved)
        torch.compiler.config.cache_key_tag = saved_tag
        torch._dynamo.reset()
