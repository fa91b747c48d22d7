"""Parameters declared once with their optimizer role and init rule; init is seeded by (seed, name).

Seeding each parameter from its own name (not from creation order) gives common random numbers:
seed k of two arms that share a parameter of the same shape start from the same values, so their
difference measures the change under test rather than init noise.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

ROLES = ("matrix", "embed", "tied_embed", "head", "scalar", "gate", "value_embed", "resid", "x0")


def new_param(shape: tuple[int, ...], role: str, init: tuple, dtype: torch.dtype = torch.float32) -> nn.Parameter:
    """A parameter (uninitialised) tagged with its optimizer role and init rule: ("uniform", bound),
    ("normal", std), ("orthogonal", gain), ("zeros",), ("ones",), ("const", value) or ("rows", [v0, v1, ...])
    (each row filled with a constant)."""
    assert role in ROLES, f"unknown parameter role {role!r}"
    param = nn.Parameter(torch.empty(shape, dtype=dtype))
    param.role = role  # type: ignore[attr-defined]
    param.init = init  # type: ignore[attr-defined]
    return param


def _name_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@torch.no_grad()
def init_parameters(model: nn.Module, seed: int) -> None:
    """Fill every declared parameter from a CPU generator seeded by (seed, parameter name)."""
    for name, p in model.named_parameters():
        assert hasattr(p, "init"), f"parameter {name} has no declared init rule"
        rule = p.init
        kind = rule[0]
        if kind in ("zeros", "ones", "const", "rows"):
            if kind == "rows":
                values = torch.tensor(rule[1], dtype=torch.float32).view(-1, *([1] * (p.dim() - 1)))
                p.copy_(values.expand_as(p))
            else:
                p.fill_({"zeros": 0.0, "ones": 1.0}.get(kind, rule[-1]))
            continue
        g = torch.Generator(device="cpu").manual_seed(_name_seed(seed, name))
        t = torch.empty(p.shape, dtype=torch.float32)
        if kind == "uniform":
            t.uniform_(-rule[1], rule[1], generator=g)
        elif kind == "normal":
            t.normal_(0.0, rule[1], generator=g)
        else:
            assert kind == "orthogonal", f"parameter {name}: unknown init rule {rule!r}"
            torch.nn.init.orthogonal_(t, gain=rule[1], generator=g)
        p.copy_(t.to(p.device, p.dtype))
