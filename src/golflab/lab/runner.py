"""`lab run PLAN` as a session of the one engine: the plan's settings and proposer, its store (next to the
plan, `<name>.lab.sqlite`, run directories in `<name>.lab/`), and the plan recorded in the store so that
a store is never mixed with another version of its plan."""

from __future__ import annotations

import json
import time
from pathlib import Path

from golflab.engine.backend import Backend
from golflab.engine.session import Log, Session
from golflab.engine.store import Store
from golflab.errors import GolflabError
from golflab.lab.plan import Plan
from golflab.lab.source import PlanProposer, plan_settings


def default_store_path(plan: Plan) -> Path:
    return plan.path.parent / f"{plan.name}.lab.sqlite"


def lab_dir_of(store_path: Path) -> Path:
    """`x.lab.sqlite` -> `x.lab/` (run directories, logs, inductor cache)."""
    return store_path.with_suffix("") if store_path.suffix == ".sqlite" else Path(f"{store_path}.d")


def lab_session(plan: Plan, backend: Backend, store_path: Path | None = None, log: Log | None = None,
                poll_s: float = 0.2, hours: float | None = None) -> Session:
    """The session of a plan; it holds the store's writer lock from here on (a second lab fails at once)."""
    path = Path(store_path) if store_path else default_store_path(plan)
    session = Session(plan_settings(plan, hours), PlanProposer(plan), path, lab_dir_of(path), backend, log, poll_s,
                      kind="lab")
    try:
        _record_plan(session.store, plan)
    except GolflabError:
        session.store.close()
        raise
    return session


def _record_plan(store: Store, plan: Plan) -> None:
    digest = store.get_meta("plan_digest")
    if digest is None:
        store.set_meta("plan_text", plan.text)
        store.set_meta("plan_path", str(plan.path))
        store.set_meta("plan_overrides", json.dumps({"preset": plan.preset, "data": plan.data}))
        store.set_meta("created_at", str(time.time()))
        store.set_meta("plan_digest", plan.digest)
    elif digest != plan.digest:
        raise GolflabError(f"{store.path} belongs to a different version of plan {plan.name!r} (or other --preset/--data); "
                           "restore the plan, or give a new --store to start a new lab")


def open_lab(plan: Plan, store_path: Path | None = None) -> Store:
    """The lab's store for reading (status, report), also while the lab runs."""
    path = Path(store_path) if store_path else default_store_path(plan)
    if not path.exists():
        raise GolflabError(f"no lab store at {path}; start the lab with `golflab lab run {plan.path}`")
    return Store(path, write=False)
