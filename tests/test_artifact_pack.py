"""Compressors, binary format, pack/unpack round trip, size accounting and corrupted blobs."""

from __future__ import annotations

import os
import struct
import sys

import numpy as np
import pytest
import torch

from golflab.artifact.compress import (
    BLOB_HEADER_BYTES,
    CODECS,
    blob_codec,
    compress_bytes,
    decompress_bytes,
    wrap_blob,
)
from golflab.artifact.pack import (
    load_artifact,
    pack_artifact,
    pack_artifact_with_stats,
    roundtrip_state_dict,
    unpack_artifact,
    write_artifact,
)
from golflab.artifact.quantize import quantize_state_dict
from golflab.artifact.serialize import (
    byte_shuffle,
    byte_unshuffle,
    deserialize_quantized,
    serialize_quantized,
)
from golflab.artifact.size import measure_artifact
from golflab.config.schema import ArtifactConfig
from golflab.errors import GolflabError


def gpt_state_dict(layers: int = 2, d: int = 128, vocab: int = 512, kv: int = 64) -> dict[str, torch.Tensor]:
    """Tensors shaped like a small parameter-golf GPT (GQA, relu^2 MLP x2, tied embedding, controls)."""
    g = torch.Generator().manual_seed(0)

    def rnd(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    sd = {"tok_emb.weight": rnd(vocab, d, std=0.005)}
    for i in range(layers):
        p = f"blocks.{i}."
        sd |= {
            p + "attn.c_q.weight": rnd(d, d), p + "attn.c_k.weight": rnd(kv, d), p + "attn.c_v.weight": rnd(kv, d),
            p + "attn.proj.weight": rnd(d, d), p + "attn.q_gain": torch.full((4,), 1.5),
            p + "mlp.fc.weight": rnd(2 * d, d), p + "mlp.proj.weight": rnd(d, 2 * d),
            p + "attn_scale": torch.ones(d), p + "mlp_scale": torch.ones(d),
            p + "resid_mix": torch.stack([torch.ones(d), torch.zeros(d)]),
        }
    sd["skip_weights"] = torch.ones(layers // 2, d)
    sd["lm_head.weight"] = sd["tok_emb.weight"]  # tied
    return sd


SMALL = ArtifactConfig(quant="int8", keep_float_max_numel=4096)  # so the small test model's matrices get quantized


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", [b"", b"x", bytes(range(256)) * 300, os.urandom(5000)])
def test_every_compressor_roundtrips(codec: str, data: bytes) -> None:
    assert decompress_bytes(compress_bytes(data, codec), codec) == data


@pytest.mark.parametrize(("codec", "module", "hint"), [("brotli", "brotli", "pip install brotli"),
                                                       ("zstd", "zstandard", "pip install zstandard")])
def test_missing_optional_compressor(monkeypatch: pytest.MonkeyPatch, codec: str, module: str, hint: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(GolflabError, match=hint):
        compress_bytes(b"abc", codec)


def test_byte_shuffle_roundtrip() -> None:
    a = np.random.default_rng(0).standard_normal(1001).astype(np.float16)
    s = byte_shuffle(a)
    assert s.size == a.nbytes and not np.array_equal(s, a.view(np.uint8))
    assert np.array_equal(byte_unshuffle(s, 2).view(np.float16), a)


@pytest.mark.parametrize("quant", ["int8", "int6", "none"])
@pytest.mark.parametrize("codec", CODECS)
def test_pack_unpack_gpt_state_dict(quant: str, codec: str) -> None:
    sd = gpt_state_dict()
    cfg = ArtifactConfig(quant=quant, compress=codec, keep_float_max_numel=4096, fp16_patterns=["tok_emb"])
    blob, stats = pack_artifact_with_stats(sd, cfg)
    assert blob_codec(blob) == codec
    back = unpack_artifact(blob)  # no config needed
    assert list(back) == list(sd)
    for k, t in sd.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape, k
    for k in ("blocks.0.attn_scale", "blocks.1.resid_mix", "skip_weights", "blocks.0.attn.q_gain"):
        assert torch.equal(back[k], sd[k]), k
    assert torch.equal(back["tok_emb.weight"], sd["tok_emb.weight"].half().float())
    assert back["lm_head.weight"] is back["tok_emb.weight"]
    w, r = sd["blocks.1.mlp.fc.weight"], back["blocks.1.mlp.fc.weight"]
    bound = {"int8": 1 / 127, "int6": 1 / 31, "none": 2**-10}[quant]
    assert float((r - w).abs().max()) <= float(w.abs().max()) * bound
    if quant != "none":
        assert stats.categories[f"{quant}_row"].count == 2 * 6


def test_roundtrip_hook_matches_unpack() -> None:
    sd = gpt_state_dict()
    weights, blob = roundtrip_state_dict(sd, SMALL)
    assert blob == pack_artifact(sd, SMALL)  # deterministic
    again = unpack_artifact(blob)
    assert all(torch.equal(weights[k], again[k]) for k in sd)
    model = torch.nn.Linear(128, 128, bias=False)
    model.load_state_dict({"weight": weights["blocks.0.attn.c_q.weight"]})


@pytest.mark.parametrize("shuffle", [True, False])
def test_serialize_is_self_describing(shuffle: bool) -> None:
    qm, _ = quantize_state_dict(gpt_state_dict(), ArtifactConfig(quant="int6", keep_float_max_numel=4096))
    buf = serialize_quantized(qm, shuffle=shuffle)
    qm2 = deserialize_quantized(buf)
    assert list(qm2.tensors) == list(qm.tensors)
    for k, qt in qm.tensors.items():
        qt2 = qm2.tensors[k]
        assert (qt2.scheme, qt2.shape, qt2.dtype, qt2.meta) == (qt.scheme, qt.shape, qt.dtype, qt.meta)
        for pk, arr in qt.parts.items():
            assert qt2.parts[pk].dtype == arr.dtype and np.array_equal(qt2.parts[pk], arr), (k, pk)


def test_size_accounting_matches_files(tmp_path) -> None:
    blob = pack_artifact(gpt_state_dict(), SMALL)
    path = tmp_path / "sub" / "model.glf"
    assert write_artifact(path, blob) == len(blob)
    assert [p.name for p in path.parent.iterdir()] == ["model.glf"]  # no temporary file left behind
    code = tmp_path / "train_gpt.py"
    code.write_text("print('hello golf')\n" * 50, encoding="utf-8")
    size = measure_artifact(path, code, limit_bytes=16_000_000)
    assert size.bytes_weights == os.path.getsize(path) == len(blob)
    assert size.bytes_code == os.path.getsize(code)
    assert size.bytes_total == size.bytes_code + size.bytes_weights and size.fits
    assert measure_artifact(blob, code.read_bytes(), 16_000_000) == size
    tight = measure_artifact(str(path), str(code), limit_bytes=size.bytes_total - 1)
    assert not tight.fits and tight.headroom == -1
    assert measure_artifact(path, code, limit_bytes=size.bytes_total).fits
    assert torch.equal(load_artifact(path)["skip_weights"], torch.ones(1, 128))
    with pytest.raises(GolflabError, match="cannot measure code file"):
        measure_artifact(path, tmp_path / "missing.py")


def test_corrupted_blobs_raise_clear_errors(tmp_path) -> None:
    blob = pack_artifact(gpt_state_dict(), ArtifactConfig(quant="int6", compress="lzma", keep_float_max_numel=4096))
    with pytest.raises(GolflabError, match="bad magic"):
        unpack_artifact(b"PK\x03\x04" + blob[4:])
    with pytest.raises(GolflabError, match="truncated"):
        unpack_artifact(blob[:10])
    with pytest.raises(GolflabError, match="corrupt or truncated"):
        unpack_artifact(blob[: len(blob) // 2])
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(GolflabError, match="corrupt"):
        unpack_artifact(bytes(flipped))
    with pytest.raises(GolflabError, match="version"):
        unpack_artifact(blob[:6] + b"\x09" + blob[7:])
    with pytest.raises(GolflabError, match="unknown compressor"):
        unpack_artifact(blob[:7] + b"\x09" + blob[8:])
    with pytest.raises(GolflabError, match="malformed"):
        unpack_artifact(wrap_blob(b"GLQM" + struct.pack("<I", 3) + b"{{{", "zlib"))
    bad = tmp_path / "bad.glf"
    bad.write_bytes(b"nonsense")
    with pytest.raises(GolflabError, match=r"bad\.glf.*truncated"):
        load_artifact(bad)
    with pytest.raises(GolflabError, match=r"artifact\.compress"):
        pack_artifact({}, ArtifactConfig(compress="gzip"))  # type: ignore[arg-type]


def test_header_is_small() -> None:
    blob = pack_artifact(gpt_state_dict(), SMALL)
    assert BLOB_HEADER_BYTES == 20 and blob[:6] == b"GLFART"
