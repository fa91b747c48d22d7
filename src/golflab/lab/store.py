"""The lab store: one SQLite file (WAL mode) holding runs, per-step metrics, evals, decisions and meta.

Every write is its own committed transaction, so a lab killed at any moment (SIGKILL included) leaves
a consistent file: a run is either finished with its values, or queued/running and will be re-run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golflab.errors import GolflabError

TERMINAL = ("ok", "failed", "timeout", "crashed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, arm TEXT NOT NULL, seed INTEGER NOT NULL, seed_index INTEGER NOT NULL,
  ref_arm TEXT, config_hash TEXT NOT NULL, config_toml TEXT NOT NULL, diff_json TEXT NOT NULL,
  status TEXT NOT NULL, error TEXT, device TEXT, gpus TEXT, pid INTEGER, code_sha TEXT, code_dirty INTEGER,
  queued_at REAL, started_at REAL, finished_at REAL, run_dir TEXT NOT NULL, values_json TEXT,
  attempts INTEGER NOT NULL DEFAULT 0, UNIQUE (arm, seed));
CREATE TABLE IF NOT EXISTS metrics (
  run_id INTEGER NOT NULL, step INTEGER, kind TEXT NOT NULL, values_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id);
CREATE TABLE IF NOT EXISTS evals (
  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, split TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
  pid INTEGER, values_json TEXT, started_at REAL, finished_at REAL, UNIQUE (run_id, split));
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY, arm TEXT NOT NULL UNIQUE, verdict TEXT NOT NULL, stats_json TEXT NOT NULL,
  promoted INTEGER NOT NULL, decided_at REAL NOT NULL);
"""


@dataclass
class RunRow:
    id: int
    arm: str
    seed: int
    seed_index: int
    ref_arm: str | None
    config_hash: str
    config_toml: str
    diff: dict[str, Any]
    status: str
    error: str | None
    device: str | None
    gpus: str | None
    pid: int | None
    code_sha: str | None
    code_dirty: bool | None
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    run_dir: str
    values: dict[str, Any]
    attempts: int

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass
class EvalRow:
    id: int
    run_id: int
    split: str
    status: str
    error: str | None
    pid: int | None
    values: dict[str, Any]


@dataclass
class Decision:
    arm: str
    verdict: str
    stats: dict[str, Any]
    promoted: bool
    decided_at: float


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise GolflabError(f"lab store {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self.db:  # one committed transaction
            return self.db.execute(sql, args)

    # meta
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # runs
    def add_run(self, arm: str, seed: int, seed_index: int, ref_arm: str | None, config_hash: str,
                config_toml: str, diff: dict[str, Any], run_dir: str) -> int:
        cur = self._write(
            "INSERT INTO runs (arm, seed, seed_index, ref_arm, config_hash, config_toml, diff_json, status, "
            "queued_at, run_dir) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            (arm, seed, seed_index, ref_arm, config_hash, config_toml, json.dumps(diff), time.time(), run_dir))
        return int(cur.lastrowid)

    def runs(self, arm: str | None = None) -> list[RunRow]:
        sql = "SELECT * FROM runs" + (" WHERE arm = ?" if arm else "") + " ORDER BY id"
        return [self._run(r) for r in self.db.execute(sql, (arm,) if arm else ()).fetchall()]

    def run(self, run_id: int) -> RunRow:
        return self._run(self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def _run(self, r: tuple) -> RunRow:
        (id_, arm, seed, seed_index, ref, chash, ctoml, diff, status, error, device, gpus, pid, sha, dirty,
         q, s, f, run_dir, values, attempts) = r
        return RunRow(id_, arm, seed, seed_index, ref, chash, ctoml, json.loads(diff), status, error, device,
                      gpus, pid, sha, None if dirty is None else bool(dirty), q, s, f, run_dir,
                      json.loads(values) if values else {}, attempts)

    def mark_running(self, run_id: int, pid: int, gpus: str | None, code_sha: str, code_dirty: bool) -> None:
        self._write("UPDATE runs SET status = 'running', pid = ?, gpus = ?, code_sha = ?, code_dirty = ?, "
                    "started_at = ?, finished_at = NULL, error = NULL, attempts = attempts + 1 WHERE id = ?",
                    (pid, gpus, code_sha, int(code_dirty), time.time(), run_id))

    def finish_run(self, run_id: int, status: str, error: str | None, values: dict[str, Any],
                   device: str | None, metrics: list[dict[str, Any]]) -> None:
        """Record a finished run and its per-step metrics in one transaction."""
        with self.db:
            self.db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            self.db.executemany(
                "INSERT INTO metrics (run_id, step, kind, values_json) VALUES (?, ?, ?, ?)",
                [(run_id, m.get("step"), str(m.get("kind", "")), json.dumps(m)) for m in metrics])
            self.db.execute("UPDATE runs SET status = ?, error = ?, values_json = ?, device = ?, finished_at = ?, "
                            "pid = NULL WHERE id = ?",
                            (status, error, json.dumps(values), device, time.time(), run_id))

    def requeue(self, run_id: int) -> None:
        self._write("UPDATE runs SET status = 'queued', pid = NULL, started_at = NULL WHERE id = ?", (run_id,))

    def metrics(self, run_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT values_json FROM metrics WHERE run_id = ?" + (" AND kind = ?" if kind else "")
        return [json.loads(r[0]) for r in self.db.execute(sql, (run_id, kind) if kind else (run_id,))]

    # evals (held-out confirmation)
    def add_eval(self, run_id: int, split: str) -> int:
        cur = self._write("INSERT OR IGNORE INTO evals (run_id, split, status) VALUES (?, ?, 'queued')",
                          (run_id, split))
        return int(cur.lastrowid)

    def evals(self) -> list[EvalRow]:
        rows = self.db.execute("SELECT id, run_id, split, status, error, pid, values_json FROM evals ORDER BY id")
        return [EvalRow(i, r, s, st, e, p, json.loads(v) if v else {}) for i, r, s, st, e, p, v in rows]

    def mark_eval_running(self, eval_id: int, pid: int) -> None:
        self._write("UPDATE evals SET status = 'running', pid = ?, started_at = ? WHERE id = ?",
                    (pid, time.time(), eval_id))

    def finish_eval(self, eval_id: int, status: str, error: str | None, values: dict[str, Any]) -> None:
        self._write("UPDATE evals SET status = ?, error = ?, values_json = ?, finished_at = ?, pid = NULL "
                    "WHERE id = ?", (status, error, json.dumps(values), time.time(), eval_id))

    def requeue_eval(self, eval_id: int) -> None:
        self._write("UPDATE evals SET status = 'queued', pid = NULL WHERE id = ?", (eval_id,))

    # decisions
    def decide(self, arm: str, verdict: str, stats: dict[str, Any], promoted: bool) -> None:
        self._write("INSERT OR IGNORE INTO decisions (arm, verdict, stats_json, promoted, decided_at) "
                    "VALUES (?, ?, ?, ?, ?)", (arm, verdict, json.dumps(stats), int(promoted), time.time()))

    def decisions(self) -> dict[str, Decision]:
        rows = self.db.execute("SELECT arm, verdict, stats_json, promoted, decided_at FROM decisions ORDER BY id")
        return {a: Decision(a, v, json.loads(s), bool(p), t) for a, v, s, p, t in rows}
