"""What feeds the engine: a Proposal is one experiment to judge against the current baseline (or a named
reference), and a Proposer makes them: a lab plan (golflab.lab.source), a search space or a coding agent
(golflab.auto).

The interface: `propose(base) -> Proposal | None` (None: nothing left), `should_prune(p, short_value)`
after a short-budget run, and `observe(p, value, pruned)` once the proposal is judged. `base` is the
current baseline's resolved config as a nested dict (conditions of a space may refer to it). Optional
hooks, called when present: `bind(session)` once before the first proposal (the session's `decisions`,
`kept_overrides`, `base_code`, `base_code_rev`, `s` settings and `out` directory, and `running`), and
`kept(proposal)` after a proposal is kept (an agent proposer advances its branch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Proposal:
    name: str
    overrides: list[str]
    fidelity: float = 1.0  # < 1: first run one seed at this fraction of the budget, then maybe prune
    token: Any = field(default=None, repr=False)  # the proposer's own handle (an Optuna trial)
    code: Path | None = None  # a clean export of a commit whose src/ the runs train with (a code proposal)
    diff: str = ""  # the code change as a unified diff (stored with the decision, kept or not)
    code_rev: str = ""  # the git commit of `code` (part of a run's identity: same config, other code)
    description: str = ""  # one line: what the change is and why
    rejected: str = ""  # non-empty: the proposal failed its checks (the reason); it is recorded, not run
    skipped: str = ""  # non-empty: a plan arm whose run_if did not hold (the reason); recorded, not run
    promote: bool = True  # False: a win is reported but does not become the baseline (a plan arm's promote)
    ref: str | None = None  # judge against this earlier experiment's config, not the current baseline
    crn: bool = True  # False: the arm runs on seeds unrelated to its reference's (Welch only)
    seeds: tuple[int, int] | None = None  # (min, max) seeds of this experiment (None: the session's)


class Proposer(Protocol):
    def propose(self, base: dict[str, Any]) -> Proposal | None: ...

    def should_prune(self, proposal: Proposal, short_value: float) -> bool: ...

    def observe(self, proposal: Proposal, value: float | None, pruned: bool = False) -> None: ...
