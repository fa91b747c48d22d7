"""The typed RunConfig tree: the single source of truth for one training run.

Defaults reproduce the parameter-golf naive baseline (9 x 512, GQA 8/4, relu^2 x2, tied embeddings,
softcap 30, Muon 0.04, 524,288 tokens per step at seq 1024). Every technique is a field here, so an
ablation is a config diff. This module depends on the standard library only: the exported
stand-alone `train_gpt.py` inlines it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MlpKind = Literal["relu2", "swiglu", "gelu", "silu", "leaky_relu2"]
OptimizerKind = Literal["muon", "normuon", "adam"]
NsCoeffs = Literal["quintic", "polar_express"]
# int8_pg: parameter-golf's reference int8 rule; gptq / gptq_lite: the records' Hessian-aware and clip-search
# int-`artifact.bits` schemes (golflab.artifact.gptq)
QuantKind = Literal["int8", "int8_pg", "int6", "gptq", "gptq_lite", "none"]
CompressKind = Literal["zlib", "lzma", "brotli", "zstd"]
DataOrder = Literal["sequential", "shuffled"]
Packing = Literal["stream", "best_fit"]
WdSchedule = Literal["constant", "linear"]
AttnGate = Literal["none", "dense", "sparse"]


@dataclass
class DataConfig:
    path: str = ""  # dataset dir: manifest.json + shards (golflab prepare), or a parameter-golf dataset dir
    tokenizer: str = ""  # tokenizer file; empty = the one named by the dataset's manifest
    order: DataOrder = "sequential"  # shuffled: shard order and start offset drawn from the seed
    align_bos: bool = False  # start every training sequence at a document boundary (BOS token)
    # best_fit: every row starts with BOS and is filled with whole documents chosen best-fit from a buffer
    # of pack_buffer_docs documents, the shortest cropped when none fits (autoresearch's prepare.py loader)
    packing: Packing = "stream"
    pack_buffer_docs: int = 1000


@dataclass
class ModelConfig:
    vocab_size: int = 1024  # 0 = take it from the dataset's tokenizer
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4  # < num_heads: grouped-query attention
    head_dim: int = 0  # 0 = model_dim // num_heads
    seq_len: int = 1024
    mlp: MlpKind = "relu2"
    mlp_mult: float = 2.0  # hidden = mlp_mult * model_dim, rounded up to mlp_round (e.g. 2.6667 for SwiGLU 8/3)
    mlp_hidden: int = 0  # explicit hidden width; overrides mlp_mult
    mlp_round: int = 64
    leaky_slope: float = 0.5  # negative slope of leaky_relu2
    tie_embeddings: bool = True
    logit_softcap: float = 30.0  # tanh cap on logits; 0 disables
    rope_base: float = 10000.0
    qk_norm: bool = True  # RMS-norm q and k, with a learned per-head gain
    qk_gain: bool = True  # learned per-head gain on q after the QK norm
    qk_gain_init: float = 1.5
    unet_skips: bool = True  # encoder/decoder halves with learned skip weights
    resid_mix: bool = True  # each block mixes the residual with the first embedding x0, per channel
    # per-layer scalars before each block: x = resid_lambdas[i] * x + x0_lambdas[i] * x0 (roles resid and x0)
    layer_lambdas: bool = False
    x0_lambda_init: float = 0.1
    layer_scales: bool = True  # learned per-channel scales on attention and MLP outputs
    zero_init_proj: bool = True  # zero-init output projections (and the untied head)
    embed_init_std: float = 0.005  # std of the tied embedding init
    # storage dtype of the token and value embedding tables (and so of their gradients and Adam state);
    # autoresearch keeps them in bf16 (train.py init_weights), golflab's default is fp32 master weights
    embed_dtype: Literal["fp32", "bf16"] = "fp32"
    matrix_init_scale: float = 1.0  # matrices start uniform in +-scale / sqrt(fan_in) (sqrt(3): unit variance)
    # orthogonal: attention and MLP input matrices start orthogonal with gain matrix_init_scale (the records)
    matrix_init: Literal["uniform", "orthogonal"] = "uniform"
    head_init_std: float = 0.0  # untied head starts N(0, std); 0 = zeros with zero_init_proj, else N(0, 0.001)
    attn_window: int = 0  # sliding-window size for the layers in window_layers
    window_layers: list[int] = field(default_factory=list)
    num_registers: int = 0  # learnable register/sink tokens prepended to every sequence
    v_norm: bool = False  # gated value normalisation (per-KV-head gate, 0-init = off at start)
    value_embed_layers: list[int] = field(default_factory=list)  # layers with value embeddings
    mos_experts: int = 1  # mixture of softmax with K experts; 1 = plain softmax head
    # --- parameter-golf frontier techniques (docs/frontier.md); the defaults leave them all off ---
    rope_dims: int = 0  # partial RoPE: rotate only the first rope_dims dims of each head; 0 = all
    ln_scale: bool = False  # scale each block's normed inputs by 1 / sqrt(layer + 1)
    # depth recurrence: layers loop_start..loop_end (inclusive) run 1 + num_loops times in a row, same weights
    num_loops: int = 0
    loop_start: int = 0
    loop_end: int = 0
    parallel_start: int = 0  # parallel residuals: two lanes (attention, MLP) from this layer on; 0 = off
    skip_gates: bool = False  # U-Net skips mix by a learned sigmoid gate (lerp) instead of adding
    xsa_layers: list[int] = field(default_factory=list)  # XSA: remove each head output's part along its own v
    # attention output gate per head: sigmoid(scale * W x[:gate_window]) (sparse) or from all of x (dense)
    attn_gate: AttnGate = "none"
    gate_window: int = 12  # channels the sparse attention gate and the smear gate read
    attn_gate_scale: float = 1.0
    attn_gate_init_std: float = 0.0  # 0 = zero init (gate 0.5 everywhere at the start)
    smear_gate: bool = False  # x_t += lam * sigmoid(W x_t[:gate_window]) * x_(t-1) on the embedding, not at BOS
    doc_mask: bool = False  # attention stays inside documents (a document starts at each bos_id token)
    bos_id: int = 1  # the BOS token that starts a document (1 in parameter-golf's SentencePiece tokenizers)


@dataclass
class ParamGroupConfig:
    """Optimizer settings of one parameter role; the table in golflab.optim assigns roles."""

    optimizer: OptimizerKind = "adam"
    lr: float = 0.04
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.0  # decoupled: p -= lr * wd * p


@dataclass
class MuonConfig:
    momentum: float = 0.95
    momentum_warmup_start: float = 0.85
    momentum_warmup_steps: int = 500
    nesterov: bool = True
    ns_steps: int = 5
    ns_coeffs: NsCoeffs = "quintic"
    beta2: float = 0.95  # NorMuon second-moment decay
    ema_momentum: bool = False  # momentum buffer as an EMA (B <- m B + (1 - m) G) instead of a sum (B <- m B + G)
    cautious_wd: bool = False  # decay only entries where the update and the weight have the same sign
    wd_shape_scale: bool = False  # decay with the shape-adjusted LR, lr * max(1, rows/cols)^0.5, as the update
    wd_after_update: bool = False  # W <- (W - lr U)(1 - lr wd) instead of W (1 - lr wd) - lr U


def _group(optimizer: OptimizerKind, lr: float, wd: float = 0.0) -> ParamGroupConfig:
    return ParamGroupConfig(optimizer=optimizer, lr=lr, weight_decay=wd)


@dataclass
class OptimConfig:
    matrix: ParamGroupConfig = field(default_factory=lambda: _group("muon", 0.04))
    embed: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.6))  # untied input embedding
    tied_embed: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.05))
    head: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.008))  # untied output head
    scalar: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.04))  # vectors, scalars, registers
    gate: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.04))  # small gate matrices
    value_embed: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.6))
    resid: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.04))  # model.layer_lambdas: resid
    x0: ParamGroupConfig = field(default_factory=lambda: _group("adam", 0.04))  # model.layer_lambdas: x0
    muon: MuonConfig = field(default_factory=MuonConfig)
    grad_clip: float = 0.0  # global grad-norm clip; 0 disables
    # linear: every row's weight decay is scaled by (1 - progress), progress = the budget fraction used
    wd_schedule: WdSchedule = "constant"


@dataclass
class ScheduleConfig:
    warmup_steps: int = 0  # linear LR warmup
    warmdown_frac: float = 0.0  # linear decay over this final fraction of the budget (wallclock-aware)
    warmdown_steps: int = 1200  # parameter-golf rule: decay over the last N steps' worth of wallclock
    lr_floor: float = 0.0  # LR never drops below this fraction of its peak
    compile_warmup_steps: int = 20  # at most this many steps prime torch.compile (ending once 2 compile nothing); state restored
    ema_decay: float = 0.0  # EMA of weights, used for eval and the artifact; 0 disables


@dataclass
class TrainConfig:
    batch_tokens: int = 524_288  # global tokens per optimizer step
    micro_batches: int = 8  # micro-batches per step over all ranks; grad_accum = micro_batches // world_size
    # auto: compile the whole model on CUDA, eager on CPU; regional: compile each block and the head apart,
    # so that one graph serves every block of the same shape (a fraction of the compile time; bench/RESULTS.md)
    compile: Literal["auto", "on", "regional", "off"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    # attention kernels on CUDA (train/backends.py sdpa_kernels): auto = SDPA's cuDNN kernel on Hopper or newer
    # where it runs (bf16, head dim 8k <= 128), elsewhere flash, with masked calls (document masks), which
    # flash cannot run, on cuDNN rather than the math kernel; flash = SDPA's flash, mem-efficient, math (the
    # reference's); cudnn = SDPA's cuDNN only; flex = auto, with compiled document masks as FlexAttention block
    # masks (1.38x faster on golf-frontier, but its loss goes to NaN at step 3 on the H200: docs/frontier.md)
    attention: Literal["auto", "flash", "cudnn", "flex"] = "auto"
    log_every: int = 200
    checkpoint_every: int = 0  # steps; 0 = only a final checkpoint
    max_loss: float = 0.0  # stop with an error once the train loss exceeds this; 0 = 2 x initial loss + 5


@dataclass
class BudgetConfig:
    seconds: float = 600.0  # training wallclock (compile warm-up and eval excluded); 0 = unlimited
    steps: int = 0  # 0 = unlimited
    tokens: int = 0  # 0 = unlimited


@dataclass
class TTTConfig:
    """Legal score-first test-time training in the final eval (golflab.eval.ttt, docs/eval.md): the split in
    chunks of chunk_tokens positions; each chunk is scored first, then trained on; the last is never trained on."""

    enabled: bool = False
    chunk_tokens: int = 32_768  # positions per chunk; training uses its whole rows of model.seq_len
    epochs: int = 3  # passes over each scored chunk (0: score only, equal to the plain eval)
    lr: float = 0.005  # SGD learning rate, cosine-decayed over the chunks
    momentum: float = 0.9
    batch_seqs: int = 32  # rows per update, over all ranks
    grad_clip: float = 1.0  # 0 disables
    freeze_blocks: int = 0  # the first N blocks stay fixed


@dataclass
class EvalConfig:
    val_every: int = 1000  # steps between periodic evals; 0 = only the final one
    val_tokens: int = 0  # cap on tokens for periodic evals (0 = whole val split); the final eval uses all
    batch_tokens: int = 524_288  # tokens per eval forward pass over all ranks
    stride: int = 64  # sliding-window stride for the final eval; 0 = standard eval only
    split: Literal["val", "test"] = "val"
    tokens: int = 0  # final eval scores this many target tokens (whole rows of seq_len); 0 = the whole split
    # best_fit: eval rows packed like data.packing="best_fit" (autoresearch's evaluate_bpb); stream: windows
    packing: Packing = "stream"
    zero_byte_nats: bool = True  # false: targets of 0 bytes (BOS, special tokens) add no nats (autoresearch)
    # also score the final model on these splits (standard eval, results under result["splits"]): the lab
    # asks for "test" so that held-out confirmation needs no second process and no kept weights
    also_splits: list[Literal["val", "test"]] = field(default_factory=list)
    # false: the trainer evaluates nothing and reads no val/test split, it only trains and saves model.pt;
    # set by the trusted harness (golflab.trusted), which measures the weights itself
    enabled: bool = True
    # the artifact's re-evaluation also scores the round-tripped model with score-first TTT (result
    # artifact.ttt_val_bpb); its time is part of the eval time (result eval_seconds, artifact.ttt_seconds)
    ttt: TTTConfig = field(default_factory=TTTConfig)


@dataclass
class ArtifactConfig:
    enabled: bool = True  # quantize, compress and re-evaluate after training
    quant: QuantKind = "int8_pg"  # parameter-golf's reference rule (per-row scale floor 1/127)
    compress: CompressKind = "zlib"
    clip_percentile: float = 99.99984
    scale_floor: float = 0.0  # lower bound on per-row scales of int8 / int6 (int8_pg always uses 1/127)
    keep_float_patterns: list[str] = field(
        default_factory=lambda: [
            "attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weights", "v_gate", "registers",
        ]
    )  # kept in fp32 whatever their size
    fp16_patterns: list[str] = field(default_factory=list)  # stored as fp16 (e.g. "tok_emb" for embeddings)
    keep_float_max_numel: int = 65_536  # smaller float tensors are stored as fp16 rather than quantized
    limit_bytes: int = 16_000_000  # code + compressed weights
    # gptq / gptq_lite (golflab.artifact.gptq, docs/artifact.md): integer width of matrices and of embeddings
    # (names containing "emb"); 6 is packed 4 values in 3 bytes, other widths are stored one byte a value
    bits: int = 6
    embed_bits: int = 8
    # gptq's per-row clip: clip_sigmas x the row's standard deviation (the records' SDClip; 0 = the
    # clip_percentile rule); attn_ / mlp_ / embed_clip_sigmas override it for names with ".attn." / ".mlp." / "emb"
    clip_sigmas: float = 0.0
    attn_clip_sigmas: float = 0.0
    mlp_clip_sigmas: float = 0.0
    embed_clip_sigmas: float = 0.0
    gptq_calib_batches: int = 16  # training micro-batches whose activations give GPTQ's Hessians
    # LQER (golflab.artifact.lqer): rank-r factors A B of W - Q(W) on the lqer_top_k quantized matrices with
    # the largest error, stored quantized (asym: A int2 with one scale, B int4 in groups of lqer_group;
    # else both int`lqer_bits` per row); 0 = off
    lqer_rank: int = 0
    lqer_top_k: int = 3
    lqer_asym: bool = True
    lqer_group: int = 64
    lqer_bits: int = 4


@dataclass
class RunConfig:
    seed: int = 1337
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    artifact: ArtifactConfig = field(default_factory=ArtifactConfig)
