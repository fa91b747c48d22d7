"""The auto mode's SQLite file: every finished run keyed by (config hash without seed, seed), and every
decision. A killed search replays from it: a stored run is never trained again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (cfg_hash TEXT, seed INTEGER, value REAL, peak_mem_gb REAL, status TEXT,
    run_dir TEXT, PRIMARY KEY (cfg_hash, seed));
CREATE TABLE IF NOT EXISTS decisions (idx INTEGER PRIMARY KEY, record TEXT);
"""


class AutoStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.executescript(SCHEMA)
        self.trained = 0  # runs trained by this process (not replayed)

    def get_run(self, cfg_hash: str, seed: int) -> tuple[str, float | None, float | None] | None:
        row = self.db.execute("SELECT status, value, peak_mem_gb FROM runs WHERE cfg_hash=? AND seed=?",
                              (cfg_hash, seed)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def put_run(self, cfg_hash: str, seed: int, status: str, value: float | None, peak: float | None,
                run_dir: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                            (cfg_hash, seed, value, peak, status, run_dir))

    def put_decision(self, idx: int, record: dict) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?)", (idx, json.dumps(record)))

    def decisions(self) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT record FROM decisions ORDER BY idx")]

    def run_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
