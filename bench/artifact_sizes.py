"""Artifact sizes and timings on a state_dict shaped like the parameter-golf baseline.

    PYTHONPATH=src python bench/artifact_sizes.py [--layers 9 --dim 512 --vocab 1024] [--layouts]

Weights are random (normal * 0.02, with outlier rows and values), NOT trained: trained weights have
more structure and compress better, so absolute sizes here are pessimistic; compare rows, not totals.
Prints Markdown tables (used in docs/artifact.md).
"""

from __future__ import annotations

import argparse
import copy
import lzma
import time

import numpy as np
import torch

from golflab.artifact.compress import compress_bytes, wrap_blob
from golflab.artifact.pack import unpack_artifact
from golflab.artifact.quantize import quantize_state_dict, unpack_int6
from golflab.artifact.serialize import serialize_quantized
from golflab.config.schema import ArtifactConfig


def baseline_state_dict(layers: int, dim: int, vocab: int, heads: int, kv_heads: int, mlp_mult: int,
                        seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    kv = dim // heads * kv_heads

    def mat(rows: int, cols: int) -> torch.Tensor:
        w = torch.randn(rows, cols, generator=g) * 0.02
        idx = torch.randperm(rows, generator=g)[: max(1, rows // 100)]
        w[idx] *= 4.0  # ~1% outlier rows
        flat = w.view(-1)
        spikes = torch.randint(0, flat.numel(), (flat.numel() // 10_000,), generator=g)
        flat[spikes] *= 8.0  # sparse outlier values
        return w

    sd = {"tok_emb.weight": mat(vocab, dim)}
    for i in range(layers):
        p = f"blocks.{i}."
        sd |= {
            p + "attn.c_q.weight": mat(dim, dim), p + "attn.c_k.weight": mat(kv, dim),
            p + "attn.c_v.weight": mat(kv, dim), p + "attn.proj.weight": mat(dim, dim),
            p + "attn.q_gain": torch.full((heads,), 1.5), p + "mlp.fc.weight": mat(mlp_mult * dim, dim),
            p + "mlp.proj.weight": mat(dim, mlp_mult * dim), p + "attn_scale": torch.ones(dim),
            p + "mlp_scale": torch.ones(dim), p + "resid_mix": torch.stack([torch.ones(dim), torch.zeros(dim)]),
        }
    sd["skip_weights"] = torch.ones(layers // 2, dim)
    return sd


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main_table(sd: dict[str, torch.Tensor]) -> None:
    params = sum(t.numel() for t in sd.values())
    print(f"params: {params:,}\n")
    print("| quant | compress | tok_emb | raw payload | artifact bytes | vs int8+zlib | pack s | unpack s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    runs = [("int8", "zlib"), ("int8", "lzma"), ("int6", "zlib"), ("int6", "lzma"), ("int6", "brotli"),
            ("int6", "zstd")]
    ref = None
    for emb in ("quantized", "fp16"):
        for quant, codec in runs:
            cfg = ArtifactConfig(quant=quant, compress=codec, fp16_patterns=["tok_emb"] if emb == "fp16" else [])
            qm, tq = timed(lambda cfg=cfg: quantize_state_dict(sd, cfg)[0])
            payload, ts = timed(lambda qm=qm: serialize_quantized(qm))
            blob, tc = timed(lambda payload=payload, codec=codec: wrap_blob(payload, codec))
            _, tu = timed(lambda blob=blob: unpack_artifact(blob))
            ref = ref or len(blob)
            print(f"| {quant} | {codec} | {emb} | {len(payload):,} | {len(blob):,} | {len(blob) / ref:.3f} | "
                  f"{tq + ts + tc:.1f} | {tu:.1f} |", flush=True)


def layout_table(sd: dict[str, torch.Tensor]) -> None:
    """How the int6 byte layout and float byte-shuffle change compressed size (tok_emb kept fp16)."""
    cfg = ArtifactConfig(quant="int6", fp16_patterns=["tok_emb"])
    qm, _ = quantize_state_dict(sd, cfg)

    def naive_24bit(qt) -> np.ndarray:  # two's-complement fields, 4 x 6 bits per 3 bytes
        v = unpack_int6(qt.parts["q"], qt.meta["count"]).astype(np.int32) & 63
        v = np.concatenate([v, np.zeros(-len(v) % 4, np.int32)]).reshape(-1, 4)
        word = v[:, 0] | (v[:, 1] << 6) | (v[:, 2] << 12) | (v[:, 3] << 18)
        return np.stack([word & 255, (word >> 8) & 255, word >> 16], axis=1).astype(np.uint8).reshape(-1)

    def variant(kind: str):
        m = copy.deepcopy(qm)
        for qt in m.tensors.values():
            if qt.scheme.startswith("int6") and kind == "naive":
                qt.parts["q"] = naive_24bit(qt)
            elif qt.scheme.startswith("int6") and kind == "int8":
                qt.parts["q"] = unpack_int6(qt.parts["q"], qt.meta["count"])
        return m

    print("| int6 layout | float bytes | payload | zlib | lzma | zstd |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for kind, label in (("planar", "4-in-3, zigzag, hi/lo planes (golflab)"),
                        ("naive", "4-in-3, 24-bit two's-complement fields"),
                        ("int8", "one value per int8 byte (unpacked)")):
        for shuffle in (True, False):
            payload = serialize_quantized(variant(kind), shuffle=shuffle)
            sizes = [len(compress_bytes(payload, c)) for c in ("zlib", "lzma", "zstd")]
            print(f"| {label} | {'shuffled' if shuffle else 'as is'} | {len(payload):,} | "
                  + " | ".join(f"{s:,}" for s in sizes) + " |", flush=True)
    payload = serialize_quantized(qm)
    for name, preset in (("lzma preset 9", 9), ("lzma preset 9 | EXTREME", 9 | lzma.PRESET_EXTREME)):
        out, t = timed(lambda preset=preset: lzma.compress(
            payload, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": preset}]))
        print(f"\n{name}: {len(out):,} bytes in {t:.1f} s", end="")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=9)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--mlp-mult", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layouts", action="store_true", help="also compare int6 layouts and byte shuffle")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sd = baseline_state_dict(args.layers, args.dim, args.vocab, args.heads, args.kv_heads, args.mlp_mult, args.seed)
    main_table(sd)
    if args.layouts:
        print()
        layout_table(sd)


if __name__ == "__main__":
    main()
