"""Output head: tied or untied projection, tanh logit softcap, optional mixture of softmax, and the loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golflab.config.schema import ModelConfig
from golflab.model.layers import Linear
from golflab.model.params import new_param


def _reduce(nll: Tensor, reduction: str) -> Tensor:
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


class MixtureOfSoftmax(nn.Module):
    """Yang et al. 2018: p(y) = sum_k pi_k softmax(W h_k); h_k = h + P_k h breaks the softmax rank bottleneck."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.k = cfg.mos_experts
        self.proj = Linear(cfg.model_dim, self.k * cfg.model_dim, init_scale=cfg.matrix_init_scale)  # breaks symmetry
        self.prior = Linear(cfg.model_dim, self.k, role="gate", zero_init=True)

    def nll(self, x: Tensor, logits_fn, targets: Tensor) -> Tensor:
        n, d = x.shape
        h = x.unsqueeze(1) + self.proj(x).view(n, self.k, d)
        logp = torch.log_softmax(logits_fn(h), dim=-1)  # (N, K, V)
        log_prior = torch.log_softmax(self.prior(x).float(), dim=-1)  # (N, K)
        tgt = logp.gather(-1, targets.view(n, 1, 1).expand(n, self.k, 1)).squeeze(-1)
        return -torch.logsumexp(log_prior + tgt, dim=-1)


class OutputHead(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.softcap = cfg.logit_softcap
        self.weight = None
        if not cfg.tie_embeddings:
            if cfg.head_init_std > 0:
                init: tuple = ("normal", cfg.head_init_std)
            else:
                init = ("zeros",) if cfg.zero_init_proj else ("normal", 0.001)
            self.weight = new_param((vocab_size, cfg.model_dim), "head", init)
        self.mos = MixtureOfSoftmax(cfg) if cfg.mos_experts > 1 else None

    def logits(self, x: Tensor, tied_weight: Tensor) -> Tensor:
        w = tied_weight if self.weight is None else self.weight
        logits = F.linear(x, w.to(x.dtype)).float()
        if self.softcap > 0:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        return logits

    def scores(self, x: Tensor, tied_weight: Tensor) -> Tensor:
        """(N, V) scores whose log-softmax is the model's log-probabilities: the logits, or for a mixture
        of softmax the log of the mixture (already normalised)."""
        if self.mos is None:
            return self.logits(x, tied_weight)
        n, d = x.shape
        h = x.unsqueeze(1) + self.mos.proj(x).view(n, self.mos.k, d)
        logp = torch.log_softmax(self.logits(h, tied_weight), dim=-1)
        log_prior = torch.log_softmax(self.mos.prior(x).float(), dim=-1)
        return torch.logsumexp(log_prior.unsqueeze(-1) + logp, dim=1)

    def forward(self, x: Tensor, tied_weight: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """x: (N, D) final hidden states; returns the cross-entropy in nats, reduced as asked."""
        if self.mos is None:
            return F.cross_entropy(self.logits(x, tied_weight), targets, reduction=reduction)
        return _reduce(self.mos.nll(x, lambda h: self.logits(h, tied_weight), targets), reduction)
