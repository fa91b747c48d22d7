"""The artifact end to end: state_dict -> quantize -> serialize -> compress -> bytes, and back.

Portable core (stdlib, numpy, torch and the sibling artifact modules); private helpers carry a
`_pk_` prefix. `roundtrip_state_dict` is the hook the trainer and evaluator use to score the model
exactly as it will be loaded from the artifact.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from golflab.artifact.compress import check_codec, unwrap_blob, wrap_blob
from golflab.artifact.quantize import QuantStats, dequantize_state_dict, packs_int6, quantize_state_dict
from golflab.artifact.serialize import deserialize_quantized, serialize_quantized
from golflab.config.schema import ArtifactConfig
from golflab.errors import GolflabError
from golflab.fileio import write_atomic


def pack_artifact_with_stats(
    sd: dict[str, torch.Tensor], cfg: ArtifactConfig, *, shuffle: bool = True,
    hessians: dict[str, torch.Tensor] | None = None, stats: bool = True,
) -> tuple[bytes, QuantStats | None]:
    """Quantize, serialize and compress `sd` by `cfg` (`hessians` for artifact.quant = "gptq"); also return
    the quantization statistics (None unless `stats`)."""
    check_codec(cfg.compress)
    qm, quant_stats = quantize_state_dict(sd, cfg, hessians=hessians, stats=stats)
    return wrap_blob(serialize_quantized(qm, shuffle=shuffle), cfg.compress), quant_stats


def pack_artifact(sd: dict[str, torch.Tensor], cfg: ArtifactConfig,
                  hessians: dict[str, torch.Tensor] | None = None) -> bytes:
    """The artifact's weight bytes for `sd` under `cfg` (self-describing: unpacking needs no config)."""
    return pack_artifact_with_stats(sd, cfg, hessians=hessians, stats=False)[0]


def unpack_artifact(blob: bytes) -> dict[str, torch.Tensor]:
    """Rebuild the state_dict (original names, shapes and dtypes) from artifact bytes, checked on the way."""
    return dequantize_state_dict(deserialize_quantized(unwrap_blob(blob)))


def roundtrip_state_dict(sd: dict[str, torch.Tensor], cfg: ArtifactConfig,
                         hessians: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], bytes]:
    """Pack `sd` and unpack the blob again: (weights to load into the model, the blob).

    The weights come from the bytes themselves, so what gets evaluated is what gets shipped.
    Tensors come back on the CPU in their original dtypes.
    """
    blob = pack_artifact_with_stats(sd, cfg, hessians=hessians, stats=False)[0]
    # blob was made here by cfg: nothing to check, and only the decoders cfg's schemes need
    qm = deserialize_quantized(unwrap_blob(blob, cfg.compress), check=False)
    return dequantize_state_dict(qm, check=False, int6=packs_int6(cfg), lqer=cfg.lqer_rank > 0), blob


def write_artifact(path: str | os.PathLike[str], blob: bytes) -> int:
    """Write `blob` atomically, creating its folder; returns its size."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, blob)
    return len(blob)


def read_artifact(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise GolflabError(f"cannot read artifact {path}: {exc.strerror or exc}") from None


def load_artifact(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """unpack_artifact of a file, with the file named in any error."""
    try:
        return unpack_artifact(read_artifact(path))
    except GolflabError as exc:
        raise GolflabError(f"{path}: {exc}") from None


def describe_artifact(blob: bytes) -> tuple[str, list[dict[str, object]]]:
    """The compressor and, per stored tensor, its name, scheme, shape, dtype and stored (raw) bytes."""
    from golflab.artifact.compress import blob_codec

    qm = deserialize_quantized(unwrap_blob(blob))
    rows: list[dict[str, object]] = [
        {"name": k, "scheme": qt.scheme, "shape": list(qt.shape), "dtype": qt.dtype, "bytes": qt.nbytes}
        for k, qt in qm.tensors.items()
    ]
    return blob_codec(blob), rows
