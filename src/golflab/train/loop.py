"""One training run: RunConfig + data -> run directory with metrics, weights and result.json.

The clock counts only training: compile warm-up, evaluation and checkpointing are excluded, as in
parameter golf. The same code runs eagerly on CPU, compiled on one GPU, and under torchrun with
gradient accumulation keeping the global batch (grad_accum = micro_batches // world_size).
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from golflab import __version__
from golflab.artifact.roundtrip import artifact_roundtrip
from golflab.config.loader import config_hash, to_toml
from golflab.config.schema import RunConfig
from golflab.errors import ConfigError, DataError, GolflabError, TrainingError
from golflab.eval.evaluate import EvalResult, eval_options, evaluate
from golflab.model.gpt import GPT, build_model
from golflab.model.info import flops_per_token, peak_flops
from golflab.optim.table import TableOptimizer
from golflab.train.backends import autocast_dtype, ready_model, setup_backends
from golflab.train.compiling import (
    compile_cache_dir,
    compile_model,
    fresh_graphs_unless,
    graphs_from_cache,
    load_compile_cache,
    save_compile_cache,
    sdp_flags,
    warm_up_compile,
)
from golflab.train.distributed import DistEnv, agree, barrier, init_distributed, shutdown
from golflab.train.runlog import RunLog, code_version, driver_version
from golflab.train.schedule import Clock, budget_used, lr_scale
from golflab.train.signals import StopOnSignal
from golflab.train.sources import DataSources, sources_from_config
from golflab.train.state import EMA, load_checkpoint, restore, save_checkpoint, snapshot

NAN_CHECK_EVERY = 25  # steps between host syncs that check the loss for NaN / divergence


def resolve_vocab(cfg: RunConfig, sources: DataSources) -> int:
    v = cfg.model.vocab_size or sources.vocab_size
    if v < sources.vocab_size:
        raise DataError(f"model.vocab_size={v} is smaller than the dataset tokenizer's vocab ({sources.vocab_size}); "
                        f"set model.vocab_size={sources.vocab_size} or 0 to take it from the data")
    return v


class Trainer:
    """One run's model, optimizer, data and clock. `resumable=False` (a process with no --resume, such
    as the exported train_gpt.py) writes no checkpoint.pt; `telemetry=False` leaves out what only
    describes the run (MFU); `lab=False` (a process that runs only this job, such as train_gpt.py) reads
    and writes no compile cache (GOLFLAB_COMPILE_CACHE) and keeps no watch on graphs an earlier job of
    the process compiled (and `train(lab=False)` opens the dataset without golflab's layout checks):
    flags the exporter folds, so the script carries none of it."""

    def __init__(self, cfg: RunConfig, out_dir: Path | None, sources: DataSources, env: DistEnv, log: RunLog,
                 resumable: bool = True, telemetry: bool = True, lab: bool = True):
        self.cfg, self.out_dir, self.sources, self.env, self.log = cfg, out_dir, sources, env, log
        self.resumable = resumable
        self.telemetry = telemetry
        self.lab = lab
        t = cfg.train
        if t.micro_batches % env.world_size:
            raise ConfigError(f"train.micro_batches={t.micro_batches} must be divisible by the world size {env.world_size}")
        self.accum = t.micro_batches // env.world_size
        self.local_tokens = t.batch_tokens // (env.world_size * self.accum)
        self.device = env.device
        self.cuda = self.device.type == "cuda"
        if self.cuda and lab:  # a persistent worker runs many jobs: the peak is this run's own
            torch.cuda.reset_peak_memory_stats(self.device)
        self.amp = autocast_dtype(cfg, self.device)
        torch.manual_seed(cfg.seed)
        self.vocab = resolve_vocab(cfg, sources)
        self.model: GPT = ready_model(build_model(cfg.model, cfg.seed, self.vocab).to(self.device), cfg, self.device)
        self.use_compile = t.compile in ("on", "regional") or (t.compile == "auto" and self.cuda)
        if self.use_compile and lab and fresh_graphs_unless(self.compile_key()):
            log.info("compile: this process's graphs were for another model or kernels; compiling afresh")
        if self.use_compile and lab and (n := load_compile_cache(log.info)):
            log.info(f"compile cache: {n} artifact file(s) loaded from {compile_cache_dir()}")
        self.compiled = compile_model(self.model, regional=t.compile == "regional") if self.use_compile else self.model
        self.ddp = DDP(self.compiled, device_ids=[env.local_rank] if self.cuda else None,
                       broadcast_buffers=False) if env.distributed else None
        self.params = sum(p.numel() for p in self.model.parameters())
        self.optimizer = TableOptimizer(self.model, cfg.optim, self.device)
        self.loader = sources.train_loader(env.rank, env.world_size, cfg.seed)
        self.val_tokens = sources.eval_tokens("val") if cfg.eval.enabled else None
        self.clock = Clock()
        self.ema = EMA(self.model, cfg.schedule.ema_decay) if cfg.schedule.ema_decay > 0 else None
        self.stop_signal = 0  # set by request_stop (SIGINT / SIGTERM): stop after the current step
        self.last_loss: torch.Tensor | None = None

    def request_stop(self, signum: int) -> None:
        self.stop_signal = signum

    # ---- one optimizer step -------------------------------------------------------------------
    def train_step(self, scale: float, progress: float = 0.0) -> torch.Tensor:
        net = self.ddp or self.compiled
        total = torch.zeros((), device=self.device)
        for micro in range(self.accum):
            if self.ddp is not None:
                self.ddp.require_backward_grad_sync = micro == self.accum - 1
            x, y = self.loader.next_batch(self.local_tokens, self.cfg.model.seq_len)
            if self.cuda:  # from pinned memory the copy is asynchronous; from pageable it blocks
                x, y = x.pin_memory(), y.pin_memory()
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16, enabled=self.amp is not None):
                loss = net(x, y)
            total += loss.detach()
            (loss / self.accum).backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.set_schedule(scale, self.clock.step, progress=progress)
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.update()
        return total / self.accum

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, tokens: torch.Tensor, stride: int = 0, limit: int = 0) -> EvalResult:
        seq = self.cfg.model.seq_len
        batch_seqs = max(1, self.cfg.eval.batch_tokens // (self.env.world_size * seq))
        net = self.compiled
        self.model.eval()
        try:
            return evaluate(lambda x, y: net(x, y, reduction="none"), tokens, seq, self.sources.byte_table,
                            stride=stride, batch_seqs=batch_seqs, rank=self.env.rank, world_size=self.env.world_size,
                            device=self.device, autocast_dtype=self.amp, max_tokens=limit,
                            **eval_options(self.cfg, self.sources.bos_id))
        finally:
            self.model.train()

    # ---- the loop -----------------------------------------------------------------------------
    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def compile_warmup(self) -> None:
        steps = self.cfg.schedule.compile_warmup_steps
        if steps <= 0:
            return
        t0 = time.perf_counter()
        snap = snapshot(self.model, self.optimizer, self.loader)
        ran = warm_up_compile(lambda: self.train_step(1.0), steps)
        self.sync()
        restore(snap, self.model, self.optimizer, self.loader)
        if self.ema is not None:
            self.ema = EMA(self.model, self.cfg.schedule.ema_decay)
        hits = f", {graphs_from_cache()} graphs from the cache" if self.use_compile and self.lab else ""
        self.log.info(f"compile warm-up: {ran} of at most {steps} steps in {time.perf_counter() - t0:.1f}s "
                      f"(not counted; state restored{hits})")

    @property
    def ckpt_path(self) -> Path | None:
        return self.out_dir / "checkpoint.pt" if self.out_dir else None

    def save(self) -> None:
        if self.ckpt_path is None or not self.env.is_main:
            return
        save_checkpoint(self.ckpt_path, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "loader": self.loader.state_dict(), "clock": vars(self.clock).copy(),
            "ema": self.ema.state_dict() if self.ema else None, "config_hash": config_hash(self.cfg),
        })

    def resume(self) -> bool:
        if self.ckpt_path is None or not self.ckpt_path.exists():
            return False
        ck = load_checkpoint(self.ckpt_path, self.device)
        if ck["config_hash"] != config_hash(self.cfg):
            raise ConfigError(f"{self.ckpt_path} was written by a different config; use a fresh --out directory")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.loader.load_state_dict(ck["loader"])
        self.clock = Clock(**ck["clock"])
        if self.ema is not None and ck["ema"] is not None:
            self.ema.load_state_dict(ck["ema"])
        self.log.info(f"resumed from step {self.clock.step} ({self.clock.seconds:.1f}s trained)")
        return True

    def run(self, resume: bool = False) -> dict[str, Any]:
        cfg, log = self.cfg, self.log
        if not (self.resumable and resume and self.resume()):
            self.compile_warmup()
        clock = self.clock
        max_loss = cfg.train.max_loss or 3.0 * math.log(self.vocab)
        batch_tokens = cfg.train.batch_tokens
        self.start_clock()
        while True:
            stop = self.agree_clock()
            done = stop or budget_used(clock, cfg.budget, batch_tokens) >= 1.0
            val_every = cfg.eval.val_every if cfg.eval.enabled else 0
            if not done and val_every > 0 and clock.step > 0 and clock.step % val_every == 0:
                self.pause_clock()
                self.log_val(f"step {clock.step}", self.evaluate(self.val_tokens, limit=cfg.eval.val_tokens))
                self.start_clock()
            if done:
                break
            scale = lr_scale(clock, cfg.schedule, cfg.budget, batch_tokens)
            progress = min(budget_used(clock, cfg.budget, batch_tokens), 1.0)  # the clock ran on in a val eval
            loss = self.last_loss = self.train_step(scale, progress)
            clock.step += 1
            clock.tokens += batch_tokens
            self.tick_clock()
            logged = clock.step % cfg.train.log_every == 0 or clock.step <= 5  # and in train.log
            if logged or clock.step % NAN_CHECK_EVERY == 0:
                value = loss.item()
                if not math.isfinite(value) or value > max_loss:
                    raise TrainingError(
                        f"training diverged at step {clock.step}: loss {value} (limit {max_loss:.2f}); "
                        "lower the learning rates, add warmup or set optim.grad_clip")
                log.metric("train", step=clock.step, loss=value, lr_scale=scale, tokens=clock.tokens,
                           elapsed_s=clock.seconds)
                if logged:
                    log.info(f"step {clock.step} loss {value:.4f} lr_scale {scale:.3f} "
                             f"{1000 * clock.seconds / clock.step:.1f} ms/step")
            every = cfg.train.checkpoint_every if self.resumable else 0
            if every > 0 and clock.step % every == 0:
                self.pause_clock()
                self.save()
                self.start_clock()
        self.pause_clock()
        # only a StopOnSignal asks to stop, and train() sets one only when resumable
        result = self.interrupted() if stop and self.resumable else {**self.finish(), "status": "ok"}
        if self.lab:
            self.keep_compile_cache()
        return result

    def compile_key(self) -> dict[str, Any]:
        """What the compiled graphs depend on beyond dynamo's own guards."""
        return {"model": vars(self.cfg.model), "compile": self.cfg.train.compile, "local_tokens": self.local_tokens,
                "accum": self.accum, "world": self.env.world_size, "device": str(self.device), "torch": torch.__version__,
                "amp": str(self.amp), "sdp": sdp_flags()}

    def keep_compile_cache(self) -> None:
        """Save what this run compiled (training and eval graphs) where the next run, here or on a fresh
        machine given the folder, loads it."""
        if self.use_compile and self.env.is_main and (path := save_compile_cache(self.compile_key(), self.log.info)):
            self.log.info(f"compile cache: saved {path}")

    def interrupted(self) -> dict[str, Any]:
        """A stop request: checkpoint where the run stands (for --resume) instead of finishing it."""
        self.save()
        barrier(self.env)  # no rank exits (and has torchrun stop the rest) before rank 0 has saved
        clock = self.clock
        loss = self.last_loss.item() if self.last_loss is not None else None
        name = signal.Signals(self.stop_signal).name if self.stop_signal else "a stop request"
        self.log.info(f"interrupted by {name} at step {clock.step}; checkpoint saved")
        return {"status": "interrupted", "error": f"interrupted by {name} at step {clock.step}",
                "steps": clock.step, "tokens": clock.tokens, "train_seconds": clock.seconds, "train_loss": loss}

    # ---- the training clock: excludes eval, checkpoints and compile warm-up --------------------
    def agree_clock(self) -> bool:
        """Take rank 0's training seconds on every rank (one all-reduce, which also carries the stop
        flag), so ranks apply the same lr_scale and a seconds budget ends at the same step."""
        self.tick_clock()
        seconds, stop = agree(self.env, self.clock.seconds, self.stop_signal != 0)
        if not self.env.is_main:
            self.clock.seconds = seconds
            self._t0 = time.perf_counter() - seconds
        return stop

    def start_clock(self) -> None:
        self.sync()
        self._t0 = time.perf_counter() - self.clock.seconds  # when the clock would have started, unpaused

    def tick_clock(self) -> None:
        self.clock.seconds = time.perf_counter() - self._t0

    def pause_clock(self) -> None:
        self.sync()
        self.tick_clock()

    def finish(self) -> dict[str, Any]:
        cfg, clock = self.cfg, self.clock
        peak_mem = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        if self.resumable and cfg.train.checkpoint_every > 0:
            self.save()
        if self.ema is not None:
            self.ema.copy_to_model()
        if self.out_dir is not None and self.env.is_main:
            torch.save(self.model.state_dict(), self.out_dir / "model.pt")
        tps = clock.tokens / max(clock.seconds, 1e-9)
        peak = peak_flops(torch.cuda.get_device_name(self.device)) if self.telemetry and self.cuda else None
        out: dict[str, Any] = {
            "steps": clock.step, "tokens": clock.tokens, "train_seconds": clock.seconds,
            "tokens_per_second": tps, "ms_per_step": 1000 * clock.seconds / max(clock.step, 1),
            "mfu": tps * flops_per_token(cfg.model, self.vocab) / (peak * self.env.world_size) if peak else None,
            "peak_mem_gb": peak_mem, "params": self.params,
            "train_loss": self.last_loss.item() if self.last_loss is not None else None,
        }
        if not cfg.eval.enabled:  # the trusted harness measures model.pt itself
            return out
        t_eval = time.perf_counter()
        final_tokens = self.sources.eval_tokens(cfg.eval.split)
        std = self.evaluate(final_tokens, limit=cfg.eval.tokens)
        out.update(val_loss=std.val_loss, val_bpb=std.val_bpb, sliding_val_loss=None, sliding_val_bpb=None,
                   eval_split=cfg.eval.split)
        self.log_val(f"final {cfg.eval.split}:", std, f" ({std.tokens} tokens, {std.seconds:.1f}s)", final=True)
        if cfg.eval.stride > 0:
            sw = self.evaluate(final_tokens, stride=cfg.eval.stride, limit=cfg.eval.tokens)
            out.update(sliding_val_loss=sw.val_loss, sliding_val_bpb=sw.val_bpb)
            self.log_score(f"final sliding (stride {cfg.eval.stride}):", sw, f" ({sw.seconds:.1f}s)")
        out["splits"] = self.other_splits() if cfg.eval.also_splits else {}
        out["artifact"] = artifact_roundtrip(self, final_tokens) if cfg.artifact.enabled else None
        out["eval_seconds"] = time.perf_counter() - t_eval
        return out

    def other_splits(self) -> dict[str, dict[str, float]]:
        """Standard eval of the final model on `eval.also_splits`; a split the dataset lacks is skipped."""
        out: dict[str, dict[str, float]] = {}
        for split in self.cfg.eval.also_splits:
            if split == self.cfg.eval.split or split in out:
                continue
            try:
                tokens = self.sources.eval_tokens(split)
            except DataError as exc:
                self.log.info(f"skipping the {split} eval: {exc}")
                continue
            r = self.evaluate(tokens)
            out[split] = {"val_loss": r.val_loss, "val_bpb": r.val_bpb}
            self.log_score(f"final {split}:", r)
        return out

    def log_val(self, label: str, r: EvalResult, note: str = "", **final: bool) -> None:
        """A val score in metrics.jsonl, at the clock's step, and in train.log."""
        clock = self.clock
        self.log.metric("val", step=clock.step, val_loss=r.val_loss, val_bpb=r.val_bpb, tokens=clock.tokens,
                        elapsed_s=clock.seconds, **final)
        self.log_score(label, r, note)

    def log_score(self, label: str, r: EvalResult, note: str = "") -> None:
        self.log.info(f"{label} val_loss {r.val_loss:.4f} val_bpb {r.val_bpb:.4f}{note}")


PROVENANCE = ("git_sha", "git_dirty", "cuda_version", "cudnn_version", "driver_version")  # result.json keys


def base_result(cfg: RunConfig, env: DistEnv, telemetry: bool = True) -> dict[str, Any]:
    """result.json's identity keys; without telemetry the code and software versions but torch's are null."""
    device = torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else "cpu"
    return {"status": "running", "error": None, "seed": cfg.seed, "config_hash": config_hash(cfg),
            "world_size": env.world_size, "device": device, "golflab_version": __version__,
            "torch_version": torch.__version__,
            **(provenance(env.device) if telemetry else dict.fromkeys(PROVENANCE))}


def provenance(device: torch.device) -> dict[str, Any]:
    """The code's git SHA and dirty flag; the CUDA, cuDNN and NVIDIA driver versions (null on CPU): results
    can hinge on them."""
    sha, dirty = code_version()
    cuda = device.type == "cuda"
    cudnn = torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None
    return {"git_sha": sha, "git_dirty": dirty, "cuda_version": torch.version.cuda if cuda else None,
            "cudnn_version": cudnn, "driver_version": driver_version() if cuda else None}


def train(cfg: RunConfig, out_dir: Path | None, sources: DataSources | None = None, resume: bool = False,
          tracker: Any = None, resumable: bool = True, telemetry: bool = True, lab: bool = True) -> dict[str, Any]:
    """Run one training job; writes result.json (also on failure) and re-raises user errors. A stop signal
    returns status "interrupted" after checkpointing (when `resumable`; see Trainer for the three flags).
    `tracker` (main rank only) gets every metric record and the result, as RunLog writes them."""
    env = init_distributed()
    setup_backends(env.device, cfg, autocast_dtype(cfg, env.device) is None)
    log = RunLog(out_dir if env.is_main else None, tracker=tracker)  # other ranks' RunLog writes nothing
    if log.out_dir is not None:  # made by the RunLog
        (out_dir / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
    result = base_result(cfg, env, telemetry)
    stopper = StopOnSignal(announce=env.is_main) if resumable else None
    trainer = None
    try:
        if stopper is not None:
            stopper.install()
        trainer = Trainer(cfg, out_dir, sources or sources_from_config(cfg, check=lab), env, log, resumable=resumable,
                          telemetry=telemetry, lab=lab)
        log.info(f"{result['device']} x{env.world_size}, grad_accum {trainer.accum}, {trainer.params:,} params, "
                 f"config {result['config_hash']}")
        if stopper is not None:
            stopper.attach(trainer.request_stop)
        result.update(trainer.run(resume=resume))
        return result
    except BaseException as exc:
        if isinstance(exc, torch.cuda.OutOfMemoryError):  # said as a user error, in the config's terms
            err = TrainingError(f"out of GPU memory with train.batch_tokens={cfg.train.batch_tokens} and train."
                                f"micro_batches={cfg.train.micro_batches}; raise micro_batches or shrink the model")
            result.update(status="failed", error=str(err))
            raise err from None
        result.update(status="failed",
                      error=str(exc) if isinstance(exc, GolflabError) else f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if stopper is not None:
            stopper.uninstall()
            stopper.request_stop = None
        if env.is_main:
            log.result(result)
        log.close()
        trainer = None  # nothing may hold the process group when shutdown destroys it
        shutdown(env)
