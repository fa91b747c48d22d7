"""Muon and NorMuon for 2-D weights, batched over parameters of the same shape.

Update per matrix W with gradient G (momentum m, Nesterov):
    B <- m B + G;  U <- orth(G + m B)  [NorMuon: U rescaled by a per-row (or per-column) second moment]
    W <- (1 - lr wd) W - lr max(1, rows/cols)^0.5 U
Options (all off by default): an EMA momentum buffer, B <- m B + (1 - m) G and U <- orth((1 - m) G + m B);
cautious decay, applied only where U and W have the same sign; decay with the shape-adjusted LR; and
decay after the update, W <- (W - lr s U)(1 - lr wd).
Under DDP every rank holds the all-reduced gradient and runs the same update, so weights stay identical
without optimizer communication (at golf sizes the batched orthogonalisation costs about a millisecond).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from golflab.optim.newton_schulz import NORMALIZATION, coefficients, orthogonalize


def _normuon_scale(u: Tensor, v_buf: Tensor, beta2: float) -> Tensor:
    """Adafactor-like normalisation of the orthogonalised update along its longer side, norm preserved."""
    red_dim = -1 if u.size(-2) >= u.size(-1) else -2
    uf = u.float()
    v_mean = uf.square().mean(dim=red_dim, keepdim=True)
    red = u.size(red_dim)
    v_norm = (v_mean.sum(dim=(-2, -1), keepdim=True) * red).sqrt()
    v_buf.lerp_(v_mean, 1.0 - beta2)
    step = v_buf.clamp_min(1e-10).rsqrt()
    new_norm = ((v_mean * red) * step.square()).sum(dim=(-2, -1), keepdim=True).sqrt()
    return uf * (step * (v_norm / new_norm.clamp_min(1e-10)))


@functools.cache
def _compiled_orthogonalize():
    """The orthogonalisation compiled once per process (one graph per matrix shape), on first use."""
    return torch.compile(orthogonalize, dynamic=False, fullgraph=True)


def _orthogonalize_fn(device: torch.device):
    return _compiled_orthogonalize() if device.type == "cuda" else orthogonalize


def decay_weights(params: list[Tensor], decay: float, mask: Tensor | None) -> None:
    """W <- W - decay W, only where `mask` is set when one is given."""
    if mask is None:
        torch._foreach_mul_(params, 1.0 - decay)
    else:
        torch._foreach_sub_(params, [p * k for p, k in zip(params, mask.unbind(0), strict=True)], alpha=decay)


class Muon(torch.optim.Optimizer):
    """Each param group holds same-shape matrices and its own lr, weight_decay and normuon flag."""

    def __init__(self, groups: list[dict], momentum: float, nesterov: bool, ns_steps: int, ns_coeffs: str,
                 beta2: float, ema_momentum: bool = False, cautious_wd: bool = False, wd_shape_scale: bool = False,
                 wd_after_update: bool = False):
        defaults = dict(lr=0.02, weight_decay=0.0, normuon=False, momentum=momentum)
        super().__init__(groups, defaults)
        assert all(len({p.shape for p in g["params"]}) == 1 and g["params"][0].dim() == 2
                   for g in self.param_groups), (
            "Muon groups need same-shape 2-D parameters, got shapes "
            f"{[{tuple(p.shape) for p in g['params']} for g in self.param_groups]}")
        self.nesterov = nesterov
        self.coeffs = tuple(coefficients(ns_coeffs, ns_steps))
        self.safety, self.eps = NORMALIZATION[ns_coeffs]
        self.beta2 = beta2
        self.ema_momentum, self.cautious_wd = ema_momentum, cautious_wd
        self.wd_shape_scale, self.wd_after_update = wd_shape_scale, wd_after_update

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            rows, cols = params[0].shape
            grads = torch.stack([p.grad for p in params]).float()
            state = self.state[params[0]]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(grads)
                if group["normuon"]:
                    side = (len(params), rows, 1) if rows >= cols else (len(params), 1, cols)
                    state["second_moment"] = grads.new_zeros(side)  # fp32, as grads
            buf, m = state["momentum_buffer"], group["momentum"]
            if self.ema_momentum:
                buf.lerp_(grads, 1.0 - m)
                g = grads.lerp_(buf, m) if self.nesterov else buf
            else:
                buf.mul_(m).add_(grads)
                g = grads.add_(buf, alpha=m) if self.nesterov else buf
            u = _orthogonalize_fn(g.device)(g, self.coeffs, self.safety, self.eps)
            if group["normuon"]:
                u = _normuon_scale(u, state["second_moment"], self.beta2)
            lr, wd = group["lr"], group["weight_decay"]
            scale = max(1.0, rows / cols) ** 0.5
            decay = lr * wd * scale if self.wd_shape_scale else lr * wd
            update = list(u.to(params[0].dtype).unbind(0))
            # cautious: the sign test uses the weights before the update (autoresearch: g * p >= 0)
            mask = (u * torch.stack(params)) >= 0 if wd and self.cautious_wd else None
            if wd and not self.wd_after_update:
                decay_weights(params, decay, mask)
            torch._foreach_add_(params, update, alpha=-lr * scale)
            if wd and self.wd_after_update:
                decay_weights(params, decay, mask)
