"""After training: squeeze the weights into the artifact, load them back and re-evaluate.

The artifact's size is the compressed weights plus the bytes of the code a submission ships (the
stand-alone train_gpt.py that `golflab export` generates for this config); its val_bpb is measured on
the dequantized weights, standard and sliding, exactly as the run's own eval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from golflab.artifact.environment import write_environment
from golflab.artifact.pack import roundtrip_state_dict, write_artifact
from golflab.artifact.size import artifact_size
from golflab.config.schema import ArtifactConfig, RunConfig
from golflab.errors import ConfigError


def artifact_name(cfg: ArtifactConfig) -> str:
    return f"model.{cfg.quant}.{cfg.compress}.glf"


def code_bytes(cfg: RunConfig) -> bytes:
    """The code a submission ships: the generated stand-alone train_gpt.py for this config."""
    from golflab.artifact.export import render_script

    return render_script(cfg).encode("utf-8")


def squeeze_and_evaluate(model: torch.nn.Module, cfg: RunConfig, evaluate, out_dir: Path | None,
                         stride: int, ttt_eval=None, hessians: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Quantize + compress `model`'s weights, re-evaluate with the round-tripped weights (via
    `evaluate(stride) -> EvalResult`, and `ttt_eval() -> EvalResult` when given: score-first TTT),
    restore the original weights and return the artifact record."""
    a = cfg.artifact
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    restored, blob = roundtrip_state_dict({k: v.cpu() for k, v in original.items()}, a, hessians)
    size = artifact_size(len(blob), len(code_bytes(cfg)), a.limit_bytes)
    if out_dir is not None:
        write_artifact(out_dir / artifact_name(a), blob)
    record: dict[str, Any] = {"quant": a.quant, "compress": a.compress, **size.to_dict()}
    try:
        model.load_state_dict(restored, strict=True)  # copied onto the parameters' devices
        std = evaluate(0)
        record.update(val_loss=std.val_loss, val_bpb=std.val_bpb, sliding_val_loss=None, sliding_val_bpb=None)
        if stride > 0:
            sw = evaluate(stride)
            record.update(sliding_val_loss=sw.val_loss, sliding_val_bpb=sw.val_bpb)
        if ttt_eval is not None:
            tt = ttt_eval()
            record.update(ttt_val_loss=tt.val_loss, ttt_val_bpb=tt.val_bpb, ttt_seconds=tt.seconds)
    finally:
        model.load_state_dict(original, strict=True)
    return record


def artifact_roundtrip(trainer, tokens: torch.Tensor) -> dict[str, Any]:
    cfg = trainer.cfg
    if trainer.out_dir is not None and trainer.env.is_main:
        write_environment(trainer.out_dir)  # the run's own machine, for the exported log's header
    tt = ttt_evaluator(cfg, trainer, tokens)
    calib = calibration_hessians(cfg, trainer)
    record = squeeze_and_evaluate(trainer.model, cfg, lambda stride: trainer.evaluate(tokens, stride=stride),
                                  trainer.out_dir if trainer.env.is_main else None, cfg.eval.stride, tt,
                                  calib and calib[0])
    if calib is not None:
        record["calib_seconds"] = calib[1]  # reads training data: the rules count it as training time
    trainer.log.info(f"artifact {record['quant']}+{record['compress']}: {record['bytes_total']:,} bytes "
                     f"({'fits' if record['fits'] else 'OVER'} {record['limit_bytes']:,}); "
                     f"val_bpb {record['val_bpb']:.4f}"
                     + (f", sliding {record['sliding_val_bpb']:.4f}" if record.get("sliding_val_bpb") else "")
                     + (f", score-first TTT {record['ttt_val_bpb']:.4f} ({record['ttt_seconds']:.1f}s)"
                        if tt is not None else ""))
    return record


def calibration_hessians(cfg: RunConfig, trainer) -> tuple[dict[str, torch.Tensor], float] | None:
    """GPTQ's Hessians from the next artifact.gptq_calib_batches training micro-batches (never val data)
    and the seconds they took, when artifact.quant = "gptq"; else None."""
    if cfg.artifact.quant != "gptq":
        return None
    from golflab.artifact.gptq import collect_hessians

    t0 = time.perf_counter()
    seq, dev = cfg.model.seq_len, trainer.device
    batches = ((x.to(dev), y.to(dev)) for x, y in
               (trainer.loader.next_batch(trainer.local_tokens, seq) for _ in range(cfg.artifact.gptq_calib_batches)))
    hessians = collect_hessians(trainer.model, batches, trainer.amp)
    return hessians, time.perf_counter() - t0


def ttt_evaluator(cfg: RunConfig, trainer, tokens: torch.Tensor):
    """The artifact's score-first TTT eval when eval.ttt is on (a config read, so the exported script of
    any other config leaves TTT out), else None."""
    if not cfg.eval.ttt.enabled:
        return None
    return lambda: ttt_run(trainer, tokens)


def ttt_run(trainer, tokens: torch.Tensor):
    """Score-first TTT over `tokens` with the trainer's model, batch and devices (sliding when eval.stride > 0)."""
    from golflab.eval.ttt import ttt_evaluate

    cfg, seq = trainer.cfg, trainer.cfg.model.seq_len
    if cfg.eval.packing != "stream":
        raise ConfigError("eval.ttt scores the stream's windows; it does not apply to eval.packing='best_fit'")
    net = trainer.compiled
    trainer.model.eval()
    try:
        return ttt_evaluate(trainer.model, lambda x, y: net(x, y, reduction="none"), tokens, seq,
                            trainer.sources.byte_table, cfg.eval.ttt, stride=cfg.eval.stride,
                            batch_seqs=max(1, cfg.eval.batch_tokens // (trainer.env.world_size * seq)),
                            rank=trainer.env.rank, world_size=trainer.env.world_size, device=trainer.device,
                            autocast_dtype=trainer.amp, zero_byte_nats=cfg.eval.zero_byte_nats)
    finally:
        trainer.model.train()
