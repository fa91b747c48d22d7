"""Error control over a whole autonomous search: alpha spending across confirmations.

A search screens many candidates and confirms the promising ones on FRESH seeds. The k-th confirmation
(k = 1, 2, ... in the order they are run) is tested at

    search_level(alpha, k) = alpha * gamma_k,  gamma_k = 1 / (k (k + 1))   (sum over k = 1)

(alpha/2, alpha/6, alpha/12, ...; with a known horizon H: gamma_k = 1/H for k <= H, 0 after). By the
union bound P(keep >= 1 no-effect change over the whole search) <= sum_k alpha gamma_k = alpha, under any
dependence between the tests (shared baseline runs; Bonferroni needs no independence). What it does
need: each confirmation's p is valid given what decided to run it and its index k, which holds when the
confirmation seeds took no part in screening (the candidate's fresh runs are independent of the
screening data; a baseline's fresh runs may be shared by several confirmations). This is alpha spending
across hypotheses (Foster & Stine 2008 call the adaptive version alpha-investing; the fixed sequence
here is its simplest valid case, deterministic so that a resumed search replays it exactly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def gamma(k: int, horizon: int | None = None) -> float:
    if k < 1:
        raise ValueError(f"k is 1-based, got {k}")
    if horizon is not None:
        return 1.0 / horizon if k <= horizon else 0.0
    return 1.0 / (k * (k + 1))


def search_level(alpha: float, k: int, horizon: int | None = None) -> float:
    """The level at which the k-th (1-based) confirmation of a search is tested (module docstring)."""
    return alpha * gamma(k, horizon)


@dataclass
class SearchLedger:
    """The search's error budget: the level of the next confirmation and what was spent so far.

    Replay a resumed search by recording the same decisions in order (from_dict / to_dict round-trip)."""

    alpha: float = 0.05
    horizon: int | None = None
    confirmations: int = 0
    spent: float = 0.0
    kept: int = 0
    history: list[dict] = field(default_factory=list)

    def next_level(self) -> float:
        return search_level(self.alpha, self.confirmations + 1, self.horizon)

    def record(self, kept: bool, name: str = "") -> float:
        """Record one confirmation's outcome; returns the level it was tested at."""
        level = self.next_level()
        self.confirmations += 1
        self.spent += level
        self.kept += bool(kept)
        self.history.append({"k": self.confirmations, "name": name, "level": level, "kept": bool(kept)})
        return level

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SearchLedger:
        return cls(**d)
