"""Named presets: each is a diff against RunConfig() (whose defaults are the parameter-golf baseline)."""

from __future__ import annotations

import copy
from typing import Any

from golflab.errors import ConfigError

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny": (
        "CPU-sized model for tests and the demo: trains in seconds, same code path as the real presets",
        {
            "seed": 1337,
            "model": {"vocab_size": 0, "num_layers": 2, "model_dim": 64, "num_heads": 4, "num_kv_heads": 2,
                      "seq_len": 128, "embed_init_std": 0.02},
            "optim": {"muon": {"momentum_warmup_steps": 20}},
            "schedule": {"warmdown_steps": 0, "warmdown_frac": 0.3, "compile_warmup_steps": 0},
            "train": {"batch_tokens": 4096, "micro_batches": 1, "log_every": 10},
            "artifact": {"quant": "int8"},  # no 1/127 scale floor: a 64-wide model's rows are far below it
            "budget": {"seconds": 30.0},
            "eval": {"val_every": 50, "val_tokens": 16384, "batch_tokens": 8192, "stride": 64},
        },
    ),
    "golf-baseline": (
        "parameter-golf naive baseline: 9x512, 8 heads / 4 KV, relu^2 x2, tied, softcap 30, Muon 0.04, "
        "524,288 tokens/step at 1024, 600 s; artifact int8_pg + zlib (the reference's rule, the default)",
        {},
    ),
    "golf-swiglu576": (
        "parameter-golf PR #163 (1.2091): 7x576 SwiGLU x2, Muon WD 0.02, fp16 embedding, warmdown 60% of "
        "wallclock, sliding eval stride 64",
        {
            "model": {"num_layers": 7, "model_dim": 576, "mlp": "swiglu", "mlp_mult": 2.0},
            "optim": {"matrix": {"weight_decay": 0.02}},
            "schedule": {"warmdown_frac": 0.6, "warmdown_steps": 0},
            "artifact": {"quant": "int8_pg", "fp16_patterns": ["tok_emb"]},
        },
    ),
    "autoresearch": (
        "autoresearch train.py: depth 8, width 512, 4 heads of 128, seq 2048, relu^2 x4, untied, softcap 15, "
        "SSSL windows, value embeddings, NorMuon + Polar Express, 300 s",
        {
            "model": {"vocab_size": 0, "num_layers": 8, "model_dim": 512, "num_heads": 4, "num_kv_heads": 4,
                      "seq_len": 2048, "mlp_mult": 4.0, "tie_embeddings": False, "logit_softcap": 15.0,
                      "qk_gain_init": 1.0, "unet_skips": False, "layer_scales": False,
                      "attn_window": 1024, "window_layers": [0, 1, 2, 4, 5, 6],
                      "value_embed_layers": [1, 3, 5, 7]},
            "optim": {
                "matrix": {"optimizer": "normuon", "lr": 0.04, "weight_decay": 0.2},
                "embed": {"lr": 0.6, "betas": [0.8, 0.95]},
                "head": {"lr": 0.004, "betas": [0.8, 0.95]},
                "scalar": {"lr": 0.5, "betas": [0.8, 0.95]},
                "value_embed": {"lr": 0.6, "betas": [0.8, 0.95]},
                "muon": {"ns_coeffs": "polar_express", "momentum_warmup_steps": 300},
            },
            "schedule": {"warmdown_frac": 0.5, "warmdown_steps": 0},
            "train": {"batch_tokens": 524_288, "micro_batches": 2},
            "budget": {"seconds": 300.0},
            "eval": {"stride": 0},
        },
    ),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_diff(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name][1])


def preset_description(name: str) -> str:
    return PRESETS[name][0]
