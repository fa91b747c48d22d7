"""`golflab artifact pack|inspect`: build an artifact from saved weights, and look inside one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from golflab.errors import GolflabError

console = Console()
artifact_app = typer.Typer(help="Quantize + compress weights into an artifact; check the size rule.",
                           no_args_is_help=True)

CodeOpt = typer.Option(None, "--code", help="Code file counted against the limit (e.g. train_gpt.py).")
LimitOpt = typer.Option(16_000_000, "--limit", help="Size limit in bytes (code + compressed weights).")


def _print_size(blob_path: Path, code: Path | None, limit: int) -> None:
    from golflab.artifact.size import measure_artifact

    s = measure_artifact(blob_path, code, limit)
    verdict = "[green]fits[/]" if s.fits else "[bold red]over the limit[/]"
    console.print(f"code {s.bytes_code:,} + weights {s.bytes_weights:,} = {s.bytes_total:,} bytes "
                  f"(limit {s.limit_bytes:,}, headroom {s.headroom:,}): {verdict}", soft_wrap=True)


@artifact_app.command("pack")
def pack(
    weights: Path = typer.Argument(..., help="A torch file holding a state_dict (or a checkpoint with a 'model' key)."),
    out: Path = typer.Option(..., "--out", "-o", help="Artifact file to write."),
    quant: str = typer.Option("int8", "--quant", help="int8, int6 or none."),
    compress: str = typer.Option("zlib", "--compress", help="zlib, lzma, brotli or zstd."),
    fp16: list[str] = typer.Option([], "--fp16", help="Name pattern stored as fp16 (repeatable), e.g. tok_emb."),
    code: Path | None = CodeOpt,
    limit: int = LimitOpt,
) -> None:
    """Quantize and compress saved weights into an artifact file, then report the size rule."""
    import torch

    from golflab.artifact.pack import pack_artifact_with_stats, write_artifact
    from golflab.config.loader import load_config

    cfg = load_config(overrides=[f"artifact.quant={quant}", f"artifact.compress={compress}"]).artifact
    cfg.fp16_patterns = list(fp16)
    try:
        obj = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GolflabError(f"cannot load weights from {weights}: {exc}") from None
    sd = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise GolflabError(f"{weights}: expected a state_dict of tensors (or a dict with a 'model' state_dict)")
    blob, stats = pack_artifact_with_stats(sd, cfg)
    write_artifact(out, blob)
    console.print(f"wrote {out} ({stats.params:,} params, {quant} + {compress})", soft_wrap=True)
    _print_size(out, code, limit)


@artifact_app.command("inspect")
def inspect(
    blob: Path = typer.Argument(..., help="Artifact file."),
    code: Path | None = CodeOpt,
    limit: int = LimitOpt,
) -> None:
    """List the tensors stored in an artifact and check the size rule."""
    from golflab.artifact.pack import describe_artifact, read_artifact

    try:
        codec, rows = describe_artifact(read_artifact(blob))
    except GolflabError as exc:
        raise GolflabError(f"{blob}: {exc}") from None
    table = Table("tensor", "scheme", "shape", "dtype", "stored bytes", title=f"{blob} ({codec})")
    for r in rows:
        table.add_row(str(r["name"]), str(r["scheme"]), str(r["shape"]), str(r["dtype"]), f"{r['bytes']:,}")
    console.print(table)
    _print_size(blob, code, limit)


def register(app: typer.Typer) -> None:
    app.add_typer(artifact_app, name="artifact")
