"""The weight EMA is the normalized exponential average of the iterates: no weight on the random init."""

from __future__ import annotations

import torch
from torch import nn

from golflab.train.state import EMA


def test_ema_is_the_normalized_average_of_the_iterates_with_no_weight_on_the_init():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    decay = 0.9
    ema = EMA(model, decay)
    iterates = []
    for _ in range(7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        iterates.append([p.detach().clone() for p in model.parameters()])
        ema.update()
        if len(iterates) == 1:  # one update: the average of one iterate is that iterate
            for s, p in zip(ema.shadow, model.parameters(), strict=True):
                torch.testing.assert_close(s, p.detach())
    t = len(iterates)
    weights = [decay ** (t - 1 - i) * (1 - decay) for i in range(t)]
    for j, s in enumerate(ema.shadow):
        expected = sum(w * it[j] for w, it in zip(weights, iterates, strict=True)) / sum(weights)
        torch.testing.assert_close(s, expected)


def test_ema_state_round_trips_with_its_update_count():
    model = nn.Linear(2, 2)
    ema = EMA(model, 0.99)
    for _ in range(3):
        ema.update()
    other = EMA(model, 0.99)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 3
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update()
    other.update()  # the 4th update weighs the same in both: the count came back with the shadow
    for a, b in zip(ema.shadow, other.shadow, strict=True):
        torch.testing.assert_close(a, b)
