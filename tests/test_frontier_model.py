"""The parameter-golf frontier's model techniques (docs/frontier.md): each trains on CPU in a tiny
setting, and each does what it claims."""

import math

import pytest
import torch

from golflab.config import load_config
from golflab.errors import ConfigError
from golflab.model.attention import Attention, xsa
from golflab.model.depth import layer_order, num_steps
from golflab.model.gates import AttnOutputGate
from golflab.model.gpt import GPT, build_model
from golflab.model.layers import apply_rotary
from golflab.model.params import init_parameters

VOCAB, T = 96, 32

TECHNIQUES = {
    "partial_rope": ["model.rope_dims=4"],
    "ln_scale": ["model.ln_scale=true"],
    "depth_recurrence": ["model.num_loops=2", "model.loop_start=1", "model.loop_end=2"],
    "parallel_residuals": ["model.parallel_start=3"],
    "skip_gates": ["model.skip_gates=true"],
    "xsa": ["model.xsa_layers=[0,1,2,3]"],
    "sparse_attn_gate": ["model.attn_gate=sparse", "model.gate_window=12", "model.attn_gate_scale=0.5"],
    "dense_attn_gate": ["model.attn_gate=dense", "model.attn_gate_init_std=0.01"],
    "smear_gate": ["model.smear_gate=true"],
    "doc_mask": ["model.doc_mask=true"],
    "orthogonal_init": ["model.matrix_init=orthogonal"],
}
ALL = [o for opts in TECHNIQUES.values() for o in opts if "dense" not in o and "init_std" not in o]


def tiny(overrides=()):
    return load_config(preset="tiny", overrides=[f"model.vocab_size={VOCAB}", f"model.seq_len={T}", "model.num_layers=4",
                                                 "eval.stride=16", *overrides])


def batch(seed=0, bos_every=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(2, VOCAB, (4, T), generator=g)
    if bos_every:
        idx[:, ::bos_every] = 1
    return idx, torch.roll(idx, -1, 1)


@pytest.mark.parametrize("name", [*TECHNIQUES, "all"])
def test_each_technique_trains_on_cpu(name):
    cfg = tiny(ALL if name == "all" else TECHNIQUES[name])
    torch.manual_seed(0)
    model = build_model(cfg.model, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    idx, tgt = batch(bos_every=8)
    losses = []
    for _ in range(8):
        loss = model(idx, tgt)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.1, losses


def test_defaults_leave_every_technique_off():
    plain = GPT(tiny().model, VOCAB)
    on = GPT(tiny(ALL).model, VOCAB)
    names = {n for n, _ in plain.named_parameters()}
    assert names < {n for n, _ in on.named_parameters()}
    assert plain.order == [0, 1, 2, 3] and plain.smear is None and plain.parallel_post is None


def _block_calls(model, idx):
    calls = [0] * len(model.blocks)

    def hook(i):
        def count(*_):
            calls[i] += 1
        return count

    handles = [b.attn.register_forward_hook(hook(i)) for i, b in enumerate(model.blocks)]
    model(idx, idx)
    for h in handles:
        h.remove()
    return calls


def test_depth_recurrence_reuses_the_same_weights():
    base, looped = tiny(), tiny(TECHNIQUES["depth_recurrence"])
    assert layer_order(looped.model) == [0, 1, 2, 1, 2, 1, 2, 3]
    m0, m1 = build_model(base.model, 0), build_model(looped.model, 0)
    # same parameters, except one more U-Net skip (8 steps split 4 / 4 instead of 4 layers 2 / 2)
    extra = sum(p.numel() for p in m1.parameters()) - sum(p.numel() for p in m0.parameters())
    assert extra == 2 * base.model.model_dim
    assert {n: p.shape for n, p in m0.named_parameters() if "skip" not in n} == \
           {n: p.shape for n, p in m1.named_parameters() if "skip" not in n}
    assert _block_calls(m1, batch()[0]) == [1, 3, 3, 1]


def test_record_1_layer_order():
    cfg = tiny(["model.num_layers=11", "model.num_loops=2", "model.loop_start=3", "model.loop_end=5"])
    assert layer_order(cfg.model) == [0, 1, 2, 3, 4, 5, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 10]
    for c in (cfg, tiny(), tiny(TECHNIQUES["depth_recurrence"])):
        assert num_steps(c.model) == len(layer_order(c.model))


def test_bad_loop_span_is_a_config_error():
    with pytest.raises(ConfigError, match="loop_start"):
        GPT(tiny(["model.num_loops=1", "model.loop_start=2", "model.loop_end=9"]).model, VOCAB)
    with pytest.raises(ConfigError, match="encoder"):
        GPT(tiny(["model.parallel_start=1"]).model, VOCAB)
    with pytest.raises(ConfigError, match="gate_window"):
        GPT(tiny(["model.attn_gate=sparse", "model.gate_window=65"]).model, VOCAB)
    with pytest.raises(ConfigError, match="bos_id"):
        GPT(tiny(["model.doc_mask=true", f"model.bos_id={VOCAB}"]).model, VOCAB)


def test_partial_rope_leaves_the_unrotated_dims_unchanged(monkeypatch):
    cfg = tiny(["model.rope_dims=4"]).model
    attn = Attention(cfg, 0)
    init_parameters(attn, 0)
    seen = {}
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):  # the rotated queries, as attention gets them
        seen["q"] = q
        return sdpa(q, k, v, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    attn(torch.randn(1, 1, cfg.model_dim).expand(2, T, -1))  # the same token at every position
    q = seen["q"]  # (B, H, T, hd), rotated; at position 0 the rotation is the identity
    assert torch.equal(q[..., 4:], q[:, :, :1, 4:].expand_as(q[..., 4:]))  # the same at every position
    cos, sin = attn.rotary(T, q.dtype)
    assert torch.allclose(q[..., :4], apply_rotary(q[:, :, :1, :4].expand_as(q[..., :4]), cos, sin), atol=1e-6)
    assert not torch.allclose(q[:, :, 1:, :4], q[:, :, :1, :4].expand_as(q[:, :, 1:, :4]))
    with pytest.raises(ConfigError, match="rope_dims"):
        Attention(tiny(["model.rope_dims=3"]).model, 0)


def _perturb(model, seed=1):
    """Random values in every parameter (the zero-init ones too), so that each path carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() == 1 else 0.0))
    return model


def test_document_mask_cuts_every_path_from_earlier_documents():
    """A token's output does not depend on the tokens of earlier documents (with SmearGate, which is
    masked at BOS, and parallel lanes on); without the mask it does."""
    idx = batch()[0]
    idx[:, 12] = 1  # document 2 starts at position 12
    other = idx.clone()
    other[:, :12] = torch.randint(2, VOCAB, (4, 12), generator=torch.Generator().manual_seed(5))
    for doc_mask in (True, False):
        cfg = tiny([f"model.doc_mask={str(doc_mask).lower()}", "model.smear_gate=true", "model.parallel_start=3"])
        model = _perturb(build_model(cfg.model, 0)).eval()
        with torch.no_grad():
            a, b = model.hidden(idx), model.hidden(other)
        same_after = torch.allclose(a[:, 12:], b[:, 12:], atol=1e-5)
        assert same_after == doc_mask
        assert not torch.allclose(a[:, :12], b[:, :12])


def test_document_mask_with_registers_keeps_the_sinks_visible():
    cfg = tiny(["model.doc_mask=true", "model.num_registers=2"])
    model = _perturb(build_model(cfg.model, 0)).eval()
    idx = batch()[0]
    idx[:, 10] = 1
    other = idx.clone()
    other[:, :10] = 3
    with torch.no_grad():
        assert torch.allclose(model.hidden(idx)[:, 10:], model.hidden(other)[:, 10:], atol=1e-5)


def test_smear_gate_is_the_identity_at_init_and_never_crosses_bos():
    cfg = tiny(["model.smear_gate=true"]).model
    model = build_model(cfg, 0)
    x = torch.randn(2, T, cfg.model_dim)
    idx = batch()[0][:2]
    idx[:, 5] = 1
    assert torch.equal(model.smear(x, idx), x)
    _perturb(model.smear)
    y = model.smear(x, idx)
    assert torch.equal(y[:, 5], x[:, 5]) and torch.equal(y[:, 0], x[:, 0])
    assert not torch.allclose(y[:, 6], x[:, 6])


def test_xsa_removes_each_heads_component_along_its_own_value():
    y, v = torch.randn(2, 8, T, 16), torch.randn(2, 4, T, 16)
    out = xsa(y, v)
    vn = torch.nn.functional.normalize(v, dim=-1).repeat_interleave(2, dim=1)
    assert torch.allclose((out * vn).sum(-1), torch.zeros(2, 8, T), atol=1e-5)
    assert torch.allclose(out - y, -(y * vn).sum(-1, keepdim=True) * vn, atol=1e-5)


def test_sparse_attention_gate_reads_only_its_window_and_starts_at_one_half():
    cfg = tiny(["model.attn_gate=sparse", "model.gate_window=12"]).model
    gate = AttnOutputGate(cfg, cfg.num_heads)
    assert gate.weight.shape == (cfg.num_heads, 12)
    gate.weight.data.zero_()
    x, y = torch.randn(2, T, cfg.model_dim), torch.randn(2, cfg.num_heads, T, 16)
    assert torch.allclose(gate(x, y), 0.5 * y)
    _perturb(gate)
    x2 = x.clone()
    x2[..., 12:] = 0.0
    assert torch.equal(gate(x, y), gate(x2, y))
    assert AttnOutputGate(tiny(["model.attn_gate=dense"]).model, 4).weight.shape == (4, cfg.model_dim)


def _block_inputs(model, idx, layer):
    seen = {}
    block = model.blocks[layer]
    h1 = block.attn.register_forward_pre_hook(lambda m, args: seen.setdefault("attn", args[0]))
    h2 = block.mlp.register_forward_pre_hook(lambda m, args: seen.setdefault("mlp", args[0]))
    model(idx, idx)
    h1.remove()
    h2.remove()
    return seen


def test_parallel_residuals_feed_the_mlp_from_its_own_lane():
    """In a parallel layer the MLP reads the stream from before the layer (its lane), not the stream
    plus that layer's attention output; a sequential layer's MLP does."""
    plain = ["model.unet_skips=false", "model.resid_mix=false"]
    idx = batch()[0]
    par = _perturb(build_model(tiny([*plain, "model.parallel_start=2"]).model, 0))
    seen = _block_inputs(par, idx, 2)
    assert torch.allclose(seen["attn"], seen["mlp"], atol=1e-6)
    seq = _perturb(build_model(tiny(plain).model, 0))
    seen = _block_inputs(seq, idx, 2)
    assert not torch.allclose(seen["attn"], seen["mlp"], atol=1e-3)
    n = sum(p.numel() for p in par.parameters()) - sum(p.numel() for p in seq.parameters())
    assert n == (4 - 2) * 6  # a 2x2 post and a 2-vector resid per parallel layer


def test_ln_scale_scales_each_layers_normed_input():
    model = _perturb(build_model(tiny(["model.ln_scale=true"]).model, 0))
    idx = batch()[0]
    for layer in range(4):
        x = _block_inputs(model, idx, layer)["attn"]
        rms = x.pow(2).mean(-1).sqrt()
        assert torch.allclose(rms, torch.full_like(rms, 1 / math.sqrt(layer + 1)), atol=1e-3)


def test_skip_gates_start_as_an_even_mix():
    model = build_model(tiny(["model.skip_gates=true"]).model, 0)
    assert model.skip_gates is not None and torch.equal(model.skip_gates, torch.zeros_like(model.skip_gates))
    with pytest.raises(ConfigError, match="skip_gates"):
        GPT(tiny(["model.skip_gates=true", "model.unet_skips=false"]).model, VOCAB)


def test_flops_are_counted_on_the_built_model():
    from golflab.model.info import flops_per_token, meta_model

    cfg = tiny()
    m = cfg.model
    model = meta_model(m, VOCAB)
    # 6 x every matrix the forward multiplies by (the tied embedding as the head) + causal attention scores
    matmul = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and n.endswith("weight"))
    q_width = m.num_heads * (m.model_dim // m.num_heads)
    assert flops_per_token(m, VOCAB) == pytest.approx(6 * matmul + m.num_layers * 12 * q_width * T / 2)
    # depth recurrence: each extra pass of a layer costs one layer's FLOPs; the parameters stay
    per_layer = flops_per_token(m, VOCAB) - flops_per_token(tiny(["model.num_layers=3"]).model, VOCAB)
    looped = tiny(TECHNIQUES["depth_recurrence"]).model
    assert flops_per_token(looped, VOCAB) == pytest.approx(flops_per_token(m, VOCAB) + 4 * per_layer)
    # a windowed layer attends to its window only
    windowed = tiny(["model.attn_window=8", "model.window_layers=[0]"]).model
    saved = flops_per_token(m, VOCAB) - flops_per_token(windowed, VOCAB)
    assert saved == pytest.approx(12 * q_width * (T - 8) / 2)


def test_pgolf_frontier_plan_ablates_each_technique_both_ways():
    from pathlib import Path

    from golflab.lab.plan import load_plan

    plan = load_plan(Path(__file__).parents[1] / "plans" / "pgolf-frontier.toml")
    got = plan.build_config(list(plan.arm("frontier").overrides), seed=1)
    want = load_config(preset="golf-frontier", overrides=[*plan.baseline, "seed=1"], budget=plan.budget)
    for section in ("model", "optim", "schedule", "train", "artifact"):
        assert getattr(got, section) == getattr(want, section), section
    added = {a.name.removeprefix("add-") for a in plan.arms if a.name.startswith("add-")}
    removed = {a.name.removeprefix("remove-") for a in plan.arms if a.name.startswith("remove-")}
    assert added == removed and len(added) >= len(TECHNIQUES) - 1  # one arm for the sparse gate, not dense
    assert all(a.run_if == ("wins", "frontier") for a in plan.arms if a.name.startswith("remove-"))
    # every removal really turns its technique off in the frontier config it is applied to
    for a in plan.arms:
        if a.name.startswith("remove-"):
            off = plan.build_config([*plan.arm("frontier").overrides, *a.overrides], seed=1)
            assert off.model != got.model, a.name


def test_every_technique_traces_into_one_graph():
    """torch.compile friendly: dynamo traces the forward with all techniques on without a graph break
    (fullgraph=True), so no data-dependent Python control flow hides in it."""
    torch._dynamo.reset()
    model = build_model(tiny([*ALL, "model.num_registers=2"]).model, 0)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    idx, tgt = batch(bos_every=8)
    assert torch.allclose(compiled(idx, tgt), model(idx, tgt))


def test_orthogonal_init_gives_orthonormal_rows_seeded_by_name():
    cfg = tiny(["model.matrix_init=orthogonal"]).model
    a, b = build_model(cfg, 0), build_model(cfg, 0)
    w = a.blocks[0].mlp.fc.weight  # 256 x 64: orthonormal columns
    assert torch.allclose(w.T @ w, torch.eye(w.size(1)), atol=1e-4)
    q = a.blocks[1].attn.c_q.weight  # square
    assert torch.allclose(q @ q.T, torch.eye(q.size(0)), atol=1e-4)
    assert torch.equal(w, b.blocks[0].mlp.fc.weight)
    assert not torch.equal(w, build_model(cfg, 1).blocks[0].mlp.fc.weight)
    assert torch.equal(a.blocks[0].mlp.proj.weight, torch.zeros_like(a.blocks[0].mlp.proj.weight))


@pytest.mark.slow
def test_an_exported_script_with_every_technique_reproduces_golflab(tiny_dataset, tmp_path):
    """golflab export inlines and specializes the model code; with every technique on, the stand-alone
    script must train to the same losses as golflab itself."""
    from tests.export_support import run_exported_script, train_on_one_thread

    overrides = [*ALL, "model.num_layers=4", "model.matrix_init=orthogonal", "artifact.quant=int6",
                 "artifact.compress=lzma", "eval.val_every=0", "eval.val_tokens=4096", "eval.stride=64"]
    cfg = load_config(preset="tiny", budget="3steps", extra={"data": {"path": str(tiny_dataset)}}, overrides=overrides)
    exported = run_exported_script(cfg, tiny_dataset, tmp_path)
    own = train_on_one_thread(cfg, tmp_path / "own")
    for key in ("val_loss", "sliding_val_loss"):
        assert exported[key] == pytest.approx(own[key], rel=1e-5)
