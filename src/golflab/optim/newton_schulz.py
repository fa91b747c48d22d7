"""Orthogonalisation of (batched) update matrices: the classic quintic Newton-Schulz iteration and the
Polar Express schedule (Amsel et al. 2025), both run in bf16."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

QUINTIC = (3.4445, -4.7750, 2.0315)  # Muon's fixed coefficients (Keller Jordan)

# Polar Express, computed for 5 iterations with safety factor 2e-2 and cushion 2.
POLAR_EXPRESS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def coefficients(kind: str, steps: int) -> list[tuple[float, float, float]]:
    if kind == "quintic":
        return [QUINTIC] * steps
    # Past its tuned length, Polar Express repeats its last (most conservative) step.
    return [POLAR_EXPRESS[min(i, len(POLAR_EXPRESS) - 1)] for i in range(steps)]


# (safety factor, eps) of the normalisation x / (|x|_F (1 + safety) + eps) before the iteration:
# parameter-golf's Muon uses (0, 1e-7); autoresearch's Polar Express (0.02, 1e-6) (train.py muon_step_fused).
NORMALIZATION = {"quintic": (0.0, 1e-7), "polar_express": (0.02, 1e-6)}


def orthogonalize(g: Tensor, coeffs: Sequence[tuple[float, float, float]], safety: float = 0.0,
                  eps: float = 1e-7) -> Tensor:
    """Approximate U V^T of g = U S V^T for g of shape (..., rows, cols); returns bf16."""
    x = g.bfloat16()
    x = x / (x.norm(dim=(-2, -1), keepdim=True) * (1.0 + safety) + eps)
    tall = x.size(-2) > x.size(-1)
    if tall:  # iterate on the smaller Gram matrix
        x = x.mT
    for a, b, c in coeffs:
        A = x @ x.mT
        B = b * A + c * (A @ A)
        x = a * x + B @ x
    return x.mT if tall else x
