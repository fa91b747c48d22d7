"""golflab.artifact: quantize, serialize and compress a state_dict; size rule; round trip."""

from golflab.artifact.compress import CODECS, compress_bytes, decompress_bytes, unwrap_blob, wrap_blob
from golflab.artifact.pack import (
    load_artifact,
    pack_artifact,
    pack_artifact_with_stats,
    read_artifact,
    roundtrip_state_dict,
    unpack_artifact,
    write_artifact,
)
from golflab.artifact.quantize import (
    QTensor,
    QuantizedModel,
    QuantStats,
    dequantize_state_dict,
    pack_int6,
    quantize_state_dict,
    unpack_int6,
)
from golflab.artifact.serialize import deserialize_quantized, serialize_quantized
from golflab.artifact.size import ArtifactSize, measure_artifact

__all__ = [
    "CODECS",
    "ArtifactSize",
    "QTensor",
    "QuantStats",
    "QuantizedModel",
    "compress_bytes",
    "decompress_bytes",
    "dequantize_state_dict",
    "deserialize_quantized",
    "load_artifact",
    "measure_artifact",
    "pack_artifact",
    "pack_artifact_with_stats",
    "pack_int6",
    "quantize_state_dict",
    "read_artifact",
    "roundtrip_state_dict",
    "serialize_quantized",
    "unpack_artifact",
    "unpack_int6",
    "unwrap_blob",
    "wrap_blob",
    "write_artifact",
]
