"""Judge an arm at one look of its sequential design: win, loss, inconclusive or continue.

Design(rule, lo, hi) looks at n = lo, lo + 1, ..., hi seeds per arm (the caller adds one seed per arm
while the verdict is "continue"). At each look the deciding test gives two nominal one-sided p values:
  p      for H0:  improvement <= min_effect  -> "win"  when p      <= pi_n,
  p_loss for H0': improvement >= min_effect  -> "loss" when p_loss <= pi_n,
where pi_n is the alpha-spending boundary of the look (boundaries.py), at alpha (one-sided rules) or
alpha / 2 (two-sided). So P(win) <= alpha when the true improvement is <= min_effect, and
P(loss) <= alpha when it is >= min_effect, over the whole sequence of looks. Before the last look an
arm may also stop for futility (inconclusive): when the conditional power of winning by the last look,
under the current trend, is below FUTILITY_POWER, and so is that of a loss (an arm that is clearly
worse goes on to its loss verdict, which a plan's `run_if = "loses:..."` waits for). Futility is non-binding: it only removes wins, so
the error rate holds with or without it. Look.p is the nominal p of the deciding look, shown with its
boundary; lcb / ucb are the repeated confidence bounds at the look's nominal level (win iff lcb >= m).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from golflab.stats import censored
from golflab.stats.boundaries import boundaries
from golflab.stats.rules import Rule
from golflab.stats.tests import Result, mean_sd, one_sample, spread_floor, welch

FUTILITY_POWER = 0.10


@dataclass
class Look:
    """The result of judging an arm at one look. delta and the means are on the seeds the test used."""

    n: int  # seeds per arm used (pairs for the paired test)
    verdict: str  # "win" | "loss" | "inconclusive" (final) | "continue" (add a seed per arm)
    why: str
    test: str  # "paired t" | "welch t" | "one-sample t" | "sign-flip" | "permutation" | "gehan" | ...
    p: float | None  # nominal p of H0: improvement <= min_effect at this look
    delta: float | None  # mean(arm) - mean(ref) (or mean - target); medians for rank tests
    lcb: float | None  # bounds of the improvement (-delta) at the look's nominal level
    ucb: float | None
    mean_arm: float | None
    sd_arm: float | None
    mean_ref: float | None
    sd_ref: float | None
    n_pairs: int
    boundary: float | None = None  # pi of this look: win when p <= boundary
    p_loss: float | None = None  # nominal p of H0': improvement >= min_effect
    look: int = 0  # 1-based index of the look in the design
    looks: int = 0
    power: float | None = None  # conditional power under the current trend (futility), if computed
    n_ref: int = 0
    censored_arm: int = 0  # runs that missed the target (+inf)
    censored_ref: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Design:
    """One arm's sequential design: looks at n = min_seeds..max_seeds (module docstring)."""

    def __init__(self, rule: Rule, min_seeds: int, max_seeds: int):
        if not 1 <= min_seeds <= max_seeds:
            raise ValueError(f"need 1 <= min_seeds <= max_seeds, got {min_seeds}, {max_seeds}")
        self.rule, self.min_seeds, self.max_seeds = rule, min_seeds, max_seeds
        self.lo = max(2, min_seeds)  # a t test needs 2 values
        self.hi = max(self.lo, max_seeds)
        self.pi = boundaries(self.lo, self.hi, rule.side_alpha, rule.spending)  # cached
        self._res = None if rule.resolution is None else float(rule.resolution)

    def fixed(self) -> bool:
        return self.min_seeds == self.max_seeds

    def look(self, arm: dict[int, float], ref: dict[int, float] | None = None, last: bool = False) -> Look:
        """Judge the arm on its ok runs (seed -> metric; +inf = missed the target) at this look.

        ref: the baseline arm's runs (None for target and reference rules). last: no more seeds will
        come (e.g. the seed budget ran out early); the look spends all the alpha left.
        """
        r = self.rule
        xa = [float(arm[s]) for s in sorted(arm)]
        if any(math.isnan(v) for v in xa) or (ref and any(math.isnan(v) for v in ref.values())):
            raise ValueError("NaN metric: pass only the ok runs")
        shared: list[int] = []
        if r.target is not None:
            xr, label = None, "target"
        elif r.reference is not None:
            xr, label = list(r.reference), "reference"
        else:
            if ref is None:
                raise ValueError("a baseline-arm rule needs ref")
            shared = sorted(set(arm) & set(ref))
            xr, label = [float(ref[s]) for s in sorted(ref)], "baseline"
        paired = r.kind == "arm" and (r.test == "paired" or (r.test == "auto" and len(shared) >= 2))
        if paired:
            xa = [float(arm[s]) for s in shared]
            xr = [float(ref[s]) for s in shared]
        n = len(xa)
        look = Look(n, "continue", "", "", None, None, None, None, *_ms(xa), *_ms(xr), len(shared),
                    n_ref=0 if xr is None else len(xr), censored_arm=sum(map(math.isinf, xa)),
                    censored_ref=0 if xr is None else sum(map(math.isinf, xr)), looks=self.hi - self.lo + 1)
        final = last or n >= self.max_seeds
        ref_ok = paired or xr is None or len(xr) >= 2 or r.kind == "reference"
        if n < 2 or not ref_ok:
            look.verdict = "inconclusive" if final else "continue"
            side = f"{n} {'pairs' if paired else 'seeds'}" + ("" if ref_ok else f", {len(xr)} {label} seeds")
            look.why = f"{side}: too few values to test" + ("" if final else ": add a seed")
            return look
        res = self._test(xa, xr, paired)
        look.test, look.p, look.p_loss = res.test, res.p_win, res.p_loss
        censored_test = res.test in ("gehan", "signed-rank")
        if censored_test:
            look.delta = None if res.improvement is None else -res.improvement
        elif r.target is not None:
            look.delta = look.mean_arm - r.target
        else:
            look.delta = look.mean_arm - look.mean_ref
        if n < self.lo and not last:
            look.verdict = "continue"
            look.why = f"{res.test}, {n} seeds: p {_f(res.p_win)}; the first look is at {self.lo}"
            return look
        if n < self.lo:  # the budget ran out before the first look: one fixed test at n
            j, pi = 0, r.side_alpha
        else:
            j = min(n, self.hi) - self.lo
            stop = min(n, self.hi) if last and n < self.hi else None
            pi = boundaries(self.lo, self.hi, r.side_alpha, r.spending, stop)[j]
        look.boundary, look.look = pi, j + 1
        if res.se is not None:
            q = float(special.stdtrit(res.df, 1 - pi)) if pi > 0 else math.inf
            look.lcb, look.ucb = res.improvement - q * res.se, res.improvement + q * res.se
        m = r.min_effect
        head = f"{res.test}, {n} {'pairs' if paired else 'seeds'} vs {label}"
        if r.target is not None:
            head += f" {_f(r.target)}"
        imp = res.improvement
        est = "" if imp is None else f"{'median' if censored_test else 'mean'} improvement {_f(imp)} "
        at = f"(look {j + 1} of {look.looks})"
        est_p = f"{est.rstrip()}, " if est else ""
        if res.p_win <= pi:
            look.verdict = "win"
            look.why = f"{head}: {est}> {_f(m)} at p {_f(res.p_win)} <= boundary {_f(pi)} {at}"
        elif res.p_loss <= pi:
            look.verdict = "loss"
            look.why = (f"{head}: {est}< {_f(m)} at p {_f(res.p_loss)} (of improvement >= {_f(m)}) "
                        f"<= boundary {_f(pi)} {at}")
        elif final:
            look.verdict = "inconclusive"
            look.why = f"{head}: {est_p}p {_f(res.p_win)} > boundary {_f(pi)} at the last look {at}"
        else:
            look.power = _conditional_power(res.p_win, n / self.hi, self.pi[-1])
            # futile only if neither verdict is in reach: a clearly worse arm goes on until it is a loss
            power_loss = _conditional_power(res.p_loss, n / self.hi, self.pi[-1])
            if r.futility and look.power < FUTILITY_POWER and power_loss < FUTILITY_POWER:
                look.verdict = "inconclusive"
                look.why = (f"{head}: {est_p}p {_f(res.p_win)}: futility, the chance to win by {self.hi} "
                            f"seeds at this trend is {look.power:.1%} < {FUTILITY_POWER:.0%} {at}")
            else:
                look.verdict = "continue"
                look.why = f"{head}: {est_p}p {_f(res.p_win)} > boundary {_f(pi)} {at}: add a seed"
        return look

    def _test(self, xa: list[float], xr: list[float] | None, paired: bool) -> Result:
        r, m = self.rule, self.rule.min_effect
        raw = xa if xr is None else xa + xr
        if any(map(math.isinf, raw)):  # time_to_target misses: rank tests that keep them
            a = np.array(xa)
            if xr is None:
                return censored.signed_rank(r.target - a, m)
            if paired:
                return censored.signed_rank(censored.paired_gaps(a, np.array(xr)), m)
            return censored.gehan(a, np.array(xr), m)
        floor = spread_floor(raw, self._res)
        if xr is None:  # target: improvement = target - arm
            return one_sample([r.target - v for v in xa], m, floor, "one-sample t")
        if paired:
            return one_sample([b - a for a, b in zip(xa, xr, strict=True)], m, floor, "paired t")
        if len(xr) == 1:  # a single reference value is a target
            return one_sample([xr[0] - v for v in xa], m, floor, "one-sample t")
        return welch(xa, xr, m, floor)


def judge(rule: Rule, arm: dict[int, float], ref: dict[int, float] | None = None) -> Look:
    """A single fixed-n test: Design(rule, n, n).look with n = the arm's seeds (pairs when paired)."""
    n = max(1, len(arm))
    return Design(rule, n, n).look(arm, ref, last=True)  # final: e.g. fewer shared seeds than runs


def margin_test(new: list[float], old: list[float], margin: float, alpha: float) -> Look:
    """parameter-golf's record rule: Welch one-sided test that new improves on old by more than margin
    (H0: mean(old) - mean(new) <= margin) at level alpha, on independent runs."""
    rule = Rule(alpha=alpha, min_effect=margin, test="welch", reference=tuple(old))
    return judge(rule, dict(enumerate(new)))


def _conditional_power(p: float, t: float, pi_last: float) -> float:
    """P(win at the last look | data so far), drift at the current trend (B-value; Lan & Wittes 1988)."""
    if t >= 1 or pi_last <= 0:
        return 0.0
    z = -float(special.ndtri(min(max(p, 1e-300), 1 - 1e-16)))
    z_end = -float(special.ndtri(pi_last))
    return float(special.ndtr((z / math.sqrt(t) - z_end) / math.sqrt(1 - t)))


def _ms(x: list[float] | None) -> tuple[float | None, float | None]:
    if not x:
        return None, None
    if any(map(math.isinf, x)):
        return math.inf, None
    mean, sd = mean_sd(x)
    return mean, sd if len(x) >= 2 else None


def _f(x: float) -> str:
    return f"{x:.4g}"
