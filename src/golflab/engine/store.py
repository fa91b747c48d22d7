"""The one experiment store of `lab run` and `auto`: a SQLite file (WAL) holding every finished run keyed by
(run key, seed) with its values and per-step metrics, the runs in flight, the experiments claimed, every
decision, and meta values. A killed engine replays from it: a stored run is never trained again.

One writer at a time: a writing Store holds an exclusive OS lock (fcntl.flock) on `<store>.lock`, which
names its pid and host; a second writer fails at once with that name. Readers (`lab status`, `lab
report`) open the file without the lock; SQLite's WAL lets them read while the writer works.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from golflab.engine.outcome import metric_value
from golflab.errors import GolflabError

SCHEMA_VERSION = "2"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  key TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL, error TEXT, values_json TEXT NOT NULL,
  run_dir TEXT NOT NULL, code_rev TEXT NOT NULL DEFAULT '', wall_s REAL, gpus INTEGER NOT NULL DEFAULT 0,
  node TEXT, gpu_name TEXT, slot TEXT, started_at REAL, finished_at REAL, adopted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, seed));
CREATE TABLE IF NOT EXISTS metrics (key TEXT NOT NULL, seed INTEGER NOT NULL, kind TEXT NOT NULL,
  values_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (key, seed);
CREATE TABLE IF NOT EXISTS inflight (key TEXT NOT NULL, seed INTEGER NOT NULL, pid INTEGER, run_dir TEXT NOT NULL,
  slot TEXT, started_at REAL, PRIMARY KEY (key, seed));
CREATE TABLE IF NOT EXISTS experiments (idx INTEGER PRIMARY KEY, name TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (idx INTEGER PRIMARY KEY, name TEXT NOT NULL, record TEXT NOT NULL,
  decided_at REAL NOT NULL);
"""
FAILED = ("failed", "crashed", "timeout", "interrupted", "rejected")  # a finished run without a usable result


@dataclass(frozen=True)
class RunRow:
    """A finished run: `status` ok or one of FAILED; `values` is result.json flattened (engine.outcome)."""

    key: str
    seed: int
    status: str
    values: dict[str, Any]
    run_dir: str
    error: str | None = None
    wall_s: float | None = None
    gpus: int = 0
    node: str | None = None
    gpu_name: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    adopted: bool = False
    code_rev: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def value(self, metric: str) -> float | None:
        """The metric of an ok run (None for failed runs and missing or non-finite values)."""
        if not self.ok:
            return None
        if metric == "time_to_target" and self.values.get(metric) == math.inf:
            return math.inf  # reached no target within the budget: censored, kept (a rank test handles it)
        return metric_value(self.values, metric)


@dataclass(frozen=True)
class Inflight:
    key: str
    seed: int
    pid: int | None
    run_dir: str
    slot: str | None
    started_at: float | None


@dataclass
class WriterLock:
    """An exclusive flock on `<store>.lock`; the file names the holder (pid@host) for the error message."""

    path: Path
    fh: TextIO | None = field(default=None, repr=False)

    def acquire(self, store: Path) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 (held open for the store's lifetime)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise GolflabError(f"{store} is in use by {holder}; wait for it to finish, or stop it "
                               "(`lab status` and `lab report` work meanwhile)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on host {socket.gethostname()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        fh.flush()
        self.fh = fh

    def release(self) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def _legacy(db: sqlite3.Connection) -> str | None:
    """The kind of an older golflab's store ("lab v1" / "auto v1"), None for a current or empty one."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
    if "arm" in cols:
        return "lab v1"
    if "cfg_hash" in cols:
        return "auto v1"
    return None


class Store:
    """`write=True` takes the writer lock and creates the schema; `write=False` only reads."""

    def __init__(self, path: str | Path, write: bool = True):
        self.path = Path(path)
        self.lock = WriterLock(Path(f"{self.path}.lock"))
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.lock.acquire(self.path)
        elif not self.path.exists():
            raise GolflabError(f"no store at {self.path}")
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout=30000")
            legacy = _legacy(self.db)
            if legacy:
                self.db.close()
                raise GolflabError(
                    f"{self.path} was written by an older golflab ({legacy} store); this version cannot read it. "
                    "Start a new store (--store for a lab, --out for auto); the old run directories stay where "
                    "they are")
            if write:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(SCHEMA)
                version = self.get_meta("schema")
                if version is None:
                    self.set_meta("schema", SCHEMA_VERSION)
                elif version != SCHEMA_VERSION:
                    raise GolflabError(f"{self.path} has store schema {version}; this golflab writes schema "
                                       f"{SCHEMA_VERSION}. Use the golflab that wrote it, or start a new store")
        except sqlite3.DatabaseError as exc:
            self.lock.release()
            raise GolflabError(f"store {self.path}: {exc}") from None
        except GolflabError:
            self.lock.release()
            raise
        self.trained = 0  # runs trained by this process
        self.adopted = 0  # runs a killed process finished (or left running) and this one stored

    def close(self) -> None:
        self.db.close()
        self.lock.release()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One committed transaction (the connection is in autocommit mode otherwise)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta
    def get_meta(self, key: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # a reader on a file without the schema yet
            return None
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- runs
    def get_run(self, key: str, seed: int) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE key = ? AND seed = ?", (key, seed)).fetchone()
        return _run(row) if row else None

    def runs(self) -> list[RunRow]:
        try:
            return [_run(r) for r in self.db.execute("SELECT * FROM runs ORDER BY finished_at")]
        except sqlite3.OperationalError:
            return []

    def put_run(self, run: RunRow, metrics: list[dict[str, Any]]) -> None:
        """Store a finished run and its per-step metrics, and clear it from the runs in flight, at once."""
        with self._tx():
            self.db.execute("DELETE FROM metrics WHERE key = ? AND seed = ?", (run.key, run.seed))
            self.db.executemany("INSERT INTO metrics (key, seed, kind, values_json) VALUES (?, ?, ?, ?)",
                                [(run.key, run.seed, str(m.get("kind", "")), json.dumps(m)) for m in metrics])
            self.db.execute(
                "INSERT OR REPLACE INTO runs (key, seed, status, error, values_json, run_dir, code_rev, wall_s, gpus, "
                "node, gpu_name, slot, started_at, finished_at, adopted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)",
                (run.key, run.seed, run.status, run.error, json.dumps(run.values), run.run_dir, run.code_rev,
                 run.wall_s, run.gpus, run.node, run.gpu_name, None, run.started_at, run.finished_at or time.time(),
                 int(run.adopted)))
            self.db.execute("DELETE FROM inflight WHERE key = ? AND seed = ?", (run.key, run.seed))

    def metrics(self, key: str, seed: int, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT values_json FROM metrics WHERE key = ? AND seed = ?" + (" AND kind = ?" if kind else "")
        args: tuple = (key, seed, kind) if kind else (key, seed)
        return [json.loads(r[0]) for r in self.db.execute(sql, args)]

    def gpu_seconds(self) -> float:
        """GPU time of finished runs: wall seconds x GPUs of their slot (CPU slots count 0)."""
        row = self.db.execute("SELECT SUM(COALESCE(wall_s, 0) * gpus) FROM runs").fetchone()
        return float(row[0] or 0.0)

    # -- runs in flight: a killed engine leaves them; the next one waits for or adopts them
    def mark_inflight(self, key: str, seed: int, pid: int | None, run_dir: str, slot: str) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?, ?, ?)",
                            (key, seed, pid, run_dir, slot, time.time()))

    def clear_inflight(self, key: str, seed: int) -> None:
        with self._tx():
            self.db.execute("DELETE FROM inflight WHERE key = ? AND seed = ?", (key, seed))

    def inflight(self) -> list[Inflight]:
        try:
            return [Inflight(*r) for r in self.db.execute("SELECT key, seed, pid, run_dir, slot, started_at "
                                                          "FROM inflight")]
        except sqlite3.OperationalError:
            return []

    # -- experiments and decisions
    def put_experiment(self, idx: int, name: str, record: dict[str, Any]) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO experiments VALUES (?, ?, ?)", (idx, name, json.dumps(record)))

    def experiments(self) -> dict[int, dict[str, Any]]:
        try:
            rows = self.db.execute("SELECT idx, record FROM experiments ORDER BY idx")
            return {i: json.loads(r) for i, r in rows}
        except sqlite3.OperationalError:
            return {}

    def put_decision(self, idx: int, name: str, record: dict[str, Any]) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?)",
                            (idx, name, json.dumps(record), time.time()))

    def decisions(self) -> list[dict[str, Any]]:
        try:
            rows = self.db.execute("SELECT record, decided_at FROM decisions ORDER BY idx")
            return [{**json.loads(r), "decided_at": t} for r, t in rows]
        except sqlite3.OperationalError:
            return []

    def run_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def _run(r: tuple) -> RunRow:
    (key, seed, status, error, values, run_dir, code_rev, wall_s, gpus, node, gpu_name, _slot, started, finished,
     adopted) = r
    return RunRow(key, seed, status, json.loads(values), run_dir, error, wall_s, gpus or 0, node, gpu_name, started,
                  finished, bool(adopted), code_rev or "")
