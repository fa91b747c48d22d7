"""Hessian-aware quantization codes: GPTQ (Frantar et al., 2023) and the records' GPTQ-lite clip search.

GPTQ quantizes a weight matrix W (rows = outputs, columns = inputs) one column at a time and spreads
each column's rounding error over the columns not yet quantized, weighted by the inverse of the
Hessian H = E[x x^T] of the layer's inputs, so that the layer's *outputs* on the calibration data move
as little as possible. Columns go in order of decreasing H diagonal ("act order"), in blocks of 128
with the error of a block applied to the rest at once. The per-row scales are chosen first (by the
caller) and stay fixed, so the stored format is exactly that of round-to-nearest.

Hessians come from forward hooks over a few training batches (`collect_hessians`): the records
calibrate on training data within the training budget, never on val data (docs/artifact.md).

Portable core (stdlib, torch): the exported script inlines it; helpers carry a `_gq_` prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

GPTQ_BLOCK = 128  # columns per lazy-update block (the records' and the paper's value)
GPTQ_DAMP = 0.01  # added to H's diagonal, as a fraction of its mean: keeps the Cholesky factor stable
LITE_PERCENTILES = (0.999, 0.9995, 0.9999, 0.99999, 1.0)  # GPTQ-lite's candidate clips (2026-03-22 record)


def gptq_codes(w: Tensor, hessian: Tensor, scale: Tensor, qmax: int) -> Tensor:
    """Integer codes (int8 on the CPU, shape of w) for w ~ codes * scale[:, None], chosen by GPTQ under
    `hessian` (in_features x in_features). Codes are clamped to [-qmax, qmax]. Runs on the Hessian's
    device (the GPU in a GPU run: the column loop is hundreds of small kernels per matrix)."""
    dev = hessian.device
    W = w.detach().float().to(dev).clone()
    rows, cols = W.shape
    H = hessian.detach().double().clone()
    dead = torch.diag(H) == 0  # inputs never active in calibration: no error feedback through them
    H[dead, dead] = 1.0
    H.diagonal().add_(GPTQ_DAMP * H.diagonal().mean())
    perm = torch.argsort(torch.diag(H), descending=True)
    W, H = W[:, perm], H[perm][:, perm]
    # upper Cholesky factor of H^-1: row j holds the weights that spread column j's error onward
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True).float()
    s = scale.detach().float().to(dev)
    Q = torch.empty(rows, cols, dtype=torch.int8, device=dev)
    for i1 in range(0, cols, GPTQ_BLOCK):
        i2 = min(i1 + GPTQ_BLOCK, cols)
        Wb, Ub = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        err = torch.empty(rows, i2 - i1, device=dev)
        for j in range(i2 - i1):
            q = torch.clamp(torch.round(Wb[:, j] / s), -qmax, qmax)
            Q[:, i1 + j] = q.to(torch.int8)
            e = (Wb[:, j] - q * s) / Ub[j, j]
            Wb[:, j:] -= e[:, None] * Ub[j, j:][None, :]
            err[:, j] = e
        W[:, i2:] -= err @ U[i1:i2, i2:]
    return Q[:, torch.argsort(perm)].cpu()


def lite_clip(w: Tensor, qmax: int, scale_floor: float = 0.0) -> Tensor:
    """GPTQ-lite's per-row clip (fp32, one value per row): of the candidate percentiles of |w| per row, the
    one whose round-to-nearest reconstruction has the smallest mean squared error over the whole matrix
    (the record picks one percentile per matrix, not per row)."""
    W = w.detach().float().cpu()
    a = W.abs()
    best, best_err = None, float("inf")
    for pct in LITE_PERCENTILES:
        clip = a.amax(dim=1) if pct >= 1.0 else _gq_row_quantile(a, pct)
        s = _gq_fp16(torch.clamp(clip / qmax, min=max(scale_floor, 1e-12)))
        err = float((W - torch.clamp(torch.round(W / s[:, None]), -qmax, qmax) * s[:, None]).square().mean())
        if err < best_err:
            best, best_err = clip, err
    assert best is not None
    return best


def sd_clip(w: Tensor, sigmas: float) -> Tensor:
    """The SDClip rule of the SP8192 records: clip each row at `sigmas` standard deviations of that row."""
    return sigmas * w.detach().float().cpu().std(dim=1)


def _gq_row_quantile(a: Tensor, q: float) -> Tensor:
    s, _ = torch.sort(a, dim=1)
    pos = q * (a.shape[1] - 1)
    lo = int(pos)
    hi = min(lo + 1, a.shape[1] - 1)
    return s[:, lo] + (s[:, hi] - s[:, lo]) * (pos - lo)


def _gq_fp16(x: Tensor) -> Tensor:
    """Scales as they are stored (fp16), back in fp32."""
    return x.to(torch.float16).float()


# ---------------------------------------------------------------- calibration
def collect_hessians(model: torch.nn.Module, batches: Iterable[tuple[Tensor, Tensor]],
                     autocast_dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """{state_dict name of a 2-D weight: H = mean of x x^T over the inputs x of the matmul it does}.

    Hooks every module with a 2-D `weight` parameter that is not an embedding lookup (its input is the
    activation the weight multiplies), and the output head: with tied embeddings its input is what
    `tok_emb.weight` multiplies. Batches are (x, y) token tensors on the model's device. Under
    torch.distributed the Hessians are averaged over ranks, so every rank quantizes the same way. They
    stay on the model's device, where GPTQ then runs."""
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []

    def hook(name: str):
        def fn(_module: torch.nn.Module, args: tuple) -> None:
            x = args[0].detach().float().reshape(-1, args[0].shape[-1])
            if name not in sums:
                sums[name] = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float32, device=x.device)
                counts[name] = 0
            sums[name].addmm_(x.T, x)
            counts[name] += x.shape[0]
        return fn

    for mname, module in model.named_modules():
        w = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Embedding) or not isinstance(w, torch.nn.Parameter) or w.ndim != 2:
            continue
        hooks.append(module.register_forward_pre_hook(hook(f"{mname}.weight" if mname else "weight")))
    head = getattr(model, "head", None)
    tok_emb = getattr(model, "tok_emb", None)
    if head is not None and getattr(head, "weight", None) is None and tok_emb is not None:
        hooks.append(head.register_forward_pre_hook(hook("tok_emb.weight")))  # tied: the head multiplies tok_emb
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in batches:
                with torch.autocast(x.device.type, dtype=autocast_dtype or torch.bfloat16,
                                    enabled=autocast_dtype is not None):
                    model(x, y)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out = {}
    for name in sorted(sums):
        h, n = sums[name], torch.tensor(float(counts[name]), device=sums[name].device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(h)
            torch.distributed.all_reduce(n)
        out[name] = h / n
    return out
