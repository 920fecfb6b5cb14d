"""Forward FLOPs of fairseq transformer and ``transformer_moe`` models, counted from their shape.

What "equal active compute" means in the MoE comparisons: a dense model and an MoE model spend
the same multiply-adds on a token when the token's k experts together have the dense FFN's width
(top-2 over experts of FFN F/2 = one FFN of width F), plus the gate's d×E.

Counted: every matrix product (attention projections, attention scores and weighted sums, FFN,
experts, gate, CMR gate and dense FFN, output projection), 2 FLOPs per multiply-add, on the padded
shapes of a batch as the model computes them. Not counted: layer norms, softmax, activations,
embeddings, dropout (a few per cent at these sizes). ``experts="active"`` counts k expert FFNs per
token (the compute a token needs); ``experts="buffer"`` counts every expert over all C slots of
the gate's capacity rule, which is more when tokens leave slots empty: what NLLB's layer runs, and
the most mtkit's layer runs (it cuts C to the largest expert load of the batch, so its work lies
between the two and depends on the routing). ``tests/test_moe_usage.py`` checks both against
torch's FLOP counter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    """The sizes that decide a model's FLOPs (from a fairseq args namespace: :meth:`from_args`)."""

    encoder_layers: int
    decoder_layers: int
    embed_dim: int
    ffn_dim: int
    vocab: int
    moe_experts: int = 0
    encoder_moe_freq: int = 0
    decoder_moe_freq: int = 0
    expert_ffn_dim: int = 0
    top_k: int = 2
    cmr: bool = False
    train_capacity_fraction: float = 0.0
    eval_capacity_fraction: float = 1.0

    @classmethod
    def from_args(cls, args: Any, vocab: int) -> ModelShape:
        if args.encoder_embed_dim != args.decoder_embed_dim or args.encoder_ffn_embed_dim != args.decoder_ffn_embed_dim:
            raise ValueError("mtkit.flops assumes equal encoder and decoder widths")
        experts = int(getattr(args, "moe_expert_count", 0) or 0)
        freq = int(getattr(args, "moe_freq", 0) or 0)
        return cls(
            encoder_layers=args.encoder_layers, decoder_layers=args.decoder_layers,
            embed_dim=args.encoder_embed_dim, ffn_dim=args.encoder_ffn_embed_dim, vocab=vocab,
            moe_experts=experts,
            encoder_moe_freq=max(int(getattr(args, "encoder_moe_freq", 0) or 0), freq) if experts else 0,
            decoder_moe_freq=max(int(getattr(args, "decoder_moe_freq", 0) or 0), freq) if experts else 0,
            expert_ffn_dim=int(getattr(args, "moe_expert_ffn_dim", None) or args.encoder_ffn_embed_dim),
            top_k=1 if getattr(args, "moe_top1_expert", False) else 2, cmr=bool(getattr(args, "moe_cmr", False)),
            train_capacity_fraction=float(getattr(args, "moe_train_capacity_token_fraction", 0.0) or 0.0),
            eval_capacity_fraction=float(getattr(args, "moe_eval_capacity_token_fraction", 1.0)),
        )

    def is_moe(self, layer: int, side: str) -> bool:
        freq = self.encoder_moe_freq if side == "encoder" else self.decoder_moe_freq
        return self.moe_experts > 0 and freq > 0 and (layer + 1) % freq == 0


def _capacity(shape: ModelShape, tokens: int, training: bool) -> int:
    from mtkit.modules.moe.gate import capacity

    top_k = 1 if shape.top_k == 1 or shape.moe_experts == 1 else 2
    return capacity(tokens, shape.moe_experts, top_k, training, shape.eval_capacity_fraction,
                    shape.train_capacity_fraction)


def ffn_macs(shape: ModelShape, tokens: int, moe: bool, experts: str, training: bool) -> int:
    """Multiply-adds of one FFN sub-layer over ``tokens`` token positions (padding included)."""
    d = shape.embed_dim
    if not moe:
        return tokens * 2 * d * shape.ffn_dim
    E = shape.moe_experts
    if experts == "active":
        slots = tokens * min(shape.top_k, E)
    elif experts == "buffer":
        slots = E * _capacity(shape, tokens, training)
    else:
        raise ValueError(f"experts must be 'active' or 'buffer', not {experts!r}")
    macs = tokens * d * E + slots * 2 * d * shape.expert_ffn_dim
    if shape.cmr:
        macs += tokens * (2 * d * shape.ffn_dim + d)
    return macs


def forward_flops(shape: ModelShape, batch: int, src_len: int, tgt_len: int, experts: str = "active",
                  training: bool = False) -> dict[str, int]:
    """Forward FLOPs of one teacher-forced batch of ``batch`` sentence pairs padded to
    ``src_len`` / ``tgt_len`` tokens: encoder, decoder, output projection and total."""
    d = shape.embed_dim
    S, T = batch * src_len, batch * tgt_len
    enc = 0
    for i in range(shape.encoder_layers):
        enc += S * 4 * d * d + batch * 2 * src_len * src_len * d  # projections; scores + weighted sum
        enc += ffn_macs(shape, S, shape.is_moe(i, "encoder"), experts, training)
    dec = 0
    for i in range(shape.decoder_layers):
        dec += T * 4 * d * d + batch * 2 * tgt_len * tgt_len * d  # self-attention (full, masked)
        dec += T * 2 * d * d + S * 2 * d * d + batch * 2 * tgt_len * src_len * d  # cross-attention
        dec += ffn_macs(shape, T, shape.is_moe(i, "decoder"), experts, training)
    out = T * d * shape.vocab
    return {"encoder": 2 * enc, "decoder": 2 * dec, "output": 2 * out, "total": 2 * (enc + dec + out)}


def flops_per_token(shape: ModelShape, src_len: float, tgt_len: float) -> dict[str, float]:
    """Active forward FLOPs per token of a sentence pair of mean lengths ``src_len`` / ``tgt_len``
    (tokens = source + target), and per pair; training costs about 3× the forward."""
    s, t = max(1, round(src_len)), max(1, round(tgt_len))
    f = forward_flops(shape, 1, s, t, experts="active")
    return {"per_token": f["total"] / (s + t), "per_sentence_pair": float(f["total"]),
            "src_len": s, "tgt_len": t, "training_per_token": 3 * f["total"] / (s + t)}


def parameters(shape: ModelShape, shared_embeddings: bool = True) -> dict[str, int]:
    """Weight counts (matrices only): total and active per token (an MoE token uses k experts)."""
    d, E = shape.embed_dim, shape.moe_experts
    total = active = shape.vocab * d * (1 if shared_embeddings else 2)
    for side, layers in (("encoder", shape.encoder_layers), ("decoder", shape.decoder_layers)):
        for i in range(layers):
            attn = 4 * d * d * (2 if side == "decoder" else 1)
            if shape.is_moe(i, side):
                expert = 2 * d * shape.expert_ffn_dim
                cmr = 2 * d * shape.ffn_dim + d if shape.cmr else 0
                total += attn + d * E + E * expert + cmr
                active += attn + d * E + min(shape.top_k, E) * expert + cmr
            else:
                total += attn + 2 * d * shape.ffn_dim
                active += attn + 2 * d * shape.ffn_dim
    return {"total": total, "active": active}
