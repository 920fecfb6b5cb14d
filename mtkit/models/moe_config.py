"""The MoE options of ``transformer_moe`` as a fairseq dataclass (help text and default in one place).

No ``from __future__ import annotations`` here: fairseq reads the field types at run time to build
the argparse options (``gen_parser_from_dataclass``), so they must be real types, not strings.
"""
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass


@dataclass
class MoEConfig(FairseqDataclass):
    """The MoE options of ``transformer_moe`` (NLLB's names), with their defaults: one place per option.
    The architectures below only change defaults."""

    moe_expert_count: int = field(default=0, metadata={"help": "experts per MoE layer (E); 0: no MoE"})
    moe_freq: int = field(default=0, metadata={"help": "every k-th encoder and decoder FFN is MoE"})
    encoder_moe_freq: int = field(default=0, metadata={"help": "encoder MoE frequency"})
    decoder_moe_freq: int = field(default=0, metadata={"help": "decoder MoE frequency"})
    moe_top1_expert: bool = field(default=False, metadata={"help": "top-1 instead of top-2 gating"})
    moe_expert_ffn_dim: Optional[int] = field(default=None, metadata={"help": "expert FFN dim (default: the FFN dim)"})
    moe_gating_use_fp32: bool = field(
        default=False, metadata={"help": "gate in fp32 (always on in mtkit; accepted for NLLB command compatibility)"})
    moe_second_expert_policy: ChoiceEnum(["sampling", "all", "random"]) = field(  # type: ignore[valid-type]
        default="sampling", metadata={"help": "how the second expert is chosen and kept (GShard)"})
    moe_normalize_gate_prob_before_dropping: bool = field(
        default=False, metadata={"help": "normalise the two gate weights before capacity dropping"})
    moe_eval_capacity_token_fraction: float = field(
        default=1.0, metadata={"help": "eval capacity ceil(frac*S) (<=0: training rule)"})
    moe_train_capacity_token_fraction: float = field(
        default=0.0, metadata={"help": "training capacity ceil(frac*S) instead of 2*ceil(S/E) (1.0 = no drops)"})
    moe_eom: float = field(default=0.0, metadata={"help": "Expert Output Masking probability"})
    moe_cmr: bool = field(default=False, metadata={"help": "Conditional MoE Routing"})
    cmr_gate_drop: float = field(default=0.0, metadata={"help": "dropout on the CMR gate"})
    moe_balance: ChoiceEnum(["micro", "global"]) = field(  # type: ignore[valid-type]
        default="micro",
        metadata={"help": "balance loss over the micro-batch (NLLB) or the global batch (Qiu et al. 2025)"})
    moe_balance_micro_weight: float = field(
        default=0.0, metadata={"help": "with --moe-balance global: add this times the micro-batch loss (paper: 0.01)"})
    use_moe_pad_mask: bool = field(
        default=False, metadata={"help": "accepted for NLLB compatibility; padding is always excluded from routing"})
