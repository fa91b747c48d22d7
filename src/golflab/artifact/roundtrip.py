"""After training: squeeze the weights into the artifact, load them back and re-evaluate.

The artifact's size is the compressed weights plus the bytes of the code a submission ships (the
stand-alone train_gpt.py that `golflab export` generates for this config); its val_bpb is measured on
the dequantized weights, standard and sliding, exactly as the run's own eval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from golflab.artifact.environment import write_environment
from golflab.artifact.pack import roundtrip_state_dict, write_artifact
from golflab.artifact.size import measure_artifact
from golflab.config.schema import ArtifactConfig, RunConfig


def artifact_name(cfg: ArtifactConfig) -> str:
    return f"model.{cfg.quant}.{cfg.compress}.glf"


def code_bytes(cfg: RunConfig) -> bytes:
    """The code a submission ships: the generated stand-alone train_gpt.py for this config."""
    from golflab.artifact.export import render_script

    return render_script(cfg).encode("utf-8")


def squeeze_and_evaluate(model: torch.nn.Module, cfg: RunConfig, evaluate, out_dir: Path | None,
                         stride: int) -> dict[str, Any]:
    """Quantize + compress `model`'s weights, re-evaluate with the round-tripped weights (via
    `evaluate(stride) -> EvalResult`), restore the original weights and return the artifact record."""
    a = cfg.artifact
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cpu_sd = {k: v.detach().cpu() for k, v in original.items()}
    restored, blob = roundtrip_state_dict(cpu_sd, a)
    size = measure_artifact(blob, code_bytes(cfg), a.limit_bytes)
    if out_dir is not None:
        write_artifact(out_dir / artifact_name(a), blob)
    record: dict[str, Any] = {"quant": a.quant, "compress": a.compress, **size.to_dict()}
    try:
        model.load_state_dict({k: v.to(original[k].device) for k, v in restored.items()}, strict=True)
        std = evaluate(0)
        record.update(val_loss=std.val_loss, val_bpb=std.val_bpb, sliding_val_loss=None, sliding_val_bpb=None)
        if stride > 0:
            sw = evaluate(stride)
            record.update(sliding_val_loss=sw.val_loss, sliding_val_bpb=sw.val_bpb)
    finally:
        model.load_state_dict(original, strict=True)
    return record


def artifact_roundtrip(trainer, tokens: torch.Tensor) -> dict[str, Any]:
    cfg = trainer.cfg
    if trainer.out_dir is not None and trainer.env.is_main:
        write_environment(trainer.out_dir)  # the run's own machine, for the exported log's header
    record = squeeze_and_evaluate(trainer.model, cfg, lambda stride: trainer.evaluate(tokens, stride=stride),
                                  trainer.out_dir if trainer.env.is_main else None, cfg.eval.stride)
    trainer.log.info(f"artifact {record['quant']}+{record['compress']}: {record['bytes_total']:,} bytes "
                     f"({'fits' if record['fits'] else 'OVER'} {record['limit_bytes']:,}); "
                     f"val_bpb {record['val_bpb']:.4f}"
                     + (f", sliding {record['sliding_val_bpb']:.4f}" if record.get("sliding_val_bpb") else ""))
    return record
