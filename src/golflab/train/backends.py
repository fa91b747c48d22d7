"""How a run uses its device: the attention kernels (train.attention), TF32, bf16 autocast, and a model
made ready to run (its masks and compute dtype) for training, re-evaluation and the trusted server."""

from __future__ import annotations

import torch

from golflab.config.schema import RunConfig
from golflab.model.attention import head_dim_of, windowed
from golflab.model.gpt import GPT
from golflab.train.compiling import set_sdp_flags

CUDNN_FIRST_CAPABILITY = (9, 0)  # Hopper: cuDNN's attention beat FA2 by 1.15x on golf-baseline (H200, RESULTS.md)


def sdpa_kernels(cfg: RunConfig, fp32: bool = False, capability: tuple[int, int] = (0, 0)) -> dict[str, bool]:
    """The SDPA kernels train.attention enables on a CUDA device of this compute capability. PyTorch tries
    flash, mem-efficient, math, then cuDNN, and torch.compile picks one when it traces, so a kernel is
    chosen by turning the ones before it off. "flash" is the reference's set, without cuDNN. "cudnn" is
    cuDNN alone. "auto" (and "flex", for the calls FlexAttention does not take) is cuDNN alone where it
    runs every call (bf16, head dim a multiple of 8 up to 128) on Hopper or newer; elsewhere the
    reference's set, except that a model that masks its attention (document masks, windows) has
    mem-efficient and math off where cuDNN runs, so that a masked call, which flash refuses, lands on
    cuDNN rather than on the math kernel that materializes every score."""
    mode = cfg.train.attention
    m = cfg.model
    hd = head_dim_of(m)
    cudnn_runs = not fp32 and hd % 8 == 0 and hd <= 128
    if mode == "cudnn" or (mode in ("auto", "flex") and cudnn_runs and capability >= CUDNN_FIRST_CAPABILITY):
        return {"flash": False, "cudnn": True, "efficient": False, "math": False}
    if mode in ("auto", "flex") and (m.doc_mask or windowed(m)):
        return {"flash": True, "cudnn": True, "efficient": False, "math": not cudnn_runs}
    return {"flash": True, "cudnn": False, "efficient": True, "math": True}


def setup_backends(device: torch.device, cfg: RunConfig, fp32: bool = False) -> None:
    """TF32 matmuls and the SDPA kernels of sdpa_kernels(cfg) on CUDA; nothing on CPU."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    set_sdp_flags(sdpa_kernels(cfg, fp32, torch.cuda.get_device_capability(device)))


def autocast_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    p = cfg.train.precision
    if p == "fp32" or (p == "auto" and device.type != "cuda"):
        return None
    return torch.bfloat16


def ready_model(model: GPT, cfg: RunConfig, device: torch.device) -> GPT:
    """Attention masks and compute dtype for running `model` as `cfg` says on `device`; train.attention=flex
    also lets compiled CUDA graphs take document masks as FlexAttention block masks."""
    model.prepare(device, flex_docs=cfg.train.attention == "flex")
    model.compute_dtype = autocast_dtype(cfg, device)
    return model
