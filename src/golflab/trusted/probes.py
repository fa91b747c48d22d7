"""Leakage probes: is the model a causal, deterministic function of its inputs, row by row?

A model scored on a window may use only the tokens up to each position: perturbing a window after
position t must leave its scores at positions <= t unchanged, and must leave every other row of the
batch unchanged (a row must not see the next window's first token, i.e. its own last target). The
probes run on random token sequences and on real val windows (consecutive ones, as the standard eval
batches them) before a proposal is measured, and the same check is repeated on randomly chosen batches
of the evaluation itself, in a random order, so a model that behaves only while being probed is caught.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from golflab.errors import GolflabError

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
# max |change| of a log-probability that counts as "unchanged": a leak this small gains at most this
# many nats per token; real float noise of a causal model is far below it (0 on CPU)
TOL = 1e-3
CAUSAL_TRIALS = 3  # per kind of input (random, real val windows)
SPOT_CHECKS = 8  # eval batches re-checked (at least; 1% of the batches on a large split)


class LeakageError(GolflabError):
    """The model's scores depend on what it must not see (or are not a function of its inputs)."""


def _logp(scores: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(scores.double(), dim=-1)


def perturbed(x: torch.Tensor, filler: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x with row j replaced after a random position t and, in a batch of several rows, another row k
    replaced whole, by `filler` tokens (2 x seq of them); the mask of the scores that must not change:
    every other row, and row j up to t)."""
    rows, seq = x.shape
    j = int(torch.randint(rows, (1,), generator=gen))
    t = int(torch.randint(-1, seq - 1, (1,), generator=gen))
    y = x.clone()
    y[j, t + 1:] = filler[: seq - t - 1].to(x.dtype)
    keep = torch.ones(rows, seq, dtype=torch.bool)
    keep[j, t + 1:] = False
    if rows > 1:
        k = (j + 1 + int(torch.randint(rows - 1, (1,), generator=gen))) % rows
        y[k] = filler[seq:2 * seq].to(x.dtype)
        keep[k] = False
    if torch.equal(y, x):  # the filler happened to match: change one token for sure
        y[j, -1] = (x[j, -1] + 1) % max(int(x.max()) + 1, 2)
    return y, keep


def compare(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> str:
    """"" when scores `a` (of x) and `b` (of its perturbed copy) agree where `keep` says they must."""
    diff = (_logp(a) - _logp(b)).abs().amax(dim=-1).masked_fill(~keep, 0.0)
    if float(diff.max()) <= TOL:
        return ""
    whole = keep.all(dim=1)  # rows nothing was changed in
    if bool(whole.any()) and float(diff[whole].max()) > TOL:
        return (f"changing other rows of a batch changed the scores of an untouched row (by up to "
                f"{float(diff[whole].max()):.3g} nats): a window sees another window's tokens")
    t = int((~keep).float().argmax(dim=1)[diff.amax(dim=1).argmax()]) - 1
    return (f"changing the tokens after position {t} changed the scores at positions <= {t} (by up to "
            f"{float(diff.max()):.3g} nats): the model sees future tokens")


def scored_pair(fn: ScoreFn, x: torch.Tensor, filler: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, str]:
    """(scores of x, "" or why they disagree with those of a perturbed copy); the two are sent in a random
    order, so a model cannot tell from the first one whether it is being checked."""
    y, keep = perturbed(x, filler, gen)
    if bool(torch.randint(2, (1,), generator=gen)):
        b, a = fn(y), fn(x)
    else:
        a, b = fn(x), fn(y)
    return a, compare(a, b, keep)


def probe_model(fn: ScoreFn, rows: int, seq: int, vocab: int, val_tokens: torch.Tensor, gen: torch.Generator) -> dict:
    """The probes run before measuring; raises LeakageError with the reason, else returns what was checked."""
    def random_batch() -> torch.Tensor:
        return torch.randint(vocab, (rows, seq), generator=gen)

    def val_batch() -> torch.Tensor:  # consecutive windows from a random place, as the standard eval has them
        n = rows * seq
        start = int(torch.randint(max(1, val_tokens.numel() - n), (1,), generator=gen))
        chunk = val_tokens[start:start + n].long()
        return chunk.repeat((n + chunk.numel() - 1) // chunk.numel())[:n].view(rows, seq)

    x = random_batch()
    a, b = fn(x), fn(x)
    if float((_logp(a) - _logp(b)).abs().max()) > TOL:
        raise LeakageError("leakage probe (determinism): the same input gave different scores twice")
    for where, batch, filler in [("random tokens", random_batch, lambda: torch.randint(vocab, (2 * seq,), generator=gen)),
                                 ("val windows", val_batch, lambda: val_batch()[:2].flatten())]:
        for _ in range(CAUSAL_TRIALS):
            _, reason = scored_pair(fn, batch(), filler(), gen)
            if reason:
                raise LeakageError(f"leakage probe ({where}): {reason}")
    return {"determinism": 1, "causal_random": CAUSAL_TRIALS, "causal_val": CAUSAL_TRIALS, "tolerance_nats": TOL}


class SpotChecked:
    """Wraps a score function for the evaluation: on randomly chosen calls it also scores a perturbed copy
    of the batch (in a random order) and checks causality, so behaving only during the probes fails."""

    def __init__(self, fn: ScoreFn, calls: int, filler: torch.Tensor, gen: torch.Generator):
        n = max(SPOT_CHECKS, calls // 100)
        self.fn, self.filler, self.gen, self.calls = fn, filler, gen, 0
        self.at = set(torch.randperm(max(calls, 1), generator=gen)[:n].tolist())
        self.checked = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        i, self.calls = self.calls, self.calls + 1
        if i not in self.at:
            return self.fn(x)
        n = 2 * x.shape[1]
        start = int(torch.randint(max(1, self.filler.numel() - n), (1,), generator=self.gen))
        a, reason = scored_pair(self.fn, x, self.filler[start:start + n].long().repeat(2)[:n], self.gen)
        if reason:
            raise LeakageError(f"leakage spot check during the evaluation: {reason}")
        self.checked += 1
        return a
