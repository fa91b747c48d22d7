"""The logits protocol between the trusted harness and a model server running a proposal's code.

Bulk data goes through one shared-memory file (np.memmap): `rows x seq` int64 inputs the harness
writes, then `rows x seq x vocab` float32 scores the server writes. Control messages are JSON lines:
requests on the server's stdin, answers on a separate pipe (so whatever the proposal prints on stdout
cannot forge an answer). The server only ever gets input windows, never targets; the harness copies
the scores out before it checks them and keeps the targets to itself.
"""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path
from typing import Any

import numpy as np

from golflab.errors import GolflabError


class Buffer:
    """The shared input/score arrays of one server, mapped by both sides from the same file."""

    def __init__(self, path: Path, rows: int, seq: int, vocab: int, create: bool = False):
        self.path, self.rows, self.seq, self.vocab = Path(path), rows, seq, vocab
        n_in, n_out = rows * seq * 8, rows * seq * vocab * 4
        if create:
            with open(self.path, "wb") as f:
                f.truncate(n_in + n_out)
        self.inputs = np.memmap(self.path, dtype=np.int64, mode="r+", offset=0, shape=(rows, seq))
        self.scores = np.memmap(self.path, dtype=np.float32, mode="r+", offset=n_in, shape=(rows, seq, vocab))


def send(fd: int, msg: dict[str, Any]) -> None:
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


class LineReader:
    """JSON lines from a file descriptor, with a timeout (select), for the harness side."""

    def __init__(self, fd: int):
        self.fd, self.pending = fd, b""

    def read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise GolflabError(f"the model server did not answer within {timeout:g} s")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise GolflabError("the model server exited without answering")
            self.pending += chunk
            if len(self.pending) > 1 << 20:
                raise GolflabError("the model server sent an over-long message")
        line, self.pending = self.pending.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            raise GolflabError("the model server sent a malformed message") from None
        if not isinstance(msg, dict):
            raise GolflabError("the model server sent a malformed message")
        return msg
