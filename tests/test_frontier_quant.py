"""The records' quantization as artifact keys: GPTQ (codes chosen under calibration Hessians), GPTQ-lite
(clip search), other integer widths, LQER (low-rank correction of the quantization error), and the
artifact round trip of a tiny run that uses them."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from golflab.artifact.gptq import collect_hessians, gptq_codes, lite_clip
from golflab.artifact.pack import pack_artifact, roundtrip_state_dict, unpack_artifact
from golflab.artifact.quantize import QMAX, dequantize_tensor, quantize_state_dict, quantize_tensor
from golflab.config import load_config
from golflab.config.schema import ArtifactConfig, ModelConfig
from golflab.errors import ConfigError
from golflab.model.gpt import build_model

VOCAB, SEQ = 32, 16


def markov_stream(n: int, seed: int) -> torch.Tensor:
    """Tokens from a fixed first-order Markov chain with two successors per token (entropy ln 2)."""
    nxt = torch.randint(0, VOCAB, (VOCAB, 2), generator=torch.Generator().manual_seed(0))
    choice = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed))
    out = [0]
    for i in range(n - 1):
        out.append(int(nxt[out[-1], choice[i]]))
    return torch.tensor(out)


def batches(stream: torch.Tensor, n: int, rows: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        s = torch.randint(0, stream.numel() - SEQ - 1, (rows,), generator=g)
        w = stream[s[:, None] + torch.arange(SEQ + 1)]
        yield w[:, :-1], w[:, 1:]


@pytest.fixture(scope="module")
def trained():
    """A 2 x 32 GPT trained for 80 Adam steps on the chain (to about ln 2 nats), and held-out batches."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: threads only contend on a shared CPU
    try:
        cfg = ModelConfig(vocab_size=VOCAB, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1, seq_len=SEQ,
                          mlp_mult=4.0)
        model = build_model(cfg, seed=0)
        opt = torch.optim.Adam(model.parameters(), lr=2e-2)
        train = markov_stream(20_000, seed=1)
        for x, y in batches(train, 80, 16, seed=2):
            loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        held_out = list(batches(markov_stream(5_000, seed=3), 8, 16, seed=4))
        calib = list(batches(train, 8, 16, seed=5))
        yield model, calib, held_out
    finally:
        torch.set_num_threads(threads)


def mean_loss(model, sd, data) -> float:
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(sd)
    try:
        with torch.no_grad():
            return sum(float(model(x, y)) for x, y in data) / len(data)
    finally:
        model.load_state_dict(original)


def quant_cfg(**kw) -> ArtifactConfig:
    return ArtifactConfig(keep_float_max_numel=0, keep_float_patterns=["attn_scale", "mlp_scale", "resid_mix",
                          "q_gain", "skip_weights"], **kw)


def test_hessians_cover_every_matrix_and_are_the_mean_of_x_xT(trained):
    model, calib, _ = trained
    hs = collect_hessians(model, calib)
    matrices = {k for k, v in model.state_dict().items() if v.ndim == 2 and "skip" not in k and "resid" not in k}
    assert set(hs) == matrices  # tied embeddings: tok_emb.weight's Hessian is the head's input
    lin = torch.nn.Linear(5, 3, bias=False)

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x, y):
            return self.lin(x).sum()

    xs = [torch.randn(4, 7, 5) for _ in range(3)]
    h = collect_hessians(One(), [(x, None) for x in xs])["lin.weight"]
    flat = torch.cat([x.reshape(-1, 5) for x in xs])
    assert torch.allclose(h, flat.T @ flat / flat.shape[0], atol=1e-5)


@pytest.mark.parametrize("bits", [3, 4, 5, 6])
def test_gptq_beats_round_to_nearest_at_the_same_width_and_scales(trained, bits):
    model, calib, held_out = trained
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    hs = collect_hessians(model, calib)
    cfg = quant_cfg(quant="gptq", bits=bits, embed_bits=bits)
    gptq, _ = roundtrip_state_dict(sd, cfg, hs)
    rtn, _ = roundtrip_state_dict(sd, cfg, {})  # no Hessian: the same scales, rounded to nearest
    for name, h in hs.items():  # each layer's output error on the calibration inputs: tr(E H E^T)
        e_g, e_r = gptq[name] - sd[name], rtn[name] - sd[name]
        assert torch.trace(e_g @ h @ e_g.T) < torch.trace(e_r @ h @ e_r.T), name
    if bits <= 4:  # where rounding costs this model measurably (at 5-6 bits both are within 0.002 of base)
        base, l_gptq, l_rtn = (mean_loss(model, s, held_out) for s in (sd, gptq, rtn))
        assert l_gptq < l_rtn and base < l_rtn
    if bits == 6:  # and the no-Hessian path is exactly golflab's own int6 rule
        int6, _ = roundtrip_state_dict(sd, quant_cfg(quant="int6"))
        assert all(torch.equal(int6[k], rtn[k]) for k in sd)


def test_gptq_codes_are_exact_on_a_grid_and_error_feedback_uses_the_hessian():
    scale = torch.full((3,), 0.1)
    w = torch.randint(-7, 8, (3, 10)).float() * 0.1  # already on the grid: nothing to correct
    assert torch.equal(gptq_codes(w, torch.eye(10), scale, 7).float() * 0.1, w)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 4, generator=g) @ torch.randn(4, 10, generator=g)  # correlated inputs: GPTQ can
    x += 0.05 * torch.randn(500, 10, generator=g)  # trade one column's rounding error against the others
    w = torch.randn(3, 10, generator=g)
    h = x.T @ x / 500
    q = gptq_codes(w, h, scale, 127).float() * 0.1
    rtn = torch.round(w / 0.1) * 0.1
    assert ((x @ (q - w).T) ** 2).mean() < ((x @ (rtn - w).T) ** 2).mean()


def test_gptq_needs_hessians_and_widths_are_checked():
    sd = {"w": torch.randn(8, 8)}
    with pytest.raises(ConfigError, match="needs Hessians"):
        quantize_state_dict(sd, quant_cfg(quant="gptq"))
    with pytest.raises(ConfigError, match=r"artifact\.bits"):
        quantize_state_dict(sd, quant_cfg(quant="gptq_lite", bits=9))


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 7, 8])
def test_any_width_round_trips_within_half_a_step(bits):
    w = torch.randn(16, 40)
    sd = {"blocks.0.attn.c_q.weight": w}
    cfg = quant_cfg(quant="gptq_lite", bits=bits)
    qm, _ = quantize_state_dict(sd, cfg)
    qt = qm.tensors["blocks.0.attn.c_q.weight"]
    assert qt.scheme == f"int{bits}_row" and qt.parts["q"].nbytes == w.numel()  # one byte a value
    assert int(abs(qt.parts["q"]).max()) <= QMAX[bits]
    back = unpack_artifact(pack_artifact(sd, cfg))["blocks.0.attn.c_q.weight"]
    step = torch.from_numpy(qt.parts["scale"].astype("float32"))[:, None]
    inside = w.abs() <= QMAX[bits] * step
    assert ((back - w).abs() <= step / 2 + 1e-6)[inside].all()


def test_gptq_lite_picks_the_clip_with_the_smallest_error():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 256, generator=g) * 0.02
    w[0, 0] = 0.5  # an outlier row: clipping it pays at int4
    cfg = quant_cfg(quant="gptq_lite", bits=4)
    lite = dequantize_tensor(quantize_state_dict({"m": w}, cfg)[0].tensors["m"])
    err = float((lite - w).square().mean())
    for pct in (99.9, 99.99, 100.0):
        rtn = dequantize_tensor(quantize_tensor(w, 4, pct, True))
        assert err <= float((rtn - w).square().mean()) * (1 + 1e-3), pct
    assert lite_clip(w, QMAX[4]).shape == (32,)


def test_sdclip_sets_the_clip_from_each_rows_spread():
    w = torch.randn(4, 1000)
    w[:, 0] = 50.0  # an outlier the percentile rule would keep
    sd_cfg = quant_cfg(quant="gptq", bits=6, mlp_clip_sigmas=3.0)
    qs, _ = quantize_state_dict({"blocks.0.mlp.fc.weight": w}, sd_cfg, hessians={})
    scale = qs.tensors["blocks.0.mlp.fc.weight"].parts["scale"].astype("float32")
    std = w.std(dim=1).numpy()
    assert abs(scale / (3.0 * std / 31) - 1).max() < 2e-3  # fp16 rounding only


@pytest.mark.slow
def test_a_tiny_gptq_lqer_run_ships_an_artifact_that_reloads_to_its_reported_score(tiny_dataset, tmp_path):
    from golflab.artifact.compress import unwrap_blob
    from golflab.artifact.pack import load_artifact
    from golflab.artifact.serialize import deserialize_quantized
    from golflab.eval.evaluate import evaluate
    from golflab.model.gpt import GPT
    from golflab.train.loop import train
    from golflab.train.sources import sources_from_config

    cfg = load_config(preset="tiny", budget="20steps", extra={"data": {"path": str(tiny_dataset)}},
                      overrides=["eval.val_every=0", "eval.stride=0", "artifact.quant=gptq", "artifact.bits=5",
                                 "artifact.keep_float_max_numel=0", "artifact.gptq_calib_batches=2",
                                 "artifact.lqer_rank=2", "artifact.lqer_top_k=2"])
    sources = sources_from_config(cfg)
    assert train(cfg, tmp_path / "run", sources)["status"] == "ok"
    res = json.loads((tmp_path / "run" / "result.json").read_text())
    art = res["artifact"]
    assert art["quant"] == "gptq" and art["fits"] and art["calib_seconds"] > 0
    blob = (tmp_path / "run" / "model.gptq.zlib.glf").read_bytes()
    stored = deserialize_quantized(unwrap_blob(blob)).tensors.values()
    assert sum("lqer" in qt.meta for qt in stored) == 2 and {qt.scheme for qt in stored} >= {"int5_row"}
    weights = load_artifact(tmp_path / "run" / "model.gptq.zlib.glf")
    model = GPT(cfg.model, sources.vocab_size)
    model.load_state_dict(weights)
    model.eval()
    tokens = sources.eval_tokens("val")
    seq = cfg.model.seq_len
    again = evaluate(lambda x, y: model(x, y, reduction="none"), tokens, seq, sources.byte_table,
                     batch_seqs=max(1, cfg.eval.batch_tokens // seq))
    assert again.val_bpb == pytest.approx(art["val_bpb"], rel=1e-6)
    assert abs(art["val_bpb"] - res["val_bpb"]) < 0.1  # int5 GPTQ costs little


# ---- LQER -----------------------------------------------------------------------------------------
def lqer_cfg(**kw) -> ArtifactConfig:
    return quant_cfg(quant="int6", **kw)


def trained_matrix() -> torch.Tensor:
    """A matrix with a few strong directions (as trained weights have) plus noise."""
    g = torch.Generator().manual_seed(0)
    return (torch.randn(96, 6, generator=g) @ torch.randn(6, 128, generator=g)) * 0.05 \
        + 0.01 * torch.randn(96, 128, generator=g)


@pytest.mark.parametrize("asym", [False, True])
def test_the_error_falls_with_the_rank(asym):
    w = trained_matrix()
    errs = []
    for rank in (0, 1, 2, 4, 8):
        cfg = quant_cfg(quant="gptq_lite", bits=3, lqer_rank=rank, lqer_asym=asym, lqer_bits=8, lqer_top_k=1)
        back = unpack_artifact(pack_artifact({"m": w}, cfg))["m"]
        errs.append(float((back - w).norm()))
    assert all(a > b for a, b in itertools.pairwise(errs)), errs
    if not asym:  # 8-bit factors: close to the best possible, the SVD's truncation residual of W - Q(W)
        e = w - unpack_artifact(pack_artifact({"m": w}, quant_cfg(quant="gptq_lite", bits=3)))["m"]
        s = torch.linalg.svdvals(e)
        for rank, err in zip((1, 2, 4, 8), errs[1:], strict=True):
            assert err <= 1.01 * float(s[rank:].square().sum().sqrt()), rank


def test_lqer_corrects_only_the_top_k_largest_errors_and_its_bytes_count():
    g = torch.Generator().manual_seed(1)
    sd = {f"m{i}": trained_matrix() * (1 + i) + 0.001 * torch.randn(96, 128, generator=g) for i in range(4)}
    _, plain_stats = quantize_state_dict(sd, lqer_cfg())
    qm, stats = quantize_state_dict(sd, lqer_cfg(lqer_rank=4, lqer_top_k=2))  # asym int2 / int4 x 64
    assert {k for k, qt in qm.tensors.items() if "lqer" in qt.meta} == {"m3", "m2"}  # the largest weights err most
    factor_bytes = 96 * 4 + 2 + 4 * 128 + 2 * (4 * 128 // 64)  # int8 codes + fp16 scales, per corrected tensor
    assert stats.bytes_after - plain_stats.bytes_after == 2 * factor_bytes
    blob, plain_blob = pack_artifact(sd, lqer_cfg(lqer_rank=4, lqer_top_k=2)), pack_artifact(sd, lqer_cfg())
    assert len(blob) > len(plain_blob)  # the size rule measures the blob, factors included
    back = unpack_artifact(blob)
    for k in sd:
        e, e0 = (back[k] - sd[k]).norm(), (unpack_artifact(plain_blob)[k] - sd[k]).norm()
        assert (e < e0) if k in ("m2", "m3") else torch.equal(back[k], unpack_artifact(plain_blob)[k])


def test_lqer_settings_are_checked():
    with pytest.raises(ConfigError, match="lqer"):
        quantize_state_dict({"m": torch.randn(8, 8)}, lqer_cfg(lqer_rank=-1))


def test_the_quantization_plan_differs_from_golf_frontier_only_in_the_artifact():
    """plans/pgolf-frontier-quant.toml: same model, training and seeds in every arm (so the per-seed
    differences are the quantizer's alone), judged on the artifact's round-trip val_bpb."""
    from pathlib import Path

    from golflab.config import load_config
    from golflab.lab.plan import load_plan

    plan = load_plan(Path(__file__).parents[1] / "plans" / "pgolf-frontier-quant.toml")
    assert plan.metric == "artifact_val_bpb"
    base = load_config(preset="golf-frontier", overrides=[*plan.baseline, "seed=1"], budget=plan.budget)
    for arm in plan.arms:
        cfg = plan.build_config(list(arm.overrides), seed=1)
        assert cfg.artifact.quant in ("gptq", "gptq_lite"), arm.name
        for section in ("model", "optim", "schedule", "train", "eval", "data"):
            assert getattr(cfg, section) == getattr(base, section), (arm.name, section)
