"""What a parameter-golf train log says, in the reference train_gpt.py's format (which golflab's
export writes too): the code snapshot, a line of 100 "=", Python / PyTorch versions, nvidia-smi, the
step lines, and the final `..._roundtrip_exact val_loss:... val_bpb:...` line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from golflab.errors import GolflabError

RULE = "=" * 100
_TRAIN_TIME = re.compile(r"train_time:(\d+(?:\.\d+)?)ms")
_EVAL_TIME = re.compile(r"eval_time:(\d+(?:\.\d+)?)ms")
_EXACT = re.compile(r"^(\S+_exact) val_loss:([-\d.eE+]+) val_bpb:([-\d.eE+]+)")
_SEED = re.compile(r"^seed:(\d+)\s*$")
_TOTAL = re.compile(r"^Total submission size[^:]*: (\d+) bytes")
_WORLD = re.compile(r"world_size:(\d+)")
_STEP_AVG = re.compile(r"step_avg:(\d+(?:\.\d+)?)ms")
_SMI_GPU = re.compile(r"^\|\s+\d+\s+(NVIDIA .+?)\s{2,}")  # a GPU row of nvidia-smi's table


@dataclass
class TrainLog:
    path: Path
    code: str  # the snapshot before the first line of "=" (empty when the log has none)
    seed: int | None = None
    val_loss: float | None = None
    val_bpb: float | None = None
    metric: str = ""  # the name on the exact line, e.g. final_int8_zlib_roundtrip_exact
    train_ms: float | None = None  # the largest train_time logged
    eval_ms: float | None = None  # sum of eval_time on final_* lines
    total_bytes: int | None = None  # the last "Total submission size ...: N bytes"
    world_size: int | None = None
    step_avg_ms: float | None = None  # the last step_avg logged
    wallclock_stop: bool = False  # "stopping_early: wallclock_cap": the cap ended training mid-budget
    gpus: list[str] = field(default_factory=list)  # GPU names from the nvidia-smi table

    @property
    def hardware(self) -> str:
        if not self.gpus:
            return "unknown (no nvidia-smi table)"
        names = sorted(set(self.gpus))
        return f"{len(self.gpus)}x {', '.join(names)}"


def parse_log(path: Path) -> TrainLog:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise GolflabError(f"cannot read train log {path}: {exc.strerror or exc}") from None
    code, sep, rest = text.partition("\n" + RULE + "\n")
    if not sep:
        code, rest = "", text
    log = TrainLog(path, code)
    eval_ms = 0.0
    for line in rest.splitlines():
        if m := _SMI_GPU.match(line):
            log.gpus.append(m.group(1))
        if m := _SEED.match(line):
            log.seed = int(m.group(1))
        if m := _EXACT.match(line):
            log.metric, log.val_loss, log.val_bpb = m.group(1), float(m.group(2)), float(m.group(3))
        if m := _TOTAL.match(line):
            log.total_bytes = int(m.group(1))
        if m := _WORLD.search(line):
            log.world_size = int(m.group(1))
        if m := _STEP_AVG.search(line):
            log.step_avg_ms = float(m.group(1))
        if line.startswith("stopping_early: wallclock_cap"):
            log.wallclock_stop = True
        if line.startswith("final_") and (m := _EVAL_TIME.search(line)):
            eval_ms += float(m.group(1))
            log.eval_ms = eval_ms
        for m in _TRAIN_TIME.finditer(line):
            log.train_ms = max(log.train_ms or 0.0, float(m.group(1)))
    return log


def record_logs(folder: Path) -> list[TrainLog]:
    """The per-seed train logs of a record folder (train_seed*.log, else train*.log), sorted by name."""
    if not folder.is_dir():
        raise GolflabError(f"record folder {folder} does not exist")
    files = sorted(folder.glob("train_seed*.log")) or sorted(folder.glob("train*.log"))
    if not files:
        raise GolflabError(f"{folder} holds no train logs (train*.log)")
    return [parse_log(f) for f in files]


def seed_losses(folder: Path) -> list[float]:
    """The per-seed final val_loss of a record folder, read from its logs."""
    logs = record_logs(folder)
    missing = [lg.path.name for lg in logs if lg.val_loss is None]
    if missing:
        raise GolflabError(f"{folder}: no final '..._exact val_loss:' line in {', '.join(missing)}")
    return [lg.val_loss for lg in logs if lg.val_loss is not None]
