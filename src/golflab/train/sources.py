"""What a run reads: a training-batch loader over the train split only, and eval tokens from the
val or test split only. Keeping the two behind separate functions is how the trainer is kept from
ever training on held-out text or evaluating on training text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from golflab.config.schema import RunConfig
from golflab.errors import DataError
from golflab.eval.bpb import ByteTable

EVAL_SPLITS = ("val", "test")


@dataclass
class DataSources:
    vocab_size: int
    train_loader: Callable[[int, int, int], Any]  # (rank, world_size, seed) -> loader with next_batch()
    eval_tokens: Callable[[str], Tensor]  # split -> 1-D token tensor (val or test only)
    byte_table: ByteTable  # per-token UTF-8 bytes for val_bpb
    bos_id: int | None = None  # for best-fit packed eval rows (eval.packing)


def sources_from_config(cfg: RunConfig, check: bool = True) -> DataSources:
    """The data of cfg.data. `check` validates the dataset and says what is wrong with it (open_dataset),
    as golflab's runs do; the exported script passes False (a bad dataset fails at its first use there)."""
    from golflab.data.dataset import open_dataset
    from golflab.data.loader import TokenLoader
    from golflab.data.shards import open_shard

    if check and not cfg.data.path:
        raise DataError("no dataset: pass --data DIR (a directory made by `golflab prepare`) or set data.path")
    ds = open_dataset(cfg.data.path, cfg.data.tokenizer, check)
    train_files = ds.split_files("train")

    def train_loader(rank: int, world_size: int, seed: int) -> Any:
        return TokenLoader(train_files, rank, world_size, seed=seed, order=cfg.data.order,
                           align_bos=cfg.data.align_bos, bos_id=ds.bos_id, packing=cfg.data.packing,
                           pack_buffer_docs=cfg.data.pack_buffer_docs)

    cache: dict[str, Tensor] = {}

    def eval_tokens(split: str) -> Tensor:
        if split not in EVAL_SPLITS:
            raise DataError(f"evaluation reads only the val or test split, not {split!r}")
        if split not in cache:
            files = ds.split_files(split)
            if check and not files:
                raise DataError(f"{ds.path} has no {split} shards")
            arr = np.concatenate([np.asarray(open_shard(f)) for f in files]).astype(np.int32)
            cache[split] = torch.from_numpy(arr)
        return cache[split]

    return DataSources(ds.vocab_size, train_loader, eval_tokens, ds.byte_table(), ds.bos_id)
