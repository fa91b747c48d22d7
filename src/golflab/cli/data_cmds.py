"""`golflab prepare text|fineweb`, `golflab data info` and `golflab demo`: build and inspect datasets."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()
prepare_app = typer.Typer(help="Build a dataset directory (token shards + tokenizer + manifest).",
                          no_args_is_help=True)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


class _Progress:
    """A rich status line: phase, documents, text MB and MB/s."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.status = console.status("starting")
        self.phase = ""

    def __enter__(self) -> _Progress:
        self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.__exit__(*exc)

    def __call__(self, phase: str, docs: int, nbytes: int) -> None:
        if phase != self.phase:
            self.phase, self.t0 = phase, time.perf_counter()
        mb = nbytes / 1e6
        rate = mb / max(time.perf_counter() - self.t0, 1e-9)
        self.status.update(f"{phase}: {docs:,} documents, {mb:,.1f} MB ({rate:,.1f} MB/s)")


SHOW_SKIPPED = 20  # bad-line positions printed; the manifest lists them all


@prepare_app.command("text")
def prepare_text_cmd(
    sources: list[Path] = typer.Argument(..., help="Files or directories: .txt, .jsonl, .parquet (+ .gz/.xz/.zst)."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory to create."),
    vocab: int = typer.Option(0, "--vocab", help="Vocabulary size of the tokenizer to train (<= 65536)."),
    val_frac: float = typer.Option(0.05, "--val-frac", help="Fraction of documents for the val split."),
    test_frac: float = typer.Option(0.0, "--test-frac", help="Fraction of documents for a held-out test split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the document split and the tokenizer sample."),
    tokenizer: str = typer.Option("", "--tokenizer", help="Use this tokenizer (.model, .tiktoken.json or a tiktoken name) instead of training one."),
    shard_tokens: int = typer.Option(100_000_000, "--shard-tokens", help="Tokens per shard."),
    workers: int = typer.Option(0, "--workers", help="Encoding processes (0 = CPU count)."),
    max_tokenizer_docs: int = typer.Option(8_000, "--max-tokenizer-docs", help="Train documents sampled to train the tokenizer."),
    text_field: str = typer.Option("text", "--text-field", help="JSON Lines field holding the text."),
    column: str = typer.Option("text", "--column", help="Parquet column holding the text."),
    txt_docs: str = typer.Option("file", "--txt-docs", help="A .txt document is a whole file, a blank-line-separated paragraph, or a line: file|paragraph|line."),
    normalization: str = typer.Option("identity", "--normalization", help="SentencePiece normalization (identity keeps text and bytes exact; nmt_nfkc as parameter-golf)."),
    skip_bad_lines: bool = typer.Option(False, "--skip-bad-lines", help="Skip JSON Lines that do not parse (a cut last line) and list them, instead of failing."),
    tokenizer_recipe: str = typer.Option("golflab", "--tokenizer-recipe", help="golflab, or parameter-golf: the reference's SentencePiece settings exactly (nmt_nfkc, byte fallback)."),
    layout: str = typer.Option("golflab", "--layout", help="golflab (all in OUT), or parameter-golf: OUT/datasets/fineweb10B_sp<vocab>/fineweb_*.bin and OUT/tokenizers/, where the reference's train_gpt.py looks."),
    dataset_name: str = typer.Option("", "--dataset-name", help="parameter-golf layout: the dataset folder (default fineweb10B_sp<vocab>)."),
) -> None:
    """Tokenize text documents into train/val(/test) shards, training a SentencePiece BPE unless --tokenizer is given."""
    from golflab.data.prepare import PrepareOptions, layout_of, prepare_text

    opts = PrepareOptions(vocab=vocab, val_frac=val_frac, test_frac=test_frac, seed=seed, tokenizer=tokenizer,
                          shard_tokens=shard_tokens, workers=workers, max_tokenizer_docs=max_tokenizer_docs,
                          text_field=text_field, column=column, txt_docs=txt_docs, normalization=normalization,
                          skip_bad_lines=skip_bad_lines, tokenizer_recipe=tokenizer_recipe, layout=layout,
                          dataset_name=dataset_name)
    t0 = time.perf_counter()
    with _Progress() as progress:
        manifest = prepare_text(sources, out, opts, progress)
    console.print(f"wrote {out} in {time.perf_counter() - t0:.1f}s")
    if skipped := manifest.get("skipped_lines"):
        shown = ", ".join(skipped[:SHOW_SKIPPED]) + (f", ... (all in {out / 'manifest.json'})"
                                                     if len(skipped) > SHOW_SKIPPED else "")
        console.print(f"[yellow]skipped {len(skipped)} line(s) that are not valid JSON:[/] {shown}", highlight=False, soft_wrap=True)  # file:line positions stay whole
    data = out / layout_of(opts, opts.vocab).data
    _info(data)
    if layout == "parameter-golf":
        console.print(f"DATA_PATH={data} TOKENIZER_PATH={(data / manifest['tokenizer']['file']).resolve()}",
                      soft_wrap=True)


@prepare_app.command("fineweb")
def prepare_fineweb_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory to create."),
    variant: str = typer.Option("sp1024", "--variant", help="Tokenizer variant: sp1024, sp4096, sp8192 (each from the repo the records use), or another with --repo-id."),
    train_shards: int = typer.Option(1, "--train-shards", help="Number of train shards (100M tokens each) to fetch."),
    repo_id: str = typer.Option("", "--repo-id", help="Hugging Face dataset repo (default: the variant's, e.g. kevclark/parameter-golf for sp8192)."),
    remote_root: str | None = typer.Option(None, "--remote-root", help="Folder of the export inside the repo (default: the variant's, datasets)."),
) -> None:
    """Download a parameter-golf FineWeb export (val + the first N train shards + tokenizer)."""
    from golflab.data.fineweb import download_fineweb, hub_fetcher, variant_source

    repo, root = variant_source(variant, repo_id, remote_root)
    fetch = hub_fetcher(repo, root)
    with console.status(f"downloading {variant} from {repo}") as status:
        download_fineweb(out, variant, train_shards, fetch, on_file=lambda p: status.update(f"downloaded {p}"))
    _info(out)


@data_app.command("info")
def data_info_cmd(path: Path = typer.Argument(..., help="Dataset directory.")) -> None:
    """Splits (documents, shards, tokens, bytes) and tokenizer of a dataset."""
    _info(path)


def _info(path: Path) -> None:
    from golflab.data.dataset import Dataset, sha256_file
    from golflab.data.shards import read_header

    ds = Dataset.open(path)
    splits = ds.manifest.get("splits", {})
    table = Table("split", "documents", "shards", "tokens", "UTF-8 bytes", "bytes/token", title=str(ds.path))
    for split in ("train", "val", "test"):
        files = ds.split_files(split)
        if not files:
            continue
        tokens = sum(read_header(f) for f in files)
        st = splits.get(split, {})
        docs, nbytes = st.get("documents"), st.get("bytes")
        per = f"{nbytes / tokens:.3f}" if nbytes and tokens else "-"
        table.add_row(split, f"{docs:,}" if docs is not None else "-", str(len(files)), f"{tokens:,}",
                      f"{nbytes:,}" if nbytes is not None else "-", per)
    console.print(table)
    entry = ds.manifest.get("tokenizer", {})
    expected = entry.get("sha256")
    ok = "not recorded" if not expected else "ok" if sha256_file(ds.tokenizer_path) == expected else "MISMATCH"
    tok = ds.tokenizer
    console.print(f"tokenizer: {tok.kind} {ds.tokenizer_path.name}, vocab {tok.vocab_size}, bos {ds.bos_id}, "
                  f"hash {ok} ({ds.layout} layout)")


# A step budget on CPU: seconds on a shared or busy CPU measure its load, not the model (about a minute
# on a laptop). A GPU is not shared, and parameter golf's rule is wallclock.
DEMO_CPU_BUDGET, DEMO_GPU_BUDGET = "400steps", "300s"


def demo(
    out: Path = typer.Option(Path("golflab-demo"), "--out", "-o", help="Demo directory; the dataset goes to OUT/data."),
    vocab: int = typer.Option(512, "--vocab", help="Tokenizer vocabulary size."),
    preset: str = typer.Option("auto", "--preset", "-p", help="auto: tiny on CPU, golf-baseline on a GPU."),
    budget: str = typer.Option("", "--budget", "-b", help=f"Training budget (default {DEMO_CPU_BUDGET} on CPU, "
                               f"{DEMO_GPU_BUDGET} on a GPU)."),
    prepare_only: bool = typer.Option(False, "--prepare-only", help="Only build the dataset."),
) -> None:
    """Build a small dataset from the Python standard library's documentation (no download), train a
    model on it (the tiny preset on CPU, golf-baseline on a GPU) and print its val_bpb."""
    import torch

    from golflab.config import load_config
    from golflab.data.demo_corpus import build_demo_dataset
    from golflab.train.loop import train
    from golflab.train.rundir import prepare_out_dir

    t0 = time.perf_counter()
    with console.status("building the demo corpus"):
        data = build_demo_dataset(out, vocab)
    console.print(f"demo dataset ready in {time.perf_counter() - t0:.1f}s")
    _info(data)
    if prepare_only:
        return
    gpu = torch.cuda.is_available()
    name = preset if preset != "auto" else ("golf-baseline" if gpu else "tiny")
    budget = budget or (DEMO_GPU_BUDGET if gpu else DEMO_CPU_BUDGET)
    cfg = load_config(preset=name, budget=budget, extra={"data": {"path": str(data)}}, overrides=["model.vocab_size=0"])
    console.print(f"training preset [bold]{name}[/] for {budget} -> {out / 'run'}")
    prepare_out_dir(out / "run", resume=False, force=True)  # the demo's own run: a rerun replaces it
    result = train(cfg, out / "run")
    a = result.get("artifact") or {}
    console.print(f"[bold green]val_bpb {result['val_bpb']:.4f}[/] after {result['steps']} steps "
                  f"({result['train_seconds']:.0f}s); sliding {result.get('sliding_val_bpb') or float('nan'):.4f}; "
                  f"artifact {a.get('bytes_total', 0):,} bytes, val_bpb after round trip {a.get('val_bpb') or float('nan'):.4f}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(prepare_app, name="prepare")
    app.add_typer(data_app, name="data")
    app.command("demo")(demo)
