"""LQER: a low-rank correction of the quantization error, W ~ Q(W) + A B.

After quantizing, E = W - Q(W) is factored by SVD and its top `rank` components kept: A = U_r S_r
(rows x r), B = V_r^T (r x cols). The factors are themselves stored quantized, the way the 1.0611 record
does (PR #1797): "asym" stores A as int2 codes in [-2, 1] with one scale (max |A| / 1.5) and B as int4
codes in [-8, 7] with one scale per group of `group` values (max / 7.5); otherwise both get one scale
per row at `bits` bits. Scales are fp16. The record corrects only the few matrices with the largest
error (top 3 at rank 4); golflab does the same (artifact.lqer_top_k) for any integer scheme.

Portable core (stdlib, numpy, torch); helpers carry an `_lq_` prefix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def lqer_factors(err: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """The best rank-`rank` approximation of `err` as (A, B) with A @ B ~ err."""
    U, S, Vh = torch.linalg.svd(err.detach().float().cpu(), full_matrices=False)
    r = min(rank, S.numel())
    return (U[:, :r] * S[:r]).contiguous(), Vh[:r].contiguous()


def pack_lqer(A: Tensor, B: Tensor, asym: bool, group: int, bits: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(parts, meta) storing the quantized factors; asym needs B's size to be a multiple of `group`
    (else the per-row form is used, as the record does)."""
    if asym and B.numel() % group == 0:
        sa = _lq_fp16(A.abs().max().clamp_min(1e-10) / 1.5).reshape(1)
        qa = torch.clamp(torch.round(A / sa), -2, 1)
        Bg = B.reshape(-1, group)
        sb = _lq_fp16(Bg.abs().amax(dim=1).clamp_min(1e-10) / 7.5)
        qb = torch.clamp(torch.round(Bg / sb[:, None]), -8, 7).reshape(B.shape)
        meta = {"rank": A.shape[1], "asym": True, "group": group}
    else:
        qmax = 2 ** (bits - 1) - 1
        sa = _lq_fp16(A.abs().amax(dim=1).clamp_min(1e-10) / qmax)
        sb = _lq_fp16(B.abs().amax(dim=1).clamp_min(1e-10) / qmax)
        qa = torch.clamp(torch.round(A / sa[:, None]), -qmax, qmax)
        qb = torch.clamp(torch.round(B / sb[:, None]), -qmax, qmax)
        meta = {"rank": A.shape[1], "asym": False}
    parts = {"lqA": qa.to(torch.int8).numpy().reshape(-1), "lqA_scale": sa.to(torch.float16).numpy(),
             "lqB": qb.to(torch.int8).numpy().reshape(-1), "lqB_scale": sb.to(torch.float16).numpy()}
    return parts, meta


def lqer_correction(parts: dict[str, np.ndarray], meta: dict[str, Any], rows: int, cols: int) -> Tensor:
    """A @ B (fp32, rows x cols) from the stored factors."""
    r = int(meta["rank"])
    qa = torch.from_numpy(np.asarray(parts["lqA"], dtype=np.int8).astype(np.float32)).reshape(rows, r)
    qb = torch.from_numpy(np.asarray(parts["lqB"], dtype=np.int8).astype(np.float32)).reshape(r, cols)
    sa = torch.from_numpy(np.asarray(parts["lqA_scale"], dtype=np.float16).astype(np.float32))
    sb = torch.from_numpy(np.asarray(parts["lqB_scale"], dtype=np.float16).astype(np.float32))
    if meta.get("asym"):
        a = qa * sa
        b = (qb.reshape(-1, int(meta["group"])) * sb[:, None]).reshape(r, cols)
    else:
        a, b = qa * sa[:, None], qb * sb[:, None]
    return a @ b


def _lq_fp16(x: Tensor) -> Tensor:
    """Scales as they are stored (fp16, at least its smallest step so none is 0), back in fp32."""
    return torch.clamp(x.to(torch.float16).float(), min=2.0 ** -24)
