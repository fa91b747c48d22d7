"""Named presets: each is a diff against RunConfig() (whose defaults are the parameter-golf baseline)."""

from __future__ import annotations

import copy
from typing import Any

from golflab.errors import ConfigError

_SQRT3 = 3.0**0.5  # autoresearch's init bound is sqrt(3) / sqrt(n_embd)
_AR_ADAM_SCALE = (512 / 768) ** -0.5  # autoresearch scales its Adam LRs by (d_model / 768)^-0.5, at d_model 512

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
        "parameter-golf PR #163 (1.2091): 7x576 SwiGLU hidden 768, RoPE base 50,000, Muon 0.03 + WD 0.02, "
        "Adam beta2 0.99, 262,144 tokens/step, fp16 embedding, warmdown 60% of wallclock",
        {
            "model": {"num_layers": 7, "model_dim": 576, "mlp": "swiglu", "mlp_hidden": 768, "rope_base": 50000.0},
            "optim": {
                "matrix": {"lr": 0.03, "weight_decay": 0.02},
                "scalar": {"lr": 0.03, "betas": [0.9, 0.99]},
                "tied_embed": {"lr": 0.04, "betas": [0.9, 0.99]},
                "embed": {"betas": [0.9, 0.99]},
                "head": {"betas": [0.9, 0.99]},
                "muon": {"wd_after_update": True},
            },
            "schedule": {"warmdown_frac": 0.6, "warmdown_steps": 0},
            "train": {"batch_tokens": 262_144},
            # PR #163's quantizer is the stock one: per-row scales clamped to >= 1/127 (quantize_float_tensor)
            "artifact": {"quant": "int8_pg", "fp16_patterns": ["tok_emb"]},
        },
    ),
    "golf-frontier": (
        "parameter-golf record 1.0611 (2026-04-27, PR #1855) as golflab allows: SP8192, 512 wide, 8 heads / 4 KV, "
        "MLP 4x leaky relu^2, 6 unique layers with 2-3 looped 3x, parallel lanes from layer 4, XSA, partial RoPE 16, "
        "LN scale, QK gain 5, sparse attention gate, SmearGate, gated skips, document masks, orthogonal init, "
        "Polar Express Muon, "
        "786,432 tokens/step at 2048, warmdown 85% to a 10% floor, EMA; artifact int6 + lzma (docs/frontier.md)",
        {
            "model": {"vocab_size": 8192, "num_layers": 6, "model_dim": 512, "num_heads": 8, "num_kv_heads": 4,
                      "seq_len": 2048, "mlp": "leaky_relu2", "mlp_mult": 4.0, "leaky_slope": 0.5,
                      "qk_gain_init": 5.0, "rope_dims": 16, "ln_scale": True,
                      "num_loops": 2, "loop_start": 2, "loop_end": 3, "parallel_start": 4, "skip_gates": True,
                      "xsa_layers": [0, 1, 2, 3, 4, 5], "attn_gate": "sparse", "gate_window": 12,
                      "attn_gate_scale": 0.5, "smear_gate": True, "doc_mask": True, "bos_id": 1,
                      "matrix_init": "orthogonal"},
            "optim": {
                "matrix": {"lr": 0.026, "weight_decay": 0.095},
                "tied_embed": {"lr": 0.03, "betas": [0.9, 0.99], "weight_decay": 0.085},
                "scalar": {"lr": 0.02, "betas": [0.9, 0.99], "weight_decay": 0.02},
                "gate": {"lr": 0.02, "betas": [0.9, 0.99], "weight_decay": 0.02},  # the record's gates are scalars
                "muon": {"momentum": 0.97, "momentum_warmup_start": 0.92, "momentum_warmup_steps": 1500,
                         "ns_steps": 5, "ns_coeffs": "polar_express"},
                "grad_clip": 0.3,
            },
            # the record's WARMUP_STEPS=20 are priming steps whose updates are undone: golflab's compile warm-up
            "schedule": {"warmup_steps": 0, "compile_warmup_steps": 20, "warmdown_frac": 0.85, "warmdown_steps": 0,
                         "lr_floor": 0.1, "ema_decay": 0.9965},
            "train": {"batch_tokens": 786_432, "micro_batches": 8},
            "artifact": {"quant": "int6", "compress": "lzma"},
        },
    ),
    "autoresearch": (
        "autoresearch train.py: depth 8, width 512, 4 heads of 128, seq 2048, vocab 8192, relu^2 x4, untied, "
        "softcap 15, SSSL windows, value embeddings, per-layer resid/x0 scalars, NorMuon + Polar Express with "
        "cautious decaying WD, BOS best-fit rows, 40 x 524,288-token eval, 300 s",
        {
            "seed": 42,
            "data": {"packing": "best_fit", "pack_buffer_docs": 1000},
            "model": {"vocab_size": 8192, "num_layers": 8, "model_dim": 512, "num_heads": 4, "num_kv_heads": 4,
                      "seq_len": 2048, "mlp_mult": 4.0, "tie_embeddings": False, "logit_softcap": 15.0,
                      "qk_gain": False, "unet_skips": False, "layer_scales": False, "resid_mix": False,
                      "layer_lambdas": True, "x0_lambda_init": 0.1, "matrix_init_scale": _SQRT3,
                      "head_init_std": 0.001, "embed_dtype": "bf16", "attn_window": 1025, "window_layers": [0, 1, 2, 4, 5, 6],
                      "value_embed_layers": [1, 3, 5, 7]},
            "optim": {
                "matrix": {"optimizer": "normuon", "lr": 0.04, "weight_decay": 0.2},
                "gate": {"optimizer": "normuon", "lr": 0.04, "weight_decay": 0.2},
                "embed": {"lr": 0.6 * _AR_ADAM_SCALE, "betas": [0.8, 0.95], "eps": 1e-10},
                "head": {"lr": 0.004 * _AR_ADAM_SCALE, "betas": [0.8, 0.95], "eps": 1e-10},
                "value_embed": {"lr": 0.6 * _AR_ADAM_SCALE, "betas": [0.8, 0.95], "eps": 1e-10},
                "resid": {"lr": 0.5 * 0.01, "betas": [0.8, 0.95], "eps": 1e-10},
                "x0": {"lr": 0.5, "betas": [0.96, 0.95], "eps": 1e-10},
                "scalar": {"lr": 0.5, "betas": [0.8, 0.95], "eps": 1e-10},
                "muon": {"ns_coeffs": "polar_express", "momentum_warmup_steps": 300, "ema_momentum": True,
                         "cautious_wd": True, "wd_shape_scale": True},
                "wd_schedule": "linear",
            },
            "schedule": {"warmdown_frac": 0.5, "warmdown_steps": 0},
            "train": {"batch_tokens": 524_288, "micro_batches": 2},
            "budget": {"seconds": 300.0},
            "eval": {"val_every": 0, "stride": 0, "tokens": 40 * 524_288, "batch_tokens": 128 * 2048,
                     "packing": "best_fit", "zero_byte_nats": False},
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
