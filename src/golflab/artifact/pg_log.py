"""A run's train log in the format of parameter-golf's train_gpt.py, rebuilt from the run's own files.

Layout (as the reference's `log0` writes it): the code snapshot, a line of 100 "=", `Running Python`,
`Running PyTorch`, nvidia-smi's output, another line of "=", then the run's lines: model_params,
world_size / grad_accum_steps, seed, `step:N/T train_loss:... train_time:...ms step_avg:...ms`,
`step:N/T val_loss:... val_bpb:...`, `stopping_early: wallclock_cap ...`, the artifact sizes and the
final `final_<quant>_<compress>_roundtrip[_exact] val_loss:... val_bpb:...` lines. Every number comes
from result.json, metrics.jsonl and environment.json; a value the run did not record is not written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from golflab.artifact.environment import ENVIRONMENT_FILE
from golflab.config.schema import RunConfig
from golflab.errors import GolflabError

RULE = "=" * 100


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError as exc:
        raise GolflabError(f"{path} is not valid JSON Lines ({exc})") from None


def read_environment(run_dir: Path) -> dict[str, Any]:
    path = run_dir / ENVIRONMENT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def metric_label(cfg: RunConfig) -> str:
    """`int8_zlib` for int8 / int8_pg + zlib: the name in the line reviewers look for."""
    return f"{cfg.artifact.quant.removesuffix('_pg')}_{cfg.artifact.compress}"


def headline(result: dict[str, Any]) -> tuple[float, float, str]:
    """(val_loss, val_bpb, which) after the artifact round trip, sliding when it was measured."""
    a = result.get("artifact") or {}
    if a.get("sliding_val_bpb") is not None:
        return a["sliding_val_loss"], a["sliding_val_bpb"], "artifact round trip, sliding window"
    if a.get("val_bpb") is not None:
        return a["val_loss"], a["val_bpb"], "artifact round trip"
    return result["val_loss"], result["val_bpb"], "before quantization"


def render_log(cfg: RunConfig, result: dict[str, Any], run_dir: Path, script: str) -> str:
    env = read_environment(run_dir)
    steps = int(result["steps"])
    total_steps = cfg.budget.steps or steps
    lines = [script.rstrip("\n"), RULE]
    if env:
        lines += [f"Running Python {env['python']}", f"Running PyTorch {env['pytorch']}"]
        if env.get("nvidia_smi"):
            lines.append(env["nvidia_smi"].rstrip("\n"))
    lines += [RULE, f"model_params:{result['params']}",
              f"world_size:{result['world_size']} grad_accum_steps:{cfg.train.micro_batches // result['world_size']}",
              f"seed:{result['seed']}"]
    for m in read_jsonl(run_dir / "metrics.jsonl"):
        step, ms = int(m["step"]), 1000.0 * float(m["elapsed_s"])
        timing = f"train_time:{ms:.0f}ms step_avg:{ms / max(step, 1):.2f}ms"
        if m["kind"] == "train" and m.get("loss") is not None:
            lines.append(f"step:{step}/{total_steps} train_loss:{m['loss']:.4f} {timing}")
        elif m["kind"] == "val" and m.get("val_loss") is not None:
            lines.append(f"step:{step}/{total_steps} val_loss:{m['val_loss']:.4f} val_bpb:{m['val_bpb']:.4f} {timing}")
    train_ms = 1000.0 * float(result["train_seconds"])
    if cfg.budget.seconds > 0 and result["train_seconds"] >= cfg.budget.seconds:
        lines.append(f"stopping_early: wallclock_cap train_time:{train_ms:.0f}ms step:{steps}/{total_steps}")
    if result.get("peak_mem_gb") is not None:
        lines.append(f"peak memory allocated: {result['peak_mem_gb'] * 1024:.0f} MiB")
    a = result.get("artifact")
    if a:
        code = len(script.encode("utf-8"))
        label = f"{cfg.artifact.quant.removesuffix('_pg')}+{cfg.artifact.compress}"
        lines += [f"Serialized model {label}: {a['bytes_weights']} bytes", f"Code size: {code} bytes",
                  f"Total submission size {label}: {a['bytes_weights'] + code} bytes"]
        loss, bpb, which = headline(result)
        if "sliding" in which:
            lines.append(f"final_eval_mode:sliding_window stride:{cfg.eval.stride}")
        name = f"final_{metric_label(cfg)}_roundtrip"
        eval_ms = 1000.0 * float(result["eval_seconds"])  # the whole final evaluation, an upper bound
        lines += [f"{name} val_loss:{loss:.4f} val_bpb:{bpb:.4f} eval_time:{eval_ms:.0f}ms",
                  f"{name}_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}"]
    return "\n".join(lines) + "\n"
