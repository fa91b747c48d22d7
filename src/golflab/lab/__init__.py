"""The experiment lab: plans, a SQLite store, executors, a resumable runner, statistics and reports.

Import the submodules directly for more; the names here are the public API other layers use.
"""

from golflab.lab.executor import Executor, Slot, make_slots
from golflab.lab.plan import Arm, Plan, Rule, Seeds, load_plan, parse_plan
from golflab.lab.runner import Lab, default_store_path, open_store
from golflab.lab.stats import Comparison, compare, seeds_needed, sign_flip_p, want_more_seeds
from golflab.lab.store import Store

__all__ = [
    "Arm",
    "Comparison",
    "Executor",
    "Lab",
    "Plan",
    "Rule",
    "Seeds",
    "Slot",
    "Store",
    "compare",
    "default_store_path",
    "load_plan",
    "make_slots",
    "open_store",
    "parse_plan",
    "seeds_needed",
    "sign_flip_p",
    "want_more_seeds",
]
