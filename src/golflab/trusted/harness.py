"""The trusted measurement of one run of a code proposal (see golflab.trusted).

Trusted inputs (config, byte table, val and test tokens) are read before any proposal code starts.
Then the proposal's trainer trains on a train-only view of the dataset in a child process, timed and
stopped from here; a second child process with the proposal's code loads the weights it saved and
answers scores for input windows; the probes, the loss, the bytes and the result record are computed
here. Everything the proposal's processes write stays under RUN/untrusted/ and is never read for a
metric (its result.json is read only for its account of the budget, which is checked).
"""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from golflab import __version__
from golflab.config.loader import config_hash, from_toml_file, to_toml
from golflab.config.schema import RunConfig
from golflab.data.dataset import Dataset
from golflab.engine.backend import Executor, stop_tree
from golflab.engine.outcome import log_tail, read_json
from golflab.errors import DataError, GolflabError
from golflab.eval.evaluate import EvalResult, eval_windows, evaluate
from golflab.train.loop import resolve_vocab
from golflab.train.runlog import EXPORT_MARK, code_version, write_json_atomic
from golflab.train.sources import DataSources, sources_from_config
from golflab.trusted.budget import BudgetError, checked_budget, wall_limit
from golflab.trusted.client import ModelServer
from golflab.trusted.integrity import IntegrityError, check_unchanged, fingerprint
from golflab.trusted.isolation import Jail, library_dirs
from golflab.trusted.probes import LeakageError, SpotChecked, probe_model
from golflab.trusted.view import build_train_view

UNTRUSTED = "untrusted"  # RUN/untrusted/: everything the proposal's processes see or write
MAX_BUFFER_BYTES = 1 << 29  # shared score buffer: caps the rows per request
MARKER = "GOLFLAB_TRUSTED_RUN"  # in the environment of every process of a proposal (to sweep leftovers)


def trainer_config(cfg: RunConfig, view: Path) -> RunConfig:
    """The run's config as the proposal's trainer gets it: the train-only view, and no evaluation or
    artifact of its own (the harness measures). Nothing here changes how it trains."""
    t = copy.deepcopy(cfg)
    t.data.path, t.data.tokenizer = str(view), ""
    t.eval.enabled, t.eval.val_every, t.eval.also_splits, t.artifact.enabled = False, 0, [], False
    return t


def export_commit(code_dir: Path) -> str | None:
    mark = read_json(code_dir / EXPORT_MARK)
    return str(mark["commit"]) if mark and isinstance(mark.get("commit"), str) else None


def sweep(marker: str) -> int:
    """SIGKILL every process (of this user) whose environment carries the run's marker: a proposal's
    process that left the trainer's process group (setsid, a daemon) does not outlive the run."""
    needle, n = marker.encode() + b"\0", 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if needle in (p / "environ").read_bytes() + b"\0":
                os.kill(int(p.name), signal.SIGKILL)
                n += 1
        except (OSError, ProcessLookupError):
            continue
    return n


class Harness:
    def __init__(self, run_dir: Path, code_dir: Path, python: str, nproc: int = 1, max_wall_s: float | None = None):
        self.run_dir, self.code_dir, self.python, self.nproc = run_dir.resolve(), code_dir.resolve(), python, nproc
        self.max_wall_s = max_wall_s
        self.untrusted = self.run_dir / UNTRUSTED
        self.spot_checks = 0
        self.jail: Jail | None = None
        self.marker = f"{MARKER}={secrets.token_hex(16)}"
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._log = open(self.run_dir / "trusted.log", "a", encoding="utf-8")  # noqa: SIM115 - closed in run()

    def log(self, msg: str) -> None:
        line = f"[trusted {time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        key, value = self.marker.split("=", 1)
        # no bytecode written into the export: every run of a proposal starts from the same files
        return {**env, "PYTHONPATH": str(self.code_dir / "src"), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                key: value}

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = from_toml_file(self.run_dir / "config.toml")
        sha, dirty = code_version()
        result: dict[str, Any] = {
            "status": "running", "error": None, "rejected": None, "seed": cfg.seed, "config_hash": config_hash(cfg),
            "world_size": self.nproc, "device": "cpu", "git_sha": export_commit(self.code_dir), "git_dirty": False,
            "golflab_version": __version__, "artifact": None, "mfu": None,
            "measured_by": {"harness": "golflab.trusted", "golflab_sha": sha, "golflab_dirty": dirty,
                            "code_dir": str(self.code_dir)}}
        try:
            result.update(self.measure(cfg))
            result["status"] = "ok"
        except (LeakageError, BudgetError, IntegrityError) as exc:
            result.update(status="failed", error=str(exc), rejected=str(exc))
        except GolflabError as exc:
            result.update(status="failed", error=str(exc))
        except BaseException as exc:
            result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            result["isolation"] = self.jail.record() if self.jail is not None else None
            killed = sweep(self.marker)
            if killed:
                self.log(f"stopped {killed} leftover process(es) of the proposal")
            write_json_atomic(self.run_dir / "result.json", result)  # last: whatever a proposal wrote there is replaced
            self.log(f"result: {result['status']} {result.get('error') or ''}".strip())
            self._log.close()
        return result

    def measure(self, cfg: RunConfig) -> dict[str, Any]:
        # every trusted input is read now, before any of the proposal's code runs
        ds = Dataset.open(cfg.data.path, tokenizer=cfg.data.tokenizer)
        sources = sources_from_config(cfg)
        tokens = self.eval_splits(cfg, sources)
        vocab = resolve_vocab(cfg, sources)
        before = fingerprint()
        if self.untrusted.exists():
            shutil.rmtree(self.untrusted)
        view = build_train_view(ds, self.untrusted / "data")
        train_dir = self.untrusted / "run"
        train_dir.mkdir()
        self.jail = self.make_jail(ds, view)
        self.log(f"isolation: {self.jail.record()}")
        (train_dir / "config.toml").write_text(to_toml(trainer_config(cfg, view)), encoding="utf-8")

        wall = self.train(cfg, train_dir)
        check_unchanged(before)
        claimed = read_json(train_dir / "result.json") or {}  # untrusted: only its budget account is used
        budget = checked_budget(cfg, claimed, wall)
        weights = train_dir / "model.pt"
        if not weights.is_file():
            raise GolflabError("the trainer exited without saving model.pt")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        params = sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor))
        del state

        seq = cfg.model.seq_len
        rows = max(1, min(cfg.eval.batch_tokens // seq, MAX_BUFFER_BYTES // (seq * vocab * 4)))
        gen = torch.Generator().manual_seed(secrets.randbits(62))  # unpredictable to the proposal
        t_eval = time.perf_counter()
        with ModelServer(self.python, train_dir / "config.toml", weights, vocab, rows, seq, self.untrusted,
                         self.child_env(), self.untrusted / "server.log", self.jail.wrap) as server:
            main = tokens[cfg.eval.split]
            probes = probe_model(server, rows, seq, sources.vocab_size, main, gen)
            self.log(f"probes passed: {probes}")
            out: dict[str, Any] = {"eval_split": cfg.eval.split, "probes": probes, "splits": {}}
            std = self.score(server, cfg, sources, main, rows, gen)
            out.update(val_loss=std.val_loss, val_bpb=std.val_bpb, sliding_val_loss=None, sliding_val_bpb=None)
            self.log(f"{cfg.eval.split}: val_loss {std.val_loss:.4f} val_bpb {std.val_bpb:.4f} ({std.tokens} tokens)")
            if cfg.eval.stride > 0:
                sw = self.score(server, cfg, sources, main, rows, gen, stride=cfg.eval.stride)
                out.update(sliding_val_loss=sw.val_loss, sliding_val_bpb=sw.val_bpb)
            for split, toks in tokens.items():
                if split != cfg.eval.split:
                    r = self.score(server, cfg, sources, toks, rows, gen)
                    out["splits"][split] = {"val_loss": r.val_loss, "val_bpb": r.val_bpb}
                    self.log(f"{split}: val_loss {r.val_loss:.4f} val_bpb {r.val_bpb:.4f}")
            probes["spot_checks"] = self.spot_checks
        check_unchanged(before)
        secs = budget["train_seconds"]
        out.update(budget, wall_seconds=wall, eval_seconds=time.perf_counter() - t_eval, params=params,
                   tokens_per_second=budget["tokens"] / max(secs, 1e-9),
                   ms_per_step=1000 * secs / max(budget["steps"], 1), peak_mem_gb=claimed.get("peak_mem_gb"),
                   device=claimed.get("device") if isinstance(claimed.get("device"), str) else self.device.type,
                   untrusted_result=str((train_dir / "result.json").relative_to(self.run_dir)))
        return out

    def make_jail(self, ds: Dataset, view: Path) -> Jail:
        """The proposal's processes: the dataset hidden (when the view reaches the train shards by hard links
        and nothing the children need lies inside it), the run dir, the code and the libraries read-only."""
        data = ds.path.resolve()
        needed = [self.run_dir, self.code_dir, *library_dirs()]
        linked = not any(p.is_symlink() for p in view.iterdir())
        hide = [data] if linked and not any(p == data or data in p.parents for p in needed) else []
        return Jail(hide, needed, [self.untrusted])

    def eval_splits(self, cfg: RunConfig, sources: DataSources) -> dict[str, torch.Tensor]:
        """The main eval split and eval.also_splits (one the dataset lacks is skipped, as the trainer does)."""
        out = {cfg.eval.split: sources.eval_tokens(cfg.eval.split)}
        for split in cfg.eval.also_splits:
            if split not in out:
                try:
                    out[split] = sources.eval_tokens(split)
                except DataError as exc:
                    self.log(f"skipping the {split} eval: {exc}")
        return out

    def train(self, cfg: RunConfig, train_dir: Path) -> float:
        """Run the proposal's trainer; its wall time (stopped past the limit)."""
        cmd = Executor(python=self.python).train_cmd(train_dir, self.nproc)
        limit = wall_limit(cfg, self.max_wall_s)
        self.log(f"training with the proposal's code ({self.code_dir}), wall limit "
                 f"{'none' if limit is None else f'{limit:.0f} s'}")
        t0 = time.monotonic()
        with open(self.untrusted / "trainer.log", "ab") as fh:
            proc = subprocess.Popen(self.jail.wrap(cmd), cwd=self.untrusted, env=self.child_env(), stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise BudgetError(f"the trainer ran past the wall-clock limit of {limit:.0f} s; stopped") from None
        finally:
            stop_tree(proc, grace=5.0)
            sweep(self.marker)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            tail = log_tail(self.untrusted, lines=3, names=("trainer.log",)).replace("\n", " | ")
            raise GolflabError(f"the proposal's trainer failed (exit {proc.returncode}): {tail[-400:]}")
        return wall

    def score(self, server: ModelServer, cfg: RunConfig, sources: DataSources, tokens: torch.Tensor, rows: int,
              gen: torch.Generator, stride: int = 0) -> EvalResult:
        """The trusted evaluator on the model's scores: windows in a random order, spot-checked for leaks."""
        seq = cfg.model.seq_len
        n = len(eval_windows(tokens.numel(), seq, stride)[0])
        order = torch.randperm(n, generator=gen).numpy().astype(np.int64)
        checked = SpotChecked(server, (n + rows - 1) // rows, tokens, gen)

        def nats(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            scores = checked(x)
            return F.cross_entropy(scores.view(-1, scores.size(-1)).float(), y.reshape(-1), reduction="none")

        res = evaluate(nats, tokens, seq, sources.byte_table, stride=stride, batch_seqs=rows, device=self.device,
                       order=order)
        self.spot_checks += checked.checked
        return res
