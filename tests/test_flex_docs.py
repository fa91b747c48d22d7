"""Document masks as FlexAttention block masks (compiled CUDA graphs under train.attention=auto): the
block lists name exactly the blocks the dense mask touches, and the model computes the same function."""

import pytest
import torch
import torch.nn.functional as F

from golflab.config import load_config
from golflab.model.attention import FLEX_BLOCK, doc_block_mask, doc_mask
from golflab.model.gpt import build_model

BOS = 1


def rows_of_documents(B: int, T: int, seed: int) -> torch.Tensor:
    """Token rows with documents of every kind: none, one per block, boundaries on a block edge, a row
    that starts inside a document, documents longer than a block."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(2, 50, (B, T), generator=g)
    idx[0, 0] = BOS  # one document
    idx[1, torch.randint(0, T, (T // 16,), generator=g)] = BOS  # many short ones
    idx[2, ::FLEX_BLOCK] = BOS  # one per block, on its edge
    idx[3, [5, FLEX_BLOCK + 7]] = BOS  # the row starts inside a document; long ones after
    return idx  # row 4 and on: no BOS at all


def listed(num: torch.Tensor, ind: torch.Tensor, nb: int) -> torch.Tensor:
    """(B, nb, nb) bool from BlockMask's per-query-block counts and key-block lists."""
    dense = torch.zeros(num.size(0), nb, nb, dtype=torch.bool)
    for b in range(num.size(0)):
        for q in range(nb):
            dense[b, q, ind[b, 0, q, : num[b, 0, q]].long()] = True
    return dense


def test_block_lists_are_exactly_the_blocks_the_dense_mask_touches():
    B, T = 5, 4 * FLEX_BLOCK
    idx = rows_of_documents(B, T, 0)
    nb = T // FLEX_BLOCK
    blocks = doc_mask(idx, BOS, 0)[:, 0].view(B, nb, FLEX_BLOCK, nb, FLEX_BLOCK)
    some, every = blocks.any(4).any(2), blocks.all(4).all(2)
    bm = doc_block_mask(idx, BOS)
    assert torch.equal(listed(bm.full_kv_num_blocks, bm.full_kv_indices, nb), every)
    assert torch.equal(listed(bm.kv_num_blocks, bm.kv_indices, nb), some & ~every)
    assert every.any() and (some & ~every).any() and not some.all()  # the rows exercise all three kinds


def test_flex_attention_with_the_block_mask_equals_sdpa_with_the_dense_mask():
    from torch.nn.attention.flex_attention import flex_attention

    B, T = 5, 2 * FLEX_BLOCK
    idx = rows_of_documents(B, T, 1)
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(B, h, T, 16, generator=g) for h in (4, 2, 2))
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=doc_mask(idx, BOS, 0), enable_gqa=True)
    got = flex_attention(q, k, v, block_mask=doc_block_mask(idx, BOS), enable_gqa=True)
    assert torch.allclose(got, want, atol=1e-5)


def _model(flex: bool):
    cfg = load_config(preset="tiny", overrides=["model.doc_mask=true", f"model.bos_id={BOS}", "model.vocab_size=64",
                                                 f"model.seq_len={2 * FLEX_BLOCK}", "model.num_layers=2"])
    model = build_model(cfg.model, 0)
    model.prepare(torch.device("cpu"))
    assert model.flex_docs is False  # on CPU the trainer keeps the dense mask
    model.flex_docs = flex  # as prepare() sets it on CUDA
    return model


@pytest.mark.slow
def test_a_compiled_model_with_flex_document_masks_computes_the_dense_masks_function():
    """The block mask traced into the compiled model gives the dense mask's function. CPU's kernel applies
    the mask function to every block, so only the test above checks the block lists the CUDA kernel relies
    on; forward only, as CPU FlexAttention has no backward (bench/step_probe.py runs CUDA's)."""
    idx = rows_of_documents(5, 2 * FLEX_BLOCK, 3) % 64
    targets = torch.roll(idx, -1, 1)
    dense, flex = _model(False), _model(True)
    with torch.no_grad():
        want = dense(idx, targets, reduction="none")
        got = torch.compile(flex, fullgraph=True)(idx, targets, reduction="none")
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize(("attention", "device", "sets", "flex"), [
    ("flex", "cuda", [], True),
    ("auto", "cuda", [], False),  # opt-in: FlexAttention's loss went to NaN on the H200 (docs/frontier.md)
    ("flex", "cpu", [], False),  # eager CPU FlexAttention materializes every score: the dense mask it is
    ("flex", "cuda", ["model.num_registers=2"], False),  # doc_block_mask has no sinks
    ("flex", "cuda", ["model.attn_window=64", "model.window_layers=[0]"], False),  # nor windows
])
def test_train_attention_flex_turns_flex_document_masks_on(attention, device, sets, flex, monkeypatch):
    from golflab.model.attention import Attention
    from golflab.train.backends import ready_model

    monkeypatch.setattr(Attention, "prepare", lambda self, seq_len, device: None)  # windows' masks need a GPU

    cfg = load_config(preset="tiny", overrides=["model.doc_mask=true", "model.vocab_size=64", f"train.attention={attention}",
                                                 *sets])
    model = build_model(cfg.model, 0)
    assert ready_model(model, cfg, torch.device(device)).flex_docs is flex
