"""Snapshots of training state: compile warm-up restore, checkpoints for resume, and the EMA of weights."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn


def snapshot(model: nn.Module, optimizer: Any, loader: Any) -> dict[str, Any]:
    return {
        "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "loader": copy.deepcopy(loader.state_dict()),
    }


def restore(snap: dict[str, Any], model: nn.Module, optimizer: Any, loader: Any) -> None:
    model.load_state_dict(snap["model"], strict=True)
    optimizer.load_state_dict(snap["optimizer"])
    loader.load_state_dict(snap["loader"])


class EMA:
    """Exponential moving average of all parameters, kept in fp32."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.params = [p for p in model.parameters()]
        self.shadow = [p.detach().float().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1.0 - self.decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for p, s in zip(self.params, self.shadow, strict=True):
            p.copy_(s.to(p.dtype))

    def state_dict(self) -> list[torch.Tensor]:
        return [s.cpu() for s in self.shadow]

    def load_state_dict(self, state: list[torch.Tensor]) -> None:
        self.shadow = [s.to(p.device) for s, p in zip(state, self.params, strict=True)]


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    return torch.load(path, map_location=device, weights_only=False)
