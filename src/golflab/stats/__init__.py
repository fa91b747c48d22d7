"""Verdicts you can trust: sequential seeding, margins, targets, censoring and search-wide error control.

Pure numpy + scipy; lower metric is better throughout. docs/verdicts.md explains every rule.
"""

from golflab.stats.rules import Rule
from golflab.stats.search import SearchLedger, search_level
from golflab.stats.sequential import Design, Look, judge, margin_test
from golflab.stats.speedrun import format_speedrun_table, speedrun_table

__all__ = ["Design", "Look", "Rule", "SearchLedger", "format_speedrun_table", "judge", "margin_test",
           "search_level", "speedrun_table"]
