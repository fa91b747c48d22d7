"""Quantizers: error bounds, clipping, int6 packing, passthrough rules, dtypes, aliases, stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golflab.artifact.quantize import (
    dequantize_state_dict,
    pack_int6,
    quantize_state_dict,
    unpack_int6,
)
from golflab.config.schema import ArtifactConfig
from golflab.errors import ConfigError, GolflabError


def _matrix(rows: int = 48, cols: int = 300, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.02
    w[3] *= 25.0  # an outlier row
    w[5, 7] = 1.5  # a single outlier value
    w[9] = 0.0  # an all-zero row
    return w


@pytest.mark.parametrize(("quant", "qmax"), [("int8", 127), ("int6", 31)])
@pytest.mark.parametrize("pct", [99.99984, 99.0, 90.0])
def test_per_row_error_bound_and_clipping(quant: str, qmax: int, pct: float) -> None:
    w = _matrix()
    cfg = ArtifactConfig(quant=quant, clip_percentile=pct, keep_float_max_numel=0)
    qm, _ = quantize_state_dict({"w": w}, cfg)
    qt = qm.tensors["w"]
    assert qt.scheme == f"{quant}_row"
    scale = qt.parts["scale"]
    assert scale.dtype == np.float16 and scale.shape == (w.shape[0],)
    s = torch.from_numpy(scale.astype(np.float32))[:, None]
    back = dequantize_state_dict(qm)["w"]
    # the clip is the per-row percentile of |w| (numpy's linear-interpolation percentile as reference)
    clip = torch.from_numpy(np.percentile(w.abs().numpy(), pct, axis=1).astype(np.float32))[:, None]
    nonzero = clip[:, 0] > 0
    assert torch.all(s[nonzero, 0] * qmax >= clip[nonzero, 0] * (1 - 1e-6))  # fp16 scale rounded up
    assert torch.all(s[nonzero, 0] * qmax <= clip[nonzero, 0] * (1 + 2e-3))
    inside = w.abs() <= clip
    err = (back - w).abs()
    assert torch.all(err[inside] <= (s / 2 * (1 + 1e-5)).expand_as(w)[inside] + 1e-9)
    outside = ~inside
    assert outside.any()
    # clipped values land on the top level, with their sign
    top = (qmax * s).expand_as(w)
    assert torch.allclose(back[outside].abs(), top[outside], rtol=1e-6)
    assert torch.equal(torch.sign(back[outside]), torch.sign(w[outside]))
    assert torch.all(back[9] == 0)


@pytest.mark.parametrize("quant", ["int8", "int6"])
def test_per_tensor_for_non_2d(quant: str) -> None:
    qmax = 127 if quant == "int8" else 31
    w = torch.randn(4, 8, 40) * 0.1
    cfg = ArtifactConfig(quant=quant, keep_float_max_numel=100, clip_percentile=100.0)
    qm, _ = quantize_state_dict({"conv": w, "vec": torch.randn(500)}, cfg)
    assert qm.tensors["conv"].scheme == qm.tensors["vec"].scheme == f"{quant}_tensor"
    s = float(qm.tensors["conv"].parts["scale"][0])
    assert s == pytest.approx(float(w.abs().max()) / qmax, rel=1e-6)
    back = dequantize_state_dict(qm)
    assert back["conv"].shape == w.shape
    assert float((back["conv"] - w).abs().max()) <= s / 2 * (1 + 1e-5)


@pytest.mark.parametrize("n", [*range(0, 14), 1000, 4097, 65_539])
def test_int6_pack_roundtrip(n: int) -> None:
    rng = np.random.default_rng(n)
    v = rng.integers(-31, 32, size=n).astype(np.int8)
    if n >= 2:
        v[0], v[1] = -31, 31
    p = pack_int6(v)
    assert p.dtype == np.uint8 and p.size == 3 * (-(-n // 4))
    assert np.array_equal(unpack_int6(p, n), v)


def test_int6_pack_rejects_out_of_range_and_bad_length() -> None:
    with pytest.raises(ValueError):
        pack_int6(np.array([32]))
    with pytest.raises(ValueError):
        pack_int6(np.array([-32]))
    with pytest.raises(GolflabError, match="int6 data"):
        unpack_int6(np.zeros(5, dtype=np.uint8), 4)


def test_int6_tensor_is_packed_4_in_3() -> None:
    w = torch.randn(37, 11)
    qm, _ = quantize_state_dict({"w": w}, ArtifactConfig(quant="int6", keep_float_max_numel=0))
    qt = qm.tensors["w"]
    assert qt.parts["q"].nbytes == 3 * (-(-w.numel() // 4))
    assert qt.meta["count"] == w.numel()


def test_passthrough_rules_by_name_size_and_dtype() -> None:
    big = 70_000
    sd = {
        "tok_emb.weight": torch.randn(big // 100, 100),
        "blocks.0.attn_scale": torch.randn(big),  # large, but a control tensor: fp32
        "blocks.0.attn.c_q.weight": torch.randn(300, 300),
        "blocks.0.small.weight": torch.randn(256, 256),  # exactly keep_float_max_numel: fp16
        "blocks.0.just_over": torch.randn(65_537),
        "skip_weights": torch.randn(4, 512),
        "mask": torch.ones(3, 3, dtype=torch.bool),
        "step": torch.tensor(7, dtype=torch.int64),
        "bf_small": torch.randn(8, 8).to(torch.bfloat16),
        "huge_vals": torch.full((10,), 1e6),
    }
    cfg = ArtifactConfig(quant="int6", fp16_patterns=["tok_emb"])
    qm, stats = quantize_state_dict(sd, cfg)
    schemes = {k: v.scheme for k, v in qm.tensors.items()}
    assert schemes == {
        "tok_emb.weight": "fp16",
        "blocks.0.attn_scale": "fp32",
        "blocks.0.attn.c_q.weight": "int6_row",
        "blocks.0.small.weight": "fp16",
        "blocks.0.just_over": "int6_tensor",
        "skip_weights": "fp32",
        "mask": "raw",
        "step": "raw",
        "bf_small": "bf16",
        "huge_vals": "fp32",  # would overflow fp16
    }
    back = dequantize_state_dict(qm)
    for k, t in sd.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape, k
    for k in ("blocks.0.attn_scale", "skip_weights", "mask", "step", "bf_small", "huge_vals"):
        assert torch.equal(back[k], sd[k]), k
    assert torch.equal(back["tok_emb.weight"], sd["tok_emb.weight"].half().float())
    assert stats.params == sum(t.numel() for t in sd.values())
    assert stats.categories["fp32"].count == 3
    assert stats.bytes_before == sum(t.numel() * t.element_size() for t in sd.values())


@pytest.mark.parametrize("quant", ["int8", "int6", "none"])
def test_original_dtypes_restored(quant: str) -> None:
    sd = {
        "a.weight": torch.randn(300, 300).to(torch.bfloat16),
        "b.weight": torch.randn(300, 300).to(torch.float16),
        "c.weight": torch.randn(300, 300, dtype=torch.float64),
        "d.weight": torch.randn(300, 300),
    }
    qm, _ = quantize_state_dict(sd, ArtifactConfig(quant=quant))
    back = dequantize_state_dict(qm)
    for k, t in sd.items():
        assert back[k].dtype == t.dtype, k
    if quant == "none":
        assert qm.tensors["a.weight"].scheme == "bf16" and torch.equal(back["a.weight"], sd["a.weight"])
        assert qm.tensors["d.weight"].scheme == "fp16"


def test_quant_none_keeps_control_tensors_fp32() -> None:
    qm, _ = quantize_state_dict({"resid_mix": torch.randn(2, 512)}, ArtifactConfig(quant="none"))
    assert qm.tensors["resid_mix"].scheme == "fp32"


def test_tied_weights_stored_once() -> None:
    emb = torch.randn(200, 400)
    sd = {"tok_emb.weight": emb, "lm_head.weight": emb, "other": emb.clone()}
    qm, stats = quantize_state_dict(sd, ArtifactConfig(quant="int8"))
    assert qm.tensors["lm_head.weight"].scheme == "alias"
    assert qm.tensors["other"].scheme == "int8_row"
    assert stats.params == 2 * emb.numel()
    back = dequantize_state_dict(qm)
    assert back["lm_head.weight"] is back["tok_emb.weight"]


def test_errors_are_clear() -> None:
    bad = torch.randn(300, 300)
    bad[1, 2] = float("nan")
    with pytest.raises(GolflabError, match=r"'blocks\.1\.w'.*NaN"):
        quantize_state_dict({"blocks.1.w": bad}, ArtifactConfig())
    with pytest.raises(ConfigError, match="clip_percentile"):
        quantize_state_dict({}, ArtifactConfig(clip_percentile=0.0))
    with pytest.raises(ConfigError, match=r"artifact\.quant"):
        quantize_state_dict({}, ArtifactConfig(quant="int4"))  # type: ignore[arg-type]
    with pytest.raises(GolflabError, match="not a tensor"):
        quantize_state_dict({"x": 3}, ArtifactConfig())  # type: ignore[dict-item]


def test_measure_error_reports_max_abs_error() -> None:
    w = _matrix(cols=400)
    qm, stats = quantize_state_dict({"w": w}, ArtifactConfig(quant="int6", keep_float_max_numel=0), measure_error=True)
    back = dequantize_state_dict(qm)["w"]
    assert stats.max_abs_err["w"] == pytest.approx(float((back - w).abs().max()))
    assert stats.to_dict()["categories"]["int6_row"]["count"] == 1


def test_scale_floor_gives_a_fixed_point_step_for_small_rows():
    from golflab.artifact.quantize import dequantize_tensor, quantize_tensor

    w = torch.randn(8, 256) * 0.02  # rows far smaller than 1: parameter-golf's 1/127 floor binds
    free = quantize_tensor(w, 8, 100.0, True)
    floored = quantize_tensor(w, 8, 100.0, True, scale_floor=1 / 127)
    assert np.allclose(floored.parts["scale"].astype(np.float32), 1 / 127, rtol=1e-3)
    err_free = (dequantize_tensor(free) - w).abs().max()
    err_floor = (dequantize_tensor(floored) - w).abs().max()
    assert err_floor > 10 * err_free  # coarser
    assert np.abs(floored.parts["q"]).max() < np.abs(free.parts["q"]).max()  # fewer levels used
