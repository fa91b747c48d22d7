"""Verdicts you can trust: sequential seeding, margins, targets, censoring and search-wide error control.

Pure numpy + scipy; lower metric is better throughout. docs/verdicts.md explains every rule. Names are
loaded on first use (PEP 562), so that reading a plan's rule does not import scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"Rule": "rules", "SearchLedger": "search", "search_level": "search", "Design": "sequential",
          "Look": "sequential", "judge": "sequential", "margin_test": "sequential",
          "format_speedrun_table": "speedrun", "speedrun_table": "speedrun", "seeds_needed": "power",
          "mean_ci": "power", "seeds_text": "power"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'golflab.stats' has no attribute {name!r}")
    return getattr(importlib.import_module(f"golflab.stats.{_WHERE[name]}"), name)
