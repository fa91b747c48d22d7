"""The model server: runs with a PROPOSAL's code (PYTHONPATH=<code>/src), loads the weights its trainer
saved with its own model definition, and answers scores for the input windows it is sent.

    python -m golflab.trusted.server --config C --weights W --vocab V --rows B --seq T --buffer F --answer-fd N

The contract with a proposal: `golflab.model.gpt.build_model(cfg.model, seed, vocab)`,
`model.load_state_dict(model.pt)` and `model.logits(idx) -> (B, T, V)`. Everything measured about the
scores happens in the trusted harness (golflab.trusted.measure); nothing here is trusted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="golflab.trusted.server")
    for name in ("--config", "--weights", "--buffer"):
        ap.add_argument(name, type=Path, required=True)
    for name in ("--vocab", "--rows", "--seq", "--answer-fd"):
        ap.add_argument(name, type=int, required=True)
    a = ap.parse_args(argv)

    import torch

    from golflab.config.loader import from_toml_file
    from golflab.model.gpt import build_model
    from golflab.train.backends import autocast_dtype, ready_model, setup_backends
    from golflab.trusted.protocol import Buffer, send

    try:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        cfg = from_toml_file(a.config)
        amp = autocast_dtype(cfg, device)
        setup_backends(device, cfg, amp is None)
        model = build_model(cfg.model, cfg.seed, a.vocab).to(device)
        model.load_state_dict(torch.load(a.weights, map_location=device, weights_only=True))
        ready_model(model, cfg, device).eval()
        compile_ = cfg.train.compile == "on" or (cfg.train.compile == "auto" and device.type == "cuda")
        fn = torch.compile(model.logits, dynamic=False) if compile_ else model.logits
        buf = Buffer(a.buffer, a.rows, a.seq, a.vocab)
    except Exception as exc:  # reported to the harness, which fails the run with it
        send(a.answer_fd, {"error": f"loading the model failed: {type(exc).__name__}: {exc}"})
        raise
    send(a.answer_fd, {"ready": True, "device": str(device)})
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") != "scores":
            break
        try:
            x = torch.from_numpy(buf.inputs.copy()).to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                scores = fn(x)
            if tuple(scores.shape) != (a.rows, a.seq, a.vocab):
                send(a.answer_fd, {"error": f"model.logits returned shape {tuple(scores.shape)}, expected "
                                            f"{(a.rows, a.seq, a.vocab)}"})
                return
            buf.scores[:] = scores.float().cpu().numpy()
        except Exception as exc:
            send(a.answer_fd, {"error": f"{type(exc).__name__}: {exc}"})
            raise
        send(a.answer_fd, {"ok": True})


if __name__ == "__main__":
    main()
