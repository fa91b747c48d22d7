"""The auto mode's SQLite file: every finished run keyed by (run key, seed), every decision, the runs in
flight (so a killed search can stop their orphans), and a few meta values (elapsed search time, the
proposal window). A killed search replays from it: a stored run is never trained again."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (cfg_hash TEXT, seed INTEGER, value REAL, peak_mem_gb REAL, status TEXT,
    run_dir TEXT, PRIMARY KEY (cfg_hash, seed));
CREATE TABLE IF NOT EXISTS decisions (idx INTEGER PRIMARY KEY, record TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS inflight (cfg_hash TEXT, seed INTEGER, pid INTEGER, run_dir TEXT,
    PRIMARY KEY (cfg_hash, seed));
"""
# columns added after the first release: a store written by it gains them (NULL for its old runs)
ADDED = {"test_value": "REAL", "wall_s": "REAL", "gpus": "INTEGER"}


@dataclass(frozen=True)
class RunRow:
    status: str  # ok / crash
    value: float | None  # the metric on the validation split
    peak_mem_gb: float | None
    test_value: float | None = None  # the same metric on the test split (eval.also_splits)
    wall_s: float | None = None
    gpus: int = 0


class AutoStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
        with self.db:
            for col, typ in ADDED.items():
                if col not in have:
                    self.db.execute(f"ALTER TABLE runs ADD COLUMN {col} {typ}")
        self.trained = 0  # runs trained by this process (not replayed)
        self.adopted = 0  # runs a killed process finished but never stored, stored by this one

    def get_run(self, key: str, seed: int) -> RunRow | None:
        row = self.db.execute("SELECT status, value, peak_mem_gb, test_value, wall_s, gpus FROM runs "
                              "WHERE cfg_hash=? AND seed=?", (key, seed)).fetchone()
        return RunRow(row[0], row[1], row[2], row[3], row[4], row[5] or 0) if row else None

    def put_run(self, key: str, seed: int, run: RunRow, run_dir: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO runs (cfg_hash, seed, value, peak_mem_gb, status, run_dir, "
                            "test_value, wall_s, gpus) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (key, seed, run.value, run.peak_mem_gb, run.status, run_dir, run.test_value,
                             run.wall_s, run.gpus))
            self.db.execute("DELETE FROM inflight WHERE cfg_hash=? AND seed=?", (key, seed))

    def gpu_seconds(self) -> float:
        """GPU time spent by finished runs: wall seconds x GPUs of the slot (CPU slots count 0)."""
        row = self.db.execute("SELECT SUM(COALESCE(wall_s, 0) * COALESCE(gpus, 0)) FROM runs").fetchone()
        return float(row[0] or 0.0)

    # -- runs in flight: a killed search leaves them; the next one stops the orphans first
    def mark_inflight(self, key: str, seed: int, pid: int, run_dir: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?)", (key, seed, pid, run_dir))

    def clear_inflight(self, key: str, seed: int) -> None:
        with self.db:
            self.db.execute("DELETE FROM inflight WHERE cfg_hash=? AND seed=?", (key, seed))

    def inflight(self) -> list[tuple[str, int, int, str]]:
        return [tuple(r) for r in self.db.execute("SELECT cfg_hash, seed, pid, run_dir FROM inflight")]

    # -- decisions and meta
    def put_decision(self, idx: int, record: dict) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?)", (idx, json.dumps(record)))

    def decisions(self) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT record FROM decisions ORDER BY idx")]

    def run_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.db.close()
