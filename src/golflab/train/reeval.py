"""Re-evaluate a finished run's weights (e.g. on the held-out test split) without retraining."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from golflab.config.loader import from_toml_file
from golflab.errors import DataError
from golflab.eval.evaluate import EvalResult, evaluate
from golflab.model.gpt import GPT
from golflab.train.backends import autocast_dtype, ready_model, setup_backends
from golflab.train.loop import resolve_vocab
from golflab.train.sources import sources_from_config


def load_run_model(run_dir: Path, device: torch.device, data: Path | None = None):
    """(config, model with the run's final weights, data sources) for a finished run directory."""
    cfg_path, weights = run_dir / "config.toml", run_dir / "model.pt"
    for p in (cfg_path, weights):
        if not p.exists():
            raise DataError(f"{run_dir} is not a finished run: {p.name} is missing")
    cfg = from_toml_file(cfg_path)
    if data is not None:
        cfg.data.path = str(data)
    sources = sources_from_config(cfg)
    model = GPT(cfg.model, resolve_vocab(cfg, sources)).to(device)
    model.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
    ready_model(model, cfg, device).eval()
    return cfg, model, sources


def open_run(run_dir: Path, data: Path | None = None):
    """(config, model, sources, device) of a finished run, on CUDA when there is one."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, model, sources = load_run_model(run_dir, device, data)
    setup_backends(device, cfg, autocast_dtype(cfg, device) is None)  # before anything is compiled
    return cfg, model, sources, device


def run_evaluator(cfg, model: GPT, sources, device: torch.device) -> Callable[[torch.Tensor, int], EvalResult]:
    """eval(tokens, stride) for a loaded run, with the model compiled once on CUDA."""
    net = torch.compile(model, dynamic=False) if device.type == "cuda" else model
    seq = cfg.model.seq_len

    def run(tokens: torch.Tensor, stride: int = 0) -> EvalResult:
        return evaluate(lambda x, y: net(x, y, reduction="none"), tokens, seq, sources.byte_table, stride=stride,
                        batch_seqs=max(1, cfg.eval.batch_tokens // seq), device=device,
                        autocast_dtype=autocast_dtype(cfg, device))

    return run


def evaluate_run(run_dir: Path, split: str = "val", stride: int = 0, data: Path | None = None) -> dict[str, Any]:
    cfg, model, sources, device = open_run(run_dir, data)
    res = run_evaluator(cfg, model, sources, device)(sources.eval_tokens(split), stride)
    return {"split": split, "stride": stride, "val_loss": res.val_loss, "val_bpb": res.val_bpb,
            "tokens": res.tokens, "bytes": res.bytes, "seconds": res.seconds}
