import pytest
import torch

from golflab.config import load_config, preset_names
from golflab.errors import ConfigError
from golflab.model.gpt import GPT, build_model
from golflab.optim import TableOptimizer, build_table
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
