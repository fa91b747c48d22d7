"""Quantize a state_dict for the artifact and restore it: int8 / int6 with per-row fp16 scales,
float passthrough chosen by name and size, non-float tensors as they are.

Portable core: imports only the standard library, numpy and torch (the exported script inlines it),
so private helpers carry a `_qz_` prefix to keep top-level names distinct.

Schemes (one per tensor):
  int8_row / int6_row        2-D float: per-row clip at a percentile of |w|, scale = clip / qmax (fp16)
                             (artifact.quant = "int8_pg" fills int8_row / int8_tensor by parameter-golf's
                             own rule instead: see quantize_tensor_pg)
  int8_tensor / int6_tensor  other large float tensors: one fp32 scale for the whole tensor
  fp32 / fp16 / bf16         float passthrough (bf16 sources stay bf16: same size, exact)
  raw                        non-float tensors, bytes as they are
  alias                      a tensor sharing storage with an earlier one (tied embeddings): stored once
int6 values live in [-31, 31] and are packed 4 values into 3 bytes (see pack_int6).
artifact.quant = "gptq" / "gptq_lite" store int<bits>_row (any width 2..8; int5, int7, ... one byte a
value): the same format, with codes chosen by GPTQ under calibration Hessians or scales by GPTQ-lite's
clip search (golflab.artifact.gptq). With artifact.lqer_rank > 0 the matrices with the largest
quantization error also carry low-rank correction factors (parts lqA..., golflab.artifact.lqer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from golflab.artifact.gptq import gptq_codes, lite_clip, sd_clip
from golflab.artifact.lqer import lqer_correction, lqer_factors, pack_lqer
from golflab.config.schema import ArtifactConfig
from golflab.errors import ConfigError, GolflabError

WIDTHS = (2, 3, 4, 5, 6, 7, 8)  # the integer widths quantization supports
QMAX = {b: 2 ** (b - 1) - 1 for b in WIDTHS}  # symmetric integer range per bit width
FP16_MAX = 65504.0

@dataclass
class QTensor:
    """One stored tensor: its scheme, original shape/dtype, and the numpy arrays that hold it."""

    scheme: str
    shape: tuple[int, ...]
    dtype: str  # original torch dtype name, restored on dequantize
    parts: dict[str, np.ndarray]
    meta: dict[str, Any]  # e.g. {"count": n} for int6, {"alias": name}

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.parts.values())


@dataclass
class QuantizedModel:
    """A quantized state_dict: everything needed to rebuild the tensors, no config required."""

    tensors: dict[str, QTensor]


@dataclass
class CategoryStats:
    count: int = 0
    numel: int = 0
    bytes_before: int = 0  # the tensors' in-memory size in their original dtype
    bytes_after: int = 0  # stored bytes before compression


@dataclass
class QuantStats:
    params: int
    categories: dict[str, CategoryStats]
    max_abs_err: dict[str, float]  # per tensor, filled only when measure_error=True

    @property
    def bytes_before(self) -> int:
        return sum(c.bytes_before for c in self.categories.values())

    @property
    def bytes_after(self) -> int:
        return sum(c.bytes_after for c in self.categories.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params, "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
            "categories": {k: vars(v).copy() for k, v in self.categories.items()},
            "max_abs_err": dict(self.max_abs_err),
        }


# ---------------------------------------------------------------- int6 packing (4 values -> 3 bytes)
def pack_int6(values: np.ndarray) -> np.ndarray:
    """Pack integers in [-31, 31] into 3 bytes per 4 values (uint8, length 3 * ceil(n / 4)).

    Values are zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) so small magnitudes have zero
    high bits, then split into two planes: the high 4 bits of each value (two per byte, first 2/3 of
    the output) and the low 2 bits (four per byte, last 1/3). Keeping the compressible high bits apart
    from the near-random low bits lets the compressor model them (measured in docs/artifact.md).
    The caller records n; padding values are zeros.
    """
    v = np.asarray(values).reshape(-1).astype(np.int16)
    if v.size and (v.min() < -31 or v.max() > 31):
        raise ValueError("pack_int6: values must lie in [-31, 31]")
    n = v.size
    groups = -(-n // 4)
    u = np.zeros(groups * 4, dtype=np.uint8)
    u[:n] = ((v << 1) ^ (v >> 15)).astype(np.uint8)  # zigzag: 0..62
    u = u.reshape(groups, 4)
    hi, lo = u >> 2, u & 3
    hi_plane = (hi[:, 0::2] | (hi[:, 1::2] << 4)).reshape(-1)  # 2 bytes per group
    lo_plane = lo[:, 0] | (lo[:, 1] << 2) | (lo[:, 2] << 4) | (lo[:, 3] << 6)  # 1 byte per group
    return np.concatenate([hi_plane, lo_plane]).astype(np.uint8)


def unpack_int6(packed: np.ndarray, count: int, check: bool = True) -> np.ndarray:
    """Inverse of pack_int6: the first `count` values as int8."""
    p = np.asarray(packed, dtype=np.uint8).reshape(-1)
    groups = -(-count // 4)
    if check and p.size != 3 * groups:
        raise GolflabError(f"int6 data has {p.size} bytes, expected {3 * groups} for {count} values")
    hi_plane, lo_plane = p[: 2 * groups].reshape(groups, 2), p[2 * groups :]
    u = np.empty((groups, 4), dtype=np.uint8)
    u[:, 0::2] = hi_plane & 0x0F
    u[:, 1::2] = hi_plane >> 4
    u <<= 2
    for j in range(4):  # 4 bit-fields, each a vectorised op over all groups
        u[:, j] |= (lo_plane >> (2 * j)) & 3
    z = u.reshape(-1)[:count].astype(np.int16)
    return ((z >> 1) ^ -(z & 1)).astype(np.int8)


# ---------------------------------------------------------------- integer quantization
def _qz_quantile_rows(a: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-quantile (0..1) with linear interpolation; torch.quantile caps its input size."""
    n = a.shape[1]
    s, _ = torch.sort(a, dim=1)
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return s[:, lo] + (s[:, hi] - s[:, lo]) * frac


def _qz_fp16_at_least(x: torch.Tensor) -> np.ndarray:
    """Round float32 values to fp16, upward where rounding went down (so clip / scale <= qmax)."""
    xs = x.numpy().astype(np.float32)
    h = xs.astype(np.float16)
    low = h.astype(np.float32) < xs
    h[low] = np.nextafter(h[low], np.float16(np.inf))
    return h


def quantize_tensor(t: torch.Tensor, bits: int, clip_percentile: float, per_row: bool,
                    scale_floor: float = 0.0) -> QTensor:
    """Symmetric round-to-nearest quantization of a float tensor with percentile clipping; per-row
    scales never go below `scale_floor` (parameter-golf's baseline uses 1/127: small rows then get a
    fixed-point step, which compresses far better and loses more accuracy)."""
    qmax = QMAX[bits]
    w = t.detach().to(device="cpu", dtype=torch.float32)
    rows = w.reshape(w.shape[0], -1) if per_row else w.reshape(1, -1)
    if not bool(torch.isfinite(rows).all()):
        raise GolflabError("tensor has NaN or inf values; cannot quantize it")
    clip = _qz_quantile_rows(rows.abs(), clip_percentile / 100.0)
    if per_row:
        scale16 = _qz_row_scales(clip, qmax, scale_floor)  # all-zero (or underflowing) rows: any scale works
        scale = torch.from_numpy(scale16.astype(np.float32))
        scale_part = scale16
    else:
        s = float(clip[0]) / qmax
        s = s if s > 0 else 1.0
        scale = torch.tensor([s], dtype=torch.float32)
        scale_part = np.array([s], dtype=np.float32)
    clipped = torch.maximum(torch.minimum(rows, clip[:, None]), -clip[:, None])
    q = torch.clamp(torch.round(clipped / scale[:, None]), -qmax, qmax).to(torch.int8).numpy()
    return _qz_int_qtensor(q, scale_part, bits, per_row, t)


def _qz_int_qtensor(q: np.ndarray, scale_part: np.ndarray, bits: int, per_row: bool, t: torch.Tensor) -> QTensor:
    """Integer codes and their scales as a stored tensor (int6 packed, other widths one byte a value)."""
    scheme = f"int{bits}_{'row' if per_row else 'tensor'}"
    if bits == 6:
        return _qz_stored(scheme, t, {"q": pack_int6(q), "scale": scale_part}, {"count": int(q.size)})
    return _qz_stored(scheme, t, {"q": q.reshape(-1), "scale": scale_part})


def _qz_row_scales(clip: torch.Tensor, qmax: int, scale_floor: float) -> np.ndarray:
    """Per-row fp16 scales for per-row clips (rounded up, so clip / scale <= qmax; zero rows get 1)."""
    scale16 = _qz_fp16_at_least(torch.clamp(clip / qmax, min=scale_floor))
    scale16[scale16 == 0] = np.float16(1.0)
    return scale16


def clip_sigmas_for(name: str, cfg: ArtifactConfig) -> float:
    """gptq's SDClip multiplier for a tensor: the group's own when set, else clip_sigmas (0: percentile rule)."""
    for pattern, value in ((".attn.", cfg.attn_clip_sigmas), (".mlp.", cfg.mlp_clip_sigmas), ("emb", cfg.embed_clip_sigmas)):
        if pattern in name and value > 0:
            return value
    return cfg.clip_sigmas


def quantize_tensor_gptq(t: torch.Tensor, name: str, bits: int, cfg: ArtifactConfig,
                         hessians: dict[str, torch.Tensor] | None) -> QTensor:
    """A 2-D tensor by artifact.quant = "gptq" (codes by GPTQ under its Hessian; a tensor without one, such
    as an embedding lookup, rounds to nearest with the same scales) or "gptq_lite" (GPTQ-lite's clip)."""
    qmax = QMAX[bits]
    w = t.detach().to(device="cpu", dtype=torch.float32)
    if not bool(torch.isfinite(w).all()):
        raise GolflabError("tensor has NaN or inf values; cannot quantize it")
    if cfg.quant == "gptq_lite":
        clip = lite_clip(w, qmax, cfg.scale_floor)
    else:
        sigmas = clip_sigmas_for(name, cfg)
        clip = sd_clip(w, sigmas) if sigmas > 0 else _qz_quantile_rows(w.abs(), cfg.clip_percentile / 100.0)
    scale16 = _qz_row_scales(clip, qmax, cfg.scale_floor)
    scale = torch.from_numpy(scale16.astype(np.float32))
    h = (hessians or {}).get(name) if cfg.quant == "gptq" else None
    if h is not None:
        q = gptq_codes(w, h, scale, qmax).numpy()
    else:
        q = torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax).to(torch.int8).numpy()
    return _qz_int_qtensor(q, scale16, bits, True, t)


# parameter-golf's train_gpt.py (quantize_float_tensor): per-row scale = (clip / 127).clamp_min(1 / 127)
# in fp32, codes rounded with that fp32 scale, the scale stored as fp16 (round to nearest).
PG_SCALE_FLOOR = 1.0 / 127.0
_QZ_QUANTILE_MAX = 1 << 24  # torch.quantile refuses larger inputs


def _qz_quantile_exact(rows: torch.Tensor, q: float) -> torch.Tensor:
    """torch.quantile per row (what the reference calls), over chunks of rows when the input is large
    (`rows` is not empty)."""
    if rows.shape[1] > _QZ_QUANTILE_MAX:  # a single row is too large for torch.quantile
        return _qz_quantile_rows(rows, q)
    return torch.cat([torch.quantile(chunk, q, dim=1) for chunk in rows.split(_QZ_QUANTILE_MAX // rows.shape[1])])


def quantize_tensor_pg(t: torch.Tensor, clip_percentile: float) -> QTensor:
    """int8 exactly as parameter-golf's reference script quantizes (2-D: per row, else per tensor).
    Only tensors larger than artifact.keep_float_max_numel (>= 0) get here, so never an empty one."""
    w = t.detach().to(device="cpu", dtype=torch.float32)
    if not bool(torch.isfinite(w).all()):
        raise GolflabError("tensor has NaN or inf values; cannot quantize it")
    per_row = w.ndim == 2
    rows = w if per_row else w.reshape(1, -1)
    clip = _qz_quantile_exact(rows.abs(), clip_percentile / 100.0)
    if per_row:
        scale = (clip / 127.0).clamp_min(PG_SCALE_FLOOR)
        scale_part = scale.to(torch.float16).numpy()
    else:  # the reference divides in double precision here, then rounds the scale to fp32
        c = float(clip[0])
        scale = torch.tensor([c / 127.0 if c > 0 else 1.0], dtype=torch.float32)
        scale_part = scale.numpy()
    clipped = torch.maximum(torch.minimum(rows, clip[:, None]), -clip[:, None])
    q = torch.clamp(torch.round(clipped / scale[:, None]), -127, 127).to(torch.int8).numpy()
    return _qz_int_qtensor(q, scale_part, 8, per_row, t)


def _qz_dequantize_int(qt: QTensor, check: bool = True, int6: bool = True, lqer: bool = True) -> torch.Tensor:
    if int6 and qt.scheme.startswith("int6"):
        q = unpack_int6(qt.parts["q"], int(qt.meta["count"]), check)
    else:
        q = np.asarray(qt.parts["q"], dtype=np.int8)
    if check and q.size != (numel := int(np.prod(qt.shape, dtype=np.int64))):
        raise GolflabError(f"quantized data has {q.size} values, expected {numel} for shape {list(qt.shape)}")
    scale = torch.from_numpy(qt.parts["scale"].astype(np.float32))
    w = torch.from_numpy(q.astype(np.float32)).reshape(scale.numel(), -1) * scale[:, None]
    if lqer and "lqer" in qt.meta:  # the low-rank correction of the rounding error
        w = w + lqer_correction(qt.parts, qt.meta["lqer"], w.shape[0], w.shape[1])
    return w.reshape(qt.shape).to(getattr(torch, qt.dtype))


# ---------------------------------------------------------------- passthrough
_QZ_FLOATS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # float scheme -> stored dtype


def _qz_stored(scheme: str, t: torch.Tensor, parts: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> QTensor:
    """A stored tensor with `t`'s shape and dtype (any torch dtype, by its name: "float32", "bfloat16", "bool")."""
    return QTensor(scheme, tuple(t.shape), str(t.dtype).removeprefix("torch."), parts, meta or {})


def store_float(t: torch.Tensor, scheme: str) -> QTensor:
    """Float passthrough as fp32, fp16 or bf16 (bf16 kept bit-exact), or "raw": the tensor's bytes as they are."""
    data = t.detach().to(device="cpu", dtype=_QZ_FLOATS.get(scheme, t.dtype)).contiguous().reshape(-1)
    return _qz_stored(scheme, t, {"data": data.view(torch.uint8).numpy().copy()})


def _qz_dequantize_float(qt: QTensor, check: bool = True) -> torch.Tensor:
    dtype = getattr(torch, qt.dtype)
    stored = _QZ_FLOATS.get(qt.scheme, dtype)  # raw: the tensor's own dtype
    data = np.ascontiguousarray(qt.parts["data"], dtype=np.uint8)
    numel = int(np.prod(qt.shape, dtype=np.int64))
    if check and data.size != (nbytes := numel * stored.itemsize):
        raise GolflabError(f"tensor data has {data.size} bytes, expected {nbytes} for shape {list(qt.shape)}")
    if numel == 0:  # torch.frombuffer refuses an empty buffer
        return torch.empty(qt.shape, dtype=dtype)
    return torch.frombuffer(bytearray(data.tobytes()), dtype=stored).reshape(qt.shape).to(dtype)


# ---------------------------------------------------------------- whole state_dict
def choose_scheme(name: str, t: torch.Tensor, cfg: ArtifactConfig) -> str:
    """The storage scheme of one tensor under cfg (before the fp16-range fallback)."""
    if not t.is_floating_point():
        return "raw"
    if any(p in name for p in cfg.keep_float_patterns):
        return "fp32"
    if cfg.quant == "none" or t.numel() <= cfg.keep_float_max_numel or any(p in name for p in cfg.fp16_patterns):
        return "bf16" if t.dtype == torch.bfloat16 else "fp16"
    if cfg.quant in ("gptq", "gptq_lite"):
        bits = cfg.embed_bits if "emb" in name else cfg.bits
    else:
        bits = 6 if cfg.quant == "int6" else 8
    return f"int{bits}_{'row' if t.ndim == 2 else 'tensor'}"


def check_artifact_config(cfg: ArtifactConfig) -> None:
    if cfg.quant not in ("int8", "int8_pg", "int6", "gptq", "gptq_lite", "none"):
        raise ConfigError(f"artifact.quant: {cfg.quant!r} is not allowed; expected one of 'int8', 'int8_pg', 'int6', "
                          "'gptq', 'gptq_lite', 'none'")
    if cfg.bits not in WIDTHS or cfg.embed_bits not in WIDTHS:
        raise ConfigError(f"artifact.bits, embed_bits: {cfg.bits}, {cfg.embed_bits} must be integer widths from 2 to 8")
    if min(cfg.clip_sigmas, cfg.attn_clip_sigmas, cfg.mlp_clip_sigmas, cfg.embed_clip_sigmas) < 0:
        raise ConfigError("artifact.*clip_sigmas must be >= 0 (0 = the clip_percentile rule)")
    if cfg.lqer_rank < 0 or cfg.lqer_top_k < 0 or cfg.lqer_group < 1 or cfg.lqer_bits not in WIDTHS:
        raise ConfigError("artifact.lqer_rank and lqer_top_k must be >= 0, lqer_group >= 1, lqer_bits in 2..8")
    if not 0.0 < cfg.clip_percentile <= 100.0:
        raise ConfigError(f"artifact.clip_percentile: {cfg.clip_percentile} must be in (0, 100]")
    if cfg.keep_float_max_numel < 0:
        raise ConfigError(f"artifact.keep_float_max_numel: {cfg.keep_float_max_numel} must be >= 0")


def _qz_storage_key(name: str, t: torch.Tensor) -> tuple[Any, ...] | str:
    """What identifies the memory `t` views: tensors with one key are stored once (an empty tensor views
    none, so its key is its own name)."""
    if t.numel() == 0:
        return name
    return (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def quantize_state_dict(
    sd: dict[str, torch.Tensor], cfg: ArtifactConfig, *, measure_error: bool = False,
    hessians: dict[str, torch.Tensor] | None = None, stats: bool = True,
) -> tuple[QuantizedModel, QuantStats | None]:
    """Quantize every tensor of `sd` by the rules of `cfg`; returns the model and size statistics
    (None unless `stats`). `hessians` (golflab.artifact.gptq.collect_hessians) are what artifact.quant
    = "gptq" needs."""
    check_artifact_config(cfg)
    if cfg.quant == "gptq" and hessians is None:
        raise ConfigError("artifact.quant='gptq' needs Hessians from calibration batches (the trainer collects "
                          "them from training data; golflab.artifact.gptq.collect_hessians)")
    tensors: dict[str, QTensor] = {}
    cats: dict[str, CategoryStats] = {}
    errors: dict[str, float] = {}
    seen: dict[tuple[Any, ...] | str, str] = {}
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            raise GolflabError(f"state_dict entry '{name}' is a {type(t).__name__}, not a tensor")
        key = _qz_storage_key(name, t)
        if key in seen:
            qt = _qz_stored("alias", t, {}, {"alias": seen[key]})
        else:
            seen[key] = name
            scheme = choose_scheme(name, t, cfg)
            if scheme == "fp16" and t.numel() and float(t.detach().abs().max()) > FP16_MAX:
                scheme = "fp32"  # would overflow fp16
            try:
                if scheme.startswith("int"):  # one expression, so the exported script keeps one rule
                    qt = quantize_tensor_pg(t, cfg.clip_percentile) if cfg.quant == "int8_pg" else \
                        quantize_tensor_gptq(t, name, int(scheme[3]), cfg, hessians) \
                        if cfg.quant in ("gptq", "gptq_lite") and scheme.endswith("row") else \
                        quantize_tensor(t, int(scheme[3]), cfg.clip_percentile, scheme.endswith("row"), cfg.scale_floor)
                else:
                    qt = store_float(t, scheme)
            except GolflabError as exc:
                raise GolflabError(f"state_dict tensor '{name}': {exc}") from None
            if measure_error and t.is_floating_point() and t.numel():
                back = dequantize_tensor(qt).float()
                errors[name] = float((back - t.detach().cpu().float()).abs().max())
        tensors[name] = qt
    if cfg.lqer_rank > 0:
        add_lqer(tensors, sd, cfg)
    if not stats:
        return QuantizedModel(tensors), None
    for name, qt in tensors.items():
        t = sd[name]
        c = cats.setdefault(qt.scheme, CategoryStats())
        c.count += 1
        c.numel += t.numel()
        c.bytes_before += 0 if qt.scheme == "alias" else t.numel() * t.element_size()
        c.bytes_after += qt.nbytes
        if measure_error and "lqer" in qt.meta:
            errors[name] = float((dequantize_tensor(qt).float() - t.detach().cpu().float()).abs().max())
    params = sum(sd[name].numel() for name, qt in tensors.items() if qt.scheme != "alias")
    return QuantizedModel(tensors), QuantStats(params, cats, errors)


def add_lqer(tensors: dict[str, QTensor], sd: dict[str, torch.Tensor], cfg: ArtifactConfig) -> None:
    """Give the artifact.lqer_top_k per-row quantized matrices with the largest error (Frobenius norm of
    W - Q(W)) rank-artifact.lqer_rank correction factors (golflab.artifact.lqer), in place."""
    errs = {}
    for name, qt in tensors.items():
        if qt.scheme.startswith("int") and qt.scheme.endswith("_row") and len(qt.shape) == 2:
            errs[name] = sd[name].detach().cpu().float() - dequantize_tensor(qt).float()
    for name in sorted(errs, key=lambda k: -float(errs[k].norm()))[: cfg.lqer_top_k]:
        a, b = lqer_factors(errs[name], cfg.lqer_rank)
        parts, meta = pack_lqer(a, b, cfg.lqer_asym, cfg.lqer_group, cfg.lqer_bits)
        tensors[name].parts.update(parts)
        tensors[name].meta["lqer"] = meta


def packs_int6(cfg: ArtifactConfig) -> bool:
    """Whether `cfg` stores any tensor as packed int6 (the widths choose_scheme gives)."""
    if cfg.quant in ("gptq", "gptq_lite"):
        return 6 in (cfg.bits, cfg.embed_bits)
    return cfg.quant == "int6"


def dequantize_tensor(qt: QTensor, check: bool = True, int6: bool = True, lqer: bool = True) -> torch.Tensor:
    """`check=False` skips the checks that guard against damaged or foreign data; `int6` / `lqer`:
    whether `qt` may be packed int6 / carry LQER factors (the flags of dequantize_state_dict)."""
    if check and not isinstance(getattr(torch, str(qt.dtype), None), torch.dtype):
        raise GolflabError(f"unknown dtype '{qt.dtype}' in quantized model")
    if qt.scheme.startswith("int"):
        return _qz_dequantize_int(qt, check, int6, lqer)
    if not check or qt.scheme in ("fp32", "fp16", "bf16", "raw"):
        return _qz_dequantize_float(qt, check)
    raise GolflabError(f"unknown storage scheme '{qt.scheme}' in quantized model")


def dequantize_state_dict(qm: QuantizedModel, *, check: bool = True, int6: bool = True,
                          lqer: bool = True) -> dict[str, torch.Tensor]:
    """Rebuild the state_dict: original names, shapes and dtypes; aliases share one tensor. A caller
    that quantized `qm` itself (the round trip) passes `check=False` and whether its settings write
    int6 (packs_int6) or LQER factors: the checks cannot fire then, and the exported script keeps
    only the decoders its config needs."""
    out: dict[str, torch.Tensor] = {}
    for name, qt in qm.tensors.items():
        if qt.scheme == "alias":
            target = qt.meta.get("alias")
            if check and target not in out:
                raise GolflabError(f"tensor '{name}' aliases '{target}', which is not stored before it")
            out[name] = out[target]
        elif not check:
            out[name] = dequantize_tensor(qt, check, int6, lqer)
        else:
            try:
                out[name] = dequantize_tensor(qt)
            except GolflabError as exc:
                raise GolflabError(f"quantized tensor '{name}': {exc}") from None
    return out
