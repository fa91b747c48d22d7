import pytest
import torch

from golflab.config import load_config, preset_names
from golflab.model.gpt import GPT, build_model
from golflab.model.info import meta_model, param_counts
from golflab.model.mlp import mlp_hidden_dim

VOCAB = 96

VARIANTS = {
    "baseline": [],
    "swiglu": ["model.mlp=swiglu", "model.mlp_mult=2.6667"],
    "gelu": ["model.mlp=gelu"],
    "silu": ["model.mlp=silu"],
    "leaky_relu2": ["model.mlp=leaky_relu2"],
    "window+registers": ["model.attn_window=16", "model.window_layers=[0]", "model.num_registers=4"],
    "v_norm": ["model.v_norm=true"],
    "value_embeds": ["model.value_embed_layers=[1]"],
    "untied+mos": ["model.tie_embeddings=false", "model.mos_experts=3"],
    "plain": ["model.unet_skips=false", "model.resid_mix=false", "model.layer_scales=false", "model.qk_norm=false",
              "model.logit_softcap=0"],
    "gqa1": ["model.num_kv_heads=1"],
    "layer_lambdas+no_q_gain": ["model.layer_lambdas=true", "model.resid_mix=false", "model.qk_gain=false",
                                "model.x0_lambda_init=0.1"],
    "init_scale+head_std": ["model.matrix_init_scale=1.7320508", "model.tie_embeddings=false",
                            "model.head_init_std=0.001"],
    "bf16_embeddings": ["model.embed_dtype=bf16", "model.value_embed_layers=[1]"],
}


def tiny(overrides=()):
    return load_config(preset="tiny", overrides=[*overrides, f"model.vocab_size={VOCAB}", "model.seq_len=32", "eval.stride=16"])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_forward_backward_every_component(name):
    cfg = tiny(VARIANTS[name])
    model = build_model(cfg.model, seed=0)
    idx = torch.randint(0, VOCAB, (3, 32))
    loss = model(idx, torch.roll(idx, -1, 1))
    assert torch.isfinite(loss) and abs(loss.item() - torch.log(torch.tensor(float(VOCAB))).item()) < 1.0
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    per_tok = model(idx, torch.roll(idx, -1, 1), reduction="none")
    assert per_tok.shape == (3 * 32,)
    assert torch.allclose(per_tok.mean(), loss, atol=1e-5)
    assert sum(param_counts(model).values()) == 2 * sum(p.numel() for p in meta_model(cfg.model, VOCAB).parameters())


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_counts_the_same_on_meta_as_built(preset):
    """model info counts on the meta device; a real build (init included) must have the same parameters."""
    cfg = load_config(preset=preset)
    vocab = cfg.model.vocab_size or 1024
    meta = {n: p.shape for n, p in meta_model(cfg.model, vocab).named_parameters()}
    real = build_model(cfg.model, seed=0, vocab_size=vocab)
    assert {n: p.shape for n, p in real.named_parameters()} == meta
    assert param_counts(real) == param_counts(meta_model(cfg.model, vocab))


def test_golf_baseline_matches_the_reference_parameter_count():
    # parameter-golf's train_gpt.py logs model_params:17059912 for its baseline
    with torch.device("meta"):
        model = GPT(load_config(preset="golf-baseline").model)
    assert sum(p.numel() for p in model.parameters()) == 17_059_912


def test_swiglu_hidden_rounding():
    cfg = tiny(["model.mlp=swiglu", "model.mlp_mult=2.6667", "model.model_dim=96"])
    assert mlp_hidden_dim(cfg.model) == 256  # 2.6667 * 96 = 256.0 -> multiple of 64
    assert mlp_hidden_dim(load_config(preset="golf-swiglu576").model) == 768  # PR #163: int(576 * 2 * 2 / 3)


def test_init_is_seeded_by_name_not_creation_order():
    a = build_model(tiny().model, seed=3)
    b = build_model(tiny(["model.mlp=swiglu", "model.num_registers=2"]).model, seed=3)
    c = build_model(tiny().model, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    shared = [k for k in sa if k in sb and sa[k].shape == sb[k].shape]
    assert "blocks.0.attn.c_q.weight" in shared and "tok_emb.weight" in shared
    for k in shared:
        assert torch.equal(sa[k], sb[k]), k
    assert not torch.equal(sa["blocks.0.attn.c_q.weight"], sc["blocks.0.attn.c_q.weight"])


def test_sliding_window_limits_context():
    cfg = tiny(["model.num_layers=1", "model.unet_skips=false", "model.attn_window=4", "model.window_layers=[0]"])
    model = build_model(cfg.model, seed=0)
    torch.nn.init.normal_(model.blocks[0].attn.proj.weight, std=0.1)  # undo zero-init so attention matters
    idx = torch.randint(0, VOCAB, (1, 32))
    changed = idx.clone()
    changed[0, 0] = (idx[0, 0] + 1) % VOCAB
    h1, h2 = model.hidden(idx), model.hidden(changed)
    diff = (h1 - h2).abs().amax(dim=-1)[0]
    assert diff[:4].max() > 0  # positions that can see token 0
    assert diff[4:].max() == 0  # beyond the window it is invisible


def test_registers_act_as_sinks_visible_beyond_the_window():
    cfg = tiny(["model.num_layers=1", "model.unet_skips=false", "model.attn_window=4", "model.window_layers=[0]",
                "model.num_registers=2"])
    model = build_model(cfg.model, seed=0)
    torch.nn.init.normal_(model.blocks[0].attn.proj.weight, std=0.1)
    idx = torch.randint(0, VOCAB, (1, 32))
    h1 = model.hidden(idx)
    with torch.no_grad():
        model.registers.add_(1.0)
    h2 = model.hidden(idx)
    assert h1.shape == (1, 32, cfg.model.model_dim)
    assert (h1 - h2).abs().amax(dim=-1)[0, -1] > 0  # the last position still sees the registers


def test_window_at_least_seq_len_equals_full_attention():
    base = build_model(tiny().model, seed=5)
    wide = build_model(tiny(["model.attn_window=64", "model.window_layers=[0,1]"]).model, seed=5)
    idx = torch.randint(0, VOCAB, (2, 32))
    assert torch.allclose(base.hidden(idx), wide.hidden(idx), atol=1e-6)


def test_init_options():
    base = build_model(tiny(["model.tie_embeddings=false"]).model, seed=0).state_dict()
    opt = build_model(tiny(["model.tie_embeddings=false", "model.matrix_init_scale=2.0",
                            "model.head_init_std=0.01"]).model, seed=0).state_dict()
    assert torch.allclose(opt["blocks.0.attn.c_q.weight"], 2.0 * base["blocks.0.attn.c_q.weight"])
    assert not base["head.weight"].any() and opt["head.weight"].std() == pytest.approx(0.01, rel=0.1)
    lam = build_model(tiny(["model.layer_lambdas=true", "model.x0_lambda_init=0.3"]).model, seed=0)
    assert torch.equal(lam.resid_lambdas, torch.ones(2)) and torch.allclose(lam.x0_lambdas, torch.full((2,), 0.3))
    assert "blocks.0.attn.q_gain" not in dict(build_model(tiny(["model.qk_gain=false"]).model, 0).named_parameters())
