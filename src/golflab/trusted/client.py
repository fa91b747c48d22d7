"""The harness side of the logits protocol: start a model server on a proposal's code, send it input
windows, get back checked scores (shape, finite), stop it. See golflab.trusted.protocol."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from golflab.engine.backend import stop_tree
from golflab.errors import GolflabError
from golflab.trusted.protocol import Buffer, LineReader

START_TIMEOUT_S = 600.0  # loading the model (and compiling it on a GPU)
ANSWER_TIMEOUT_S = 300.0  # one batch of scores


class ModelServer:
    """`server(x)`: (rows, seq) int64 token windows -> (rows, seq, vocab) float32 scores (a copy)."""

    def __init__(self, python: str, config: Path, weights: Path, vocab: int, rows: int, seq: int, workdir: Path,
                 env: dict[str, str], log: Path, wrap: Callable[[list[str]], list[str]] = list):
        self.rows, self.seq, self.vocab, self.calls = rows, seq, vocab, 0
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
        self.tmp = Path(tempfile.mkdtemp(prefix="golflab-scores-", dir=shm))
        self.buf = Buffer(self.tmp / "buffer", rows, seq, vocab, create=True)
        r, w = os.pipe()
        cmd = [python, "-m", "golflab.trusted.server", "--config", str(config), "--weights", str(weights),
               "--vocab", str(vocab), "--rows", str(rows), "--seq", str(seq), "--buffer", str(self.buf.path),
               "--answer-fd", str(w)]
        try:
            with open(log, "ab") as fh:
                self.proc = subprocess.Popen(wrap(cmd), cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=fh,
                                             stderr=subprocess.STDOUT, pass_fds=(w,), start_new_session=True)
        finally:
            os.close(w)
        self.reader = LineReader(r)
        try:
            self._answer(START_TIMEOUT_S, "ready")
        except GolflabError:
            self.close()
            raise

    def _answer(self, timeout: float, key: str) -> None:
        msg = self.reader.read(timeout)
        if "error" in msg:
            raise GolflabError(f"the model server failed: {str(msg['error'])[:300]}")
        if not msg.get(key):
            raise GolflabError(f"the model server sent {str(msg)[:200]} instead of {key!r}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) != (self.rows, self.seq):
            raise GolflabError(f"internal: a batch of shape {tuple(x.shape)}, the server takes {(self.rows, self.seq)}")
        self.buf.inputs[:] = x.cpu().numpy()
        try:
            self.proc.stdin.write(b'{"op": "scores"}\n')
            self.proc.stdin.flush()
        except OSError:
            raise GolflabError("the model server exited") from None
        self._answer(ANSWER_TIMEOUT_S, "ok")
        self.calls += 1
        scores = torch.from_numpy(np.array(self.buf.scores))  # a copy: the server cannot change it afterwards
        if not bool(torch.isfinite(scores).all()):
            raise GolflabError("the model's scores are not all finite (NaN or inf)")
        return scores.to(x.device)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(b'{"op": "close"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop_tree(self.proc, grace=2.0)
        os.close(self.reader.fd)
        del self.buf
        for p in self.tmp.iterdir():
            p.unlink()
        self.tmp.rmdir()

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
