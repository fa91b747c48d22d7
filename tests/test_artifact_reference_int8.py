"""artifact.quant = "int8_pg" is parameter-golf's own int8 rule, exactly; the golf presets name their
scheme and their default artifact fits the 16,000,000-byte cap at full size."""

from __future__ import annotations

import pytest
import torch

from golflab.artifact.export import render_script
from golflab.artifact.pack import pack_artifact, unpack_artifact
from golflab.artifact.quantize import quantize_state_dict
from golflab.config import load_config
from golflab.config.presets import PRESETS
from golflab.config.schema import ArtifactConfig
from golflab.model.gpt import build_model

# openai/parameter-golf train_gpt.py (root), quantize_float_tensor / keep_float_tensor:
CLIP_Q = 99.99984 / 100.0  # INT8_CLIP_PERCENTILE
KEEP_FLOAT_MAX_NUMEL = 65_536  # INT8_KEEP_FLOAT_MAX_NUMEL
FP32_PATTERNS = ("attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes", "q_gain",
                 "skip_weight", "skip_weights")  # CONTROL_TENSOR_NAME_PATTERNS


def reference_roundtrip(name: str, t: torch.Tensor) -> torch.Tensor:
    """What the reference's quantize + dequantize give back for one tensor (written from its rules:
    per-row fp32 scale = clip / 127 clamped at 1 / 127, codes rounded with it, scale kept as fp16)."""
    t32 = t.float()
    if t.numel() <= KEEP_FLOAT_MAX_NUMEL:
        return t32 if any(p in name for p in FP32_PATTERNS) else t.to(torch.float16).to(t.dtype)
    if t32.ndim == 2:
        clip = torch.quantile(t32.abs(), CLIP_Q, dim=1)
        scale = (clip / 127.0).clamp_min(1.0 / 127.0)
        q = torch.clamp(torch.round(torch.clamp(t32, -clip[:, None], clip[:, None]) / scale[:, None]), -127, 127)
        return (q * scale.to(torch.float16).float()[:, None]).to(t.dtype)
    clip_abs = float(torch.quantile(t32.abs().flatten(), CLIP_Q))
    scale = torch.tensor(clip_abs / 127.0 if clip_abs > 0 else 1.0, dtype=torch.float32)
    return (torch.clamp(torch.round(torch.clamp(t32, -clip_abs, clip_abs) / scale), -127, 127) * scale).to(t.dtype)


def test_int8_pg_restores_exactly_what_the_reference_restores():
    g = torch.Generator().manual_seed(0)
    sd = {
        "blocks.0.mlp.fc.weight": torch.randn(256, 512, generator=g) * 0.02,  # rows under the 1/127 floor
        "blocks.0.attn.c_q.weight": torch.randn(300, 256, generator=g) * 3.0,  # rows above it
        "tok_emb.weight": torch.cat([torch.randn(255, 512, generator=g), torch.zeros(1, 512)]),  # an all-zero row
        "conv.weight": torch.randn(8, 16, 32, 32, generator=g),  # not 2-D: one fp32 scale
        "blocks.0.attn_scale": torch.rand(512, generator=g),
        "blocks.0.attn.q_gain": torch.rand(8, generator=g),
        "small.weight": torch.randn(64, 64, generator=g),
    }
    sd["blocks.0.mlp.fc.weight"][3, 7] = 0.9  # an outlier the percentile clips
    back = unpack_artifact(pack_artifact(sd, ArtifactConfig(quant="int8_pg")))
    for name, t in sd.items():
        assert torch.equal(back[name], reference_roundtrip(name, t)), name


def test_int8_pg_codes_and_fp16_scales_are_the_reference_ones():
    w = torch.randn(64, 4096, generator=torch.Generator().manual_seed(1)) * 0.5
    qt = quantize_state_dict({"w": w}, ArtifactConfig(quant="int8_pg"))[0].tensors["w"]
    clip = torch.quantile(w.abs(), CLIP_Q, dim=1)
    scale = (clip / 127.0).clamp_min(1.0 / 127.0)
    assert qt.scheme == "int8_row" and qt.parts["scale"].dtype.name == "float16"
    assert torch.equal(torch.from_numpy(qt.parts["scale"]), scale.to(torch.float16))  # round to nearest
    q = torch.clamp(torch.round(torch.clamp(w, -clip[:, None], clip[:, None]) / scale[:, None]), -127, 127)
    assert torch.equal(torch.from_numpy(qt.parts["q"]).reshape(64, -1).float(), q)


@pytest.mark.parametrize("preset", ["golf-baseline", "golf-swiglu576"])
def test_golf_presets_name_their_scheme_and_fit_at_full_size(preset):
    cfg = load_config(preset=preset)
    assert cfg.artifact.quant == "int8_pg" and "int8_pg" in str(PRESETS[preset])  # the preset names it
    sd = build_model(cfg.model, cfg.seed).state_dict()  # full width, init weights
    total = len(pack_artifact(sd, cfg.artifact)) + len(render_script(cfg).encode("utf-8"))
    assert total <= 16_000_000
