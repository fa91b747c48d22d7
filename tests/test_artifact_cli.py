"""`golflab artifact-pack` and `artifact-inspect` on a tiny saved state_dict."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from golflab.artifact.pack import load_artifact
from golflab.cli import app


def test_pack_and_inspect(tmp_path) -> None:
    sd = {"blocks.0.mlp.fc.weight": torch.randn(300, 300), "tok_emb.weight": torch.randn(300, 300)}
    torch.save({"model": sd}, tmp_path / "ck.pt")
    out = tmp_path / "a.glf"
    runner = CliRunner()
    res = runner.invoke(app, ["artifact-pack", str(tmp_path / "ck.pt"), "-o", str(out), "--quant", "int6",
                              "--compress", "lzma", "--fp16", "tok_emb"])
    assert res.exit_code == 0, res.output
    assert "fits" in res.output
    back = load_artifact(out)
    assert torch.equal(back["tok_emb.weight"], sd["tok_emb.weight"].half().float())
    res = runner.invoke(app, ["artifact-inspect", str(out), "--limit", "1000"])
    assert res.exit_code == 0, res.output
    assert "int6_row" in res.output and "over the limit" in res.output
