"""`golflab artifact RUN_DIR`: re-pack a finished run with other settings and re-evaluate each;
`golflab artifact-pack` / `artifact-inspect`: build an artifact from saved weights, look inside one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from golflab.errors import GolflabError

console = Console()

CodeOpt = typer.Option(None, "--code", help="Code file counted against the limit (e.g. train_gpt.py).")
LimitOpt = typer.Option(16_000_000, "--limit", help="Size limit in bytes (code + compressed weights).")


def _print_size(blob_path: Path, code: Path | None, limit: int) -> None:
    from golflab.artifact.size import measure_artifact

    s = measure_artifact(blob_path, code, limit)
    verdict = "[green]fits[/]" if s.fits else "[bold red]over the limit[/]"
    console.print(f"code {s.bytes_code:,} + weights {s.bytes_weights:,} = {s.bytes_total:,} bytes "
                  f"(limit {s.limit_bytes:,}, headroom {s.headroom:,}): {verdict}", soft_wrap=True)


def pack(
    weights: Path = typer.Argument(..., help="A torch file holding a state_dict (or a checkpoint with a 'model' key)."),
    out: Path = typer.Option(..., "--out", "-o", help="Artifact file to write."),
    quant: str = typer.Option("int8", "--quant", help="int8_pg (the reference's rule), int8, int6 or none."),
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


def repack(
    run_dir: Path = typer.Argument(..., help="A finished run directory (model.pt + config.toml)."),
    quant: list[str] = typer.Option(["int8", "int6"], "--quant", help="int8_pg, int8, int6 or none (repeatable)."),
    compress: list[str] = typer.Option(["zlib", "lzma"], "--compress", help="zlib, lzma, brotli, zstd (repeatable)."),
    fp16: list[str] = typer.Option(["", "tok_emb"], "--fp16",
                                   help="fp16 passthrough pattern per variant; '' = none (repeatable)."),
    stride: int = typer.Option(-1, "--stride", help="Sliding-window stride; -1 = the run's eval.stride, 0 = off."),
    data: Path | None = typer.Option(None, "--data", help="Dataset directory, if it moved since training."),
    keep: bool = typer.Option(False, "--keep", help="Write each artifact file into RUN_DIR."),
    scale_floor: float = typer.Option(0.0, "--scale-floor", help="Per-row scale floor (parameter-golf int8: 1/127 = 0.007874)."),
) -> None:
    """Re-pack a finished run's weights with each combination of settings, without retraining, and
    print artifact bytes and val_bpb (standard and sliding) after the round trip for each."""
    import copy
    import itertools

    from golflab.artifact.roundtrip import squeeze_and_evaluate
    from golflab.config.loader import validate
    from golflab.train.reeval import open_run, run_evaluator

    cfg, model, sources, device = open_run(run_dir, data)
    stride = cfg.eval.stride if stride < 0 else stride
    tokens = sources.eval_tokens("val")
    evaluator = run_evaluator(cfg, model, sources, device)

    def run_eval(s: int):
        return evaluator(tokens, s)

    base = run_eval(0)
    table = Table("quant", "compress", "fp16", "scale floor", "bytes total", "fits", "val_bpb", "sliding val_bpb",
                  title=f"{run_dir}: before round trip val_bpb {base.val_bpb:.4f}")
    for q, c, f in itertools.product(quant, compress, fp16):
        variant = copy.deepcopy(cfg)
        variant.artifact.quant, variant.artifact.compress = q, c  # type: ignore[assignment]
        variant.artifact.fp16_patterns = [f] if f else []
        variant.artifact.scale_floor = scale_floor
        validate(variant)
        rec = squeeze_and_evaluate(model, variant, run_eval, run_dir if keep else None, stride)
        sw = rec.get("sliding_val_bpb")
        table.add_row(q, c, f or "-", f"{scale_floor:g}", f"{rec['bytes_total']:,}", "yes" if rec["fits"] else "[red]no[/]",
                      f"{rec['val_bpb']:.4f}", f"{sw:.4f}" if sw is not None else "-")
    console.print(table)


def export(
    run_dirs: list[Path] = typer.Argument(..., help="Finished run directories of one config (one per seed)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write, e.g. records/2026-11-24_my_run/."),
    fmt: str = typer.Option("parameter-golf", "--format", help="Only parameter-golf for now."),
    author: str = typer.Option("", "--author"),
    github_id: str = typer.Option("", "--github-id"),
    name: str = typer.Option("golflab run", "--name"),
    blurb: str = typer.Option("", "--blurb"),
) -> None:
    """Write a submission folder: README.md, submission.json, train logs and a stand-alone train_gpt.py."""
    from golflab.artifact.submission import export_parameter_golf

    if fmt != "parameter-golf":
        raise GolflabError(f"unknown export format {fmt!r}; available: parameter-golf")
    folder = export_parameter_golf(run_dirs, out, author, github_id, name, blurb)
    console.print(f"wrote {folder}: README.md, submission.json, train_gpt.py, {len(run_dirs)} train log(s)")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("artifact")(repack)
    app.command("artifact-pack")(pack)
    app.command("artifact-inspect")(inspect)
