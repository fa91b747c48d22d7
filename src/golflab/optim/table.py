"""One per-parameter table decides each parameter's optimizer, LR, betas and weight decay.

Every parameter is declared with a role when the model is built (golflab.model.params.new_param); the
table maps it through `optim.<role>` to one row. Optimizer "groups" are only how rows with identical
settings are batched for speed: a row, not a group, is the unit of configuration, and every parameter
appears in exactly one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from golflab.config.schema import OptimConfig
from golflab.errors import ConfigError
from golflab.optim.muon import Muon


@dataclass
class ParamRow:
    name: str
    param: nn.Parameter
    role: str
    optimizer: str  # muon | normuon | adam
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.param.shape)


def build_table(model: nn.Module, cfg: OptimConfig) -> list[ParamRow]:
    rows: list[ParamRow] = []
    for name, p in model.named_parameters():
        assert hasattr(p, "role"), f"parameter {name} has no declared optimizer role"
        g = getattr(cfg, p.role)
        if g.optimizer in ("muon", "normuon") and p.dim() != 2:
            raise ConfigError(
                f"optim.{p.role}.optimizer={g.optimizer} needs 2-D parameters, but {name} has shape {tuple(p.shape)}"
            )
        rows.append(ParamRow(name, p, p.role, g.optimizer, g.lr, (g.betas[0], g.betas[1]), g.eps, g.weight_decay))
    return rows


class TableOptimizer:
    """Muon/NorMuon and AdamW driven by the table; LR schedule and momentum warmup act on every row."""

    def __init__(self, model: nn.Module, cfg: OptimConfig, device: torch.device):
        self.table = build_table(model, cfg)
        self.muon_cfg = cfg.muon
        self.wd_schedule = cfg.wd_schedule
        muon_groups: dict[tuple, dict] = {}
        adam_groups: dict[tuple, dict] = {}
        for row in self.table:
            if row.optimizer == "adam":
                key = (row.lr, row.betas, row.eps, row.weight_decay)
                adam_groups.setdefault(key, dict(params=[], lr=row.lr, base_lr=row.lr, betas=row.betas,
                                                 eps=row.eps, weight_decay=row.weight_decay,
                                                 base_wd=row.weight_decay))["params"].append(row.param)
            else:
                key = (row.shape, row.optimizer, row.lr, row.weight_decay)
                muon_groups.setdefault(key, dict(params=[], lr=row.lr, base_lr=row.lr, weight_decay=row.weight_decay,
                                                 base_wd=row.weight_decay,
                                                 normuon=row.optimizer == "normuon"))["params"].append(row.param)
        self.optimizers: list[torch.optim.Optimizer] = []
        if muon_groups:
            m = cfg.muon
            self.optimizers.append(Muon(list(muon_groups.values()), m.momentum, m.nesterov, m.ns_steps,
                                        m.ns_coeffs, m.beta2, ema_momentum=m.ema_momentum, cautious_wd=m.cautious_wd,
                                        wd_shape_scale=m.wd_shape_scale, wd_after_update=m.wd_after_update))
        if adam_groups:
            fused = device.type == "cuda"
            self.optimizers.append(torch.optim.AdamW(list(adam_groups.values()), fused=fused,
                                                     foreach=None if fused else True))

    def set_schedule(self, lr_scale: float, step: int, progress: float | None = None) -> None:
        """LR multiplier and step for the step about to run; `progress` (0..1, the budget fraction used)
        drives optim.wd_schedule="linear", which scales every row's weight decay by (1 - progress)."""
        m = self.muon_cfg
        frac = min(step / m.momentum_warmup_steps, 1.0) if m.momentum_warmup_steps > 0 else 1.0
        momentum = (1 - frac) * m.momentum_warmup_start + frac * m.momentum
        wd_scale = 1.0
        if self.wd_schedule == "linear":
            if progress is None:
                raise ConfigError("optim.wd_schedule='linear' needs the training progress: the trainer must call "
                                  "set_schedule(lr_scale, step, progress=...)")
            wd_scale = 1.0 - min(max(progress, 0.0), 1.0)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * lr_scale
                if self.wd_schedule != "constant":
                    group["weight_decay"] = group["base_wd"] * wd_scale
                if isinstance(opt, Muon):
                    group["momentum"] = momentum

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def state_dict(self) -> list[dict]:
        return [opt.state_dict() for opt in self.optimizers]

    def load_state_dict(self, states: list[dict]) -> None:
        for opt, st in zip(self.optimizers, states, strict=True):
            opt.load_state_dict(st)
