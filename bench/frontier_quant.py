"""GPTQ, GPTQ-lite and LQER against round-to-nearest on a tiny trained GPT, and GPTQ's CPU time per matrix.

    PYTHONPATH=src python bench/frontier_quant.py

The model (2 x 32, vocab 32) is trained for 80 Adam steps on a Markov chain with two successors per token
(entropy ln 2 = 0.693 nats), as in tests/test_frontier_quant.py. Prints Markdown tables for docs/artifact.md.
"""

from __future__ import annotations

import time

import torch

from golflab.artifact.gptq import collect_hessians, gptq_codes
from golflab.artifact.pack import pack_artifact, roundtrip_state_dict
from golflab.config.schema import ArtifactConfig, ModelConfig
from golflab.model.gpt import build_model

V, S = 32, 16


def stream(n: int, seed: int) -> torch.Tensor:
    nxt = torch.randint(0, V, (V, 2), generator=torch.Generator().manual_seed(0))
    choice = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed))
    out = [0]
    for i in range(n - 1):
        out.append(int(nxt[out[-1], choice[i]]))
    return torch.tensor(out)


def batches(tokens: torch.Tensor, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        w = tokens[torch.randint(0, tokens.numel() - S - 1, (16,), generator=g)[:, None] + torch.arange(S + 1)]
        out.append((w[:, :-1], w[:, 1:]))
    return out


def main() -> None:
    torch.set_num_threads(1)
    model = build_model(ModelConfig(vocab_size=V, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1,
                                    seq_len=S, mlp_mult=4.0), seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    train = stream(20_000, 1)
    for x, y in batches(train, 80, 2):
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    held, calib = batches(stream(5_000, 3), 8, 4), batches(train, 8, 5)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    hs = collect_hessians(model, calib)

    def loss_of(weights) -> float:
        model.load_state_dict(weights)
        with torch.no_grad():
            return sum(float(model(x, y)) for x, y in held) / len(held)

    base = loss_of(sd)
    keep = ["attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weights"]
    print(f"unquantized held-out loss {base:.4f} nats\n")
    print("| bits | round to nearest | GPTQ | GPTQ-lite | GPTQ + LQER rank 4 (top 3, asym) | bytes GPTQ / + LQER (zlib) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for bits in (2, 3, 4, 5, 6):
        def cfg(quant: str, bits: int = bits, **kw) -> ArtifactConfig:
            return ArtifactConfig(quant=quant, bits=bits, embed_bits=bits, keep_float_max_numel=0,
                                  keep_float_patterns=keep, **kw)
        rtn = loss_of(roundtrip_state_dict(sd, cfg("gptq"), {})[0])
        gq = loss_of(roundtrip_state_dict(sd, cfg("gptq"), hs)[0])
        lite = loss_of(roundtrip_state_dict(sd, cfg("gptq_lite"))[0])
        lq = loss_of(roundtrip_state_dict(sd, cfg("gptq", lqer_rank=4, lqer_group=32), hs)[0])
        b0 = len(pack_artifact(sd, cfg("gptq"), hs))
        b1 = len(pack_artifact(sd, cfg("gptq", lqer_rank=4, lqer_group=32), hs))
        print(f"| {bits} | {rtn:.4f} | {gq:.4f} | {lite:.4f} | {lq:.4f} | {b0:,} / {b1:,} |")
    model.load_state_dict(sd)

    print("\n| matrix | GPTQ seconds (1 CPU thread) |")
    print("| --- | ---: |")
    g = torch.Generator().manual_seed(0)
    for rows, cols in ((512, 512), (1024, 512), (512, 1024)):
        w = torch.randn(rows, cols, generator=g) * 0.02
        x = torch.randn(4096, cols, generator=g)
        t0 = time.perf_counter()
        gptq_codes(w, x.T @ x / 4096, torch.full((rows,), 0.02 * 4 / 31), 31)
        print(f"| {rows} x {cols} | {time.perf_counter() - t0:.2f} |")


if __name__ == "__main__":
    main()
