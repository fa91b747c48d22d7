"""Does golf-frontier at record 1's full shape (11 layers) fit 16,000,000 bytes under GPTQ with record 1's
widths and SD clips? Prints the artifact size for orthogonal and uniform initial weights.

    python bench/frontier_fit.py [brotli|lzma] [KEY=VALUE ...]

docs/frontier.md quotes its output. The Hessians come from random tokens at a short sequence length:
the size depends on the distribution of the codes, not on what the model has learned."""

from __future__ import annotations

import dataclasses
import sys
import time

import torch

from golflab.artifact.gptq import collect_hessians
from golflab.artifact.pack import pack_artifact
from golflab.artifact.roundtrip import code_bytes
from golflab.artifact.size import measure_artifact
from golflab.config import load_config
from golflab.model.gpt import build_model

RECORD_1 = ["model.num_layers=11", "model.loop_start=3", "model.loop_end=5", "model.parallel_start=7",
            "model.xsa_layers=[0,1,2,3,4,5,6,7,8,9,10]", "artifact.quant=gptq", "artifact.bits=6",
            "artifact.embed_bits=7", "artifact.clip_sigmas=12.85", "artifact.attn_clip_sigmas=13.0",
            "artifact.mlp_clip_sigmas=11.5", "artifact.embed_clip_sigmas=14.0"]
CALIB = ["model.seq_len=128", "model.doc_mask=false"]  # cheap Hessians; neither changes a weight's shape


def main() -> None:
    torch.set_num_threads(1)
    codec = sys.argv[1] if len(sys.argv) > 1 else "brotli"
    cfg = load_config(preset="golf-frontier", overrides=[*RECORD_1, *CALIB, f"artifact.compress={codec}",
                                                        *sys.argv[2:]])
    gen = torch.Generator().manual_seed(0)
    vocab = cfg.model.vocab_size
    batches = [(torch.randint(0, vocab, (2, 128), generator=gen), torch.randint(0, vocab, (2, 128), generator=gen))
               for _ in range(2)]
    for init in ("orthogonal", "uniform"):
        t0 = time.time()
        model = build_model(dataclasses.replace(cfg.model, zero_init_proj=False, matrix_init=init), cfg.seed)
        sd = model.state_dict()
        blob = pack_artifact(sd, cfg.artifact, hessians=collect_hessians(model, batches))
        size = measure_artifact(blob, code_bytes(cfg), cfg.artifact.limit_bytes)
        print(f"{codec} {init:10s} params {sum(v.numel() for v in sd.values()):,}  weights {size.bytes_weights:,}  "
              f"code {size.bytes_code:,}  total {size.bytes_total:,}  fits {size.fits}  ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
