import pytest
import torch

from golflab.config import load_config, preset_names
from golflab.errors import ConfigError
from golflab.model.gpt import GPT, build_model
from golflab.optim import TableOptimizer, build_table
from golflab.optim.muon import Muon
from golflab.optim.newton_schulz import coefficients, orthogonalize


@pytest.mark.parametrize(("kind", "band"), [("quintic", (0.6, 1.25)), ("polar_express", (0.8, 1.2))])
@pytest.mark.parametrize("shape", [(256, 64), (128, 32), (32, 96)])  # well-conditioned random matrices
def test_orthogonalisation_gives_near_orthogonal_updates(kind, band, shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    u = orthogonalize(g, coefficients(kind, 5), safety=0.02 if kind == "polar_express" else 0.0).float()
    s = torch.linalg.svdvals(u)
    assert s.min() > band[0] and s.max() < band[1], (s.min(), s.max())
    # same singular vectors as g: u is close to U V^T of g
    U, _, Vh = torch.linalg.svd(g, full_matrices=False)
    cos = torch.nn.functional.cosine_similarity(u.flatten(), (U @ Vh).flatten(), dim=0)
    assert cos > 0.95


def test_batched_orthogonalisation_matches_single():
    g = torch.randn(3, 48, 32)
    batched = orthogonalize(g, coefficients("quintic", 5))
    for i in range(3):
        assert torch.allclose(batched[i].float(), orthogonalize(g[i], coefficients("quintic", 5)).float(), atol=2e-2)


@pytest.mark.parametrize("preset", preset_names())
def test_every_parameter_is_in_the_table_exactly_once(preset):
    cfg = load_config(preset=preset)
    with torch.device("meta"):
        model = GPT(cfg.model, cfg.model.vocab_size or 1024)
    rows = build_table(model, cfg.optim)
    ids = [id(r.param) for r in rows]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {r.name for r in rows} == {n for n, _ in model.named_parameters()}
    for r in rows:
        assert r.optimizer == getattr(cfg.optim, r.role).optimizer
        assert r.lr == getattr(cfg.optim, r.role).lr


def test_roles_follow_tying():
    tied = build_table(build_model(load_config(preset="tiny", overrides=["model.vocab_size=64"]).model, 0),
                       load_config(preset="tiny").optim)
    untied_cfg = load_config(preset="tiny", overrides=["model.vocab_size=64", "model.tie_embeddings=false"])
    untied = build_table(build_model(untied_cfg.model, 0), untied_cfg.optim)
    assert {r.name: r.role for r in tied}["tok_emb.weight"] == "tied_embed"
    roles = {r.name: r.role for r in untied}
    assert roles["tok_emb.weight"] == "embed" and roles["head.weight"] == "head"


def test_muon_on_vectors_is_a_config_error():
    cfg = load_config(preset="tiny", overrides=["model.vocab_size=64", "optim.scalar.optimizer=muon"])
    with pytest.raises(ConfigError, match=r"optim\.scalar\.optimizer=muon needs 2-D parameters"):
        build_table(build_model(cfg.model, 0), cfg.optim)


def test_muon_step_matches_the_update_rule():
    cfg = load_config(preset="tiny", overrides=["model.vocab_size=64", "optim.matrix.weight_decay=0.1"])
    model = build_model(cfg.model, 0)
    opt = TableOptimizer(model, cfg.optim, torch.device("cpu"))
    w = model.blocks[0].mlp.fc.weight
    before = w.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    g = torch.randn_like(w)
    w.grad = g.clone()
    opt.set_schedule(1.0, step=0)
    opt.step()
    m, lr, wd = cfg.optim.muon.momentum_warmup_start, cfg.optim.matrix.lr, 0.1
    expected_dir = orthogonalize(g + m * g, coefficients("quintic", 5)).float()  # Nesterov: g + m * buf, buf = g
    rows, cols = w.shape
    expected = before * (1 - lr * wd) - lr * max(1, rows / cols) ** 0.5 * expected_dir
    assert torch.allclose(w.detach(), expected, atol=1e-5)


@pytest.mark.parametrize("overrides", [[], ["optim.matrix.optimizer=normuon", "optim.muon.ns_coeffs=polar_express"],
                                       ["optim.matrix.optimizer=adam", "optim.matrix.lr=0.01"]])
def test_optimizers_fit_a_fixed_batch(overrides):
    cfg = load_config(preset="tiny", overrides=["model.vocab_size=64", "model.seq_len=32", "eval.stride=16", *overrides])
    model = build_model(cfg.model, 0)
    opt = TableOptimizer(model, cfg.optim, torch.device("cpu"))
    data = torch.randint(0, 64, (8, 33), generator=torch.Generator().manual_seed(0))
    losses = []
    for step in range(25):
        loss = model(data[:, :-1], data[:, 1:])
        loss.backward()
        opt.set_schedule(1.0, step)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- autoresearch's Muon (karpathy/autoresearch train.py @ 228791f, muon_step_fused, lines 316-353) ----
_PE = [  # train.py lines 297-303, polar_express_coeffs
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
]


def _reference_autoresearch_muon(p, grads, momenta, lr, wds, beta2=0.95):
    """The source's update written out for one matrix: EMA Nesterov momentum (lerp), Polar Express with
    norm * 1.02 + 1e-6, NorMuon, then p -= lr' g + lr' wd p [g p >= 0] with lr' = lr max(1, rows/cols)^0.5."""
    p = p.clone()
    rows, cols = p.shape
    red = -1 if rows >= cols else -2
    buf = torch.zeros_like(p)
    v = torch.zeros((rows, 1) if rows >= cols else (1, cols))
    for g, m, wd in zip(grads, momenta, wds, strict=True):
        buf.lerp_(g, 1 - m)
        g = g.lerp(buf, m)
        x = g.bfloat16()
        x = x / (x.norm() * 1.02 + 1e-6)
        for a, b, c in _PE:
            if rows > cols:
                A = x.mT @ x
                x = a * x + x @ (b * A + c * (A @ A))
            else:
                A = x @ x.mT
                x = a * x + (b * A + c * (A @ A)) @ x
        v_mean = x.float().square().mean(dim=red, keepdim=True)
        n = x.size(red)
        v_norm = (v_mean.sum() * n).sqrt()
        v.lerp_(v_mean, 1 - beta2)
        step = v.clamp_min(1e-10).rsqrt()
        u = x.float() * (step * (v_norm / ((v_mean * n) * step.square()).sum().sqrt().clamp_min(1e-10)))
        lr_s = lr * max(1.0, rows / cols) ** 0.5
        mask = (u * p) >= 0
        p = p - (lr_s * u + lr_s * wd * p * mask)
    return p


@pytest.mark.parametrize("shape", [(64, 16), (16, 64)])
def test_autoresearch_muon_matches_the_source_update(shape):
    cfg = load_config(preset="autoresearch").optim
    w = torch.nn.Parameter(torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    start = w.detach().clone()
    grads = [torch.randn(*shape, generator=torch.Generator().manual_seed(10 + i)) for i in range(3)]
    m = cfg.muon
    opt = Muon([dict(params=[w], lr=cfg.matrix.lr, weight_decay=0.0, normuon=True)], m.momentum, m.nesterov,
               m.ns_steps, m.ns_coeffs, m.beta2, ema_momentum=m.ema_momentum, cautious_wd=m.cautious_wd,
               wd_shape_scale=m.wd_shape_scale)
    momenta, wds = [0.85, 0.9, 0.95], [0.2, 0.15, 0.1]  # momentum warm-up and WD decaying with progress
    for g, mom, wd in zip(grads, momenta, wds, strict=True):
        opt.param_groups[0].update(momentum=mom, weight_decay=wd)
        w.grad = g.clone()
        opt.step()
    expected = _reference_autoresearch_muon(start, grads, momenta, cfg.matrix.lr, wds)
    assert torch.allclose(w.detach(), expected, atol=1e-6), (w.detach() - expected).abs().max()
    # cautious: the decay really is masked (the plain decay lands elsewhere)
    plain = Muon([dict(params=[torch.nn.Parameter(start.clone())], lr=cfg.matrix.lr, weight_decay=0.2,
                       normuon=True)], 0.85, True, 5, "polar_express", 0.95, ema_momentum=True, wd_shape_scale=True)
    plain.param_groups[0]["params"][0].grad = grads[0].clone()
    plain.step()
    assert not torch.allclose(plain.param_groups[0]["params"][0].detach(),
                              _reference_autoresearch_muon(start, grads[:1], [0.85], cfg.matrix.lr, [0.2]), atol=1e-6)


def test_weight_decay_after_the_update_is_pr163s_order():
    # PR #163 train_gpt.py Muon.step: p.add_(g, alpha=-lr); then p.mul_(1 - lr * weight_decay)
    w = torch.nn.Parameter(torch.randn(32, 16, generator=torch.Generator().manual_seed(2)))
    start = w.detach().clone()
    g = torch.randn(32, 16, generator=torch.Generator().manual_seed(3))
    opt = Muon([dict(params=[w], lr=0.03, weight_decay=0.02)], 0.95, True, 5, "quintic", 0.95, wd_after_update=True)
    opt.param_groups[0]["momentum"] = 0.85
    w.grad = g.clone()
    opt.step()
    u = orthogonalize(g + 0.85 * g, coefficients("quintic", 5)).float() * (32 / 16) ** 0.5
    assert torch.allclose(w.detach(), (start - 0.03 * u) * (1 - 0.03 * 0.02), atol=1e-6)


def test_linear_wd_schedule_scales_every_decay_with_progress():
    cfg = load_config(preset="tiny", overrides=["model.vocab_size=64", "optim.matrix.weight_decay=0.2",
                                                "optim.scalar.weight_decay=0.1", "optim.wd_schedule=linear"])
    opt = TableOptimizer(build_model(cfg.model, 0), cfg.optim, torch.device("cpu"))
    opt.set_schedule(1.0, 0, progress=0.25)
    wds = {g["base_wd"]: g["weight_decay"] for o in opt.optimizers for g in o.param_groups}
    assert wds[0.2] == pytest.approx(0.15) and wds[0.1] == pytest.approx(0.075) and wds[0.0] == 0.0
    with pytest.raises(ConfigError, match="progress"):
        opt.set_schedule(1.0, 1)
    const = TableOptimizer(build_model(cfg.model, 0), load_config(preset="tiny", overrides=[
        "model.vocab_size=64", "optim.matrix.weight_decay=0.2"]).optim, torch.device("cpu"))
    const.set_schedule(1.0, 0)  # constant: no progress needed, decay untouched
    assert {g["weight_decay"] for o in const.optimizers for g in o.param_groups} == {0.2, 0.0}


def test_autoresearch_optimizer_options_train_on_cpu():
    cfg = load_config(preset="tiny", overrides=[
        "model.vocab_size=64", "model.seq_len=32", "eval.stride=16", "model.layer_lambdas=true",
        "model.resid_mix=false", "model.qk_gain=false", "model.value_embed_layers=[1]",
        "optim.matrix.optimizer=normuon", "optim.gate.optimizer=normuon", "optim.matrix.weight_decay=0.2",
        "optim.gate.weight_decay=0.2", "optim.muon.ns_coeffs=polar_express", "optim.muon.ema_momentum=true",
        "optim.muon.cautious_wd=true", "optim.muon.wd_shape_scale=true", "optim.wd_schedule=linear",
        "optim.resid.lr=0.005", "optim.x0.lr=0.5", "optim.x0.betas=[0.96,0.95]"])
    model = build_model(cfg.model, 0)
    opt = TableOptimizer(model, cfg.optim, torch.device("cpu"))
    roles = {r.name: (r.role, r.optimizer) for r in opt.table}
    assert roles["resid_lambdas"] == ("resid", "adam") and roles["x0_lambdas"] == ("x0", "adam")
    assert roles["blocks.1.attn.ve_gate.weight"] == ("gate", "normuon")
    data = torch.randint(0, 64, (8, 33), generator=torch.Generator().manual_seed(0))
    losses = []
    for step in range(25):
        loss = model(data[:, :-1], data[:, 1:])
        loss.backward()
        opt.set_schedule(1.0, step, progress=step / 25)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
