"""``transformer_moe``: fairseq's transformer in which every k-th FFN is a sparsely gated MoE.

Layer i (0-based) of the encoder is MoE when ``(i+1) % encoder_moe_freq == 0`` (NLLB rule; the
effective frequency is max(--encoder-moe-freq, --moe-freq)); same for the decoder. An MoE layer
keeps fairseq's attention/residual/norm code and replaces only its FFN by ``self.moe_layer``
(so parameter names are NLLB's: ``layers.{i}.moe_layer.experts.{k}.fc1.weight``,
``layers.{i}.moe_layer.gate.wg.weight``). With ``--moe-cmr`` the layer also keeps a dense FFN
(``cmr_fc1``/``cmr_fc2``) mixed in by the CMR gate (``cmr_gate.proj``).
"""
from __future__ import annotations

import argparse
from dataclasses import fields

import torch
import torch.nn as nn
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerConfig, TransformerModel
from fairseq.models.transformer.transformer_decoder import TransformerDecoder
from fairseq.models.transformer.transformer_encoder import TransformerEncoder
from fairseq.models.transformer.transformer_legacy import base_architecture
from fairseq.modules.transformer_layer import (
    TransformerDecoderLayerBase,
    TransformerEncoderLayerBase,
)

from mtkit.models.moe_config import MoEConfig
from mtkit.modules.moe import CMRGate, MoELayer, parallel


def add_moe_args(parser: argparse.ArgumentParser) -> None:
    """MoE options without defaults (fairseq suppresses model defaults; the architectures set them)."""
    gen_parser_from_dataclass(parser, MoEConfig(), delete_default=True)


def _moe_kwargs(args: argparse.Namespace, model_dim: int, ffn_dim: int, layer_id: int) -> dict:
    return dict(
        model_dim=model_dim, ffn_dim=args.moe_expert_ffn_dim or ffn_dim, num_experts=args.moe_expert_count,
        top_k=1 if args.moe_top1_expert else 2, activation=getattr(args, "activation_fn", "relu"),
        activation_dropout=float(getattr(args, "activation_dropout", 0.0) or getattr(args, "relu_dropout", 0.0) or 0.0),
        use_fp32_gate=True, second_expert_policy=args.moe_second_expert_policy,
        normalize_before_dropping=args.moe_normalize_gate_prob_before_dropping,
        eval_capacity_fraction=args.moe_eval_capacity_token_fraction,
        train_capacity_fraction=args.moe_train_capacity_token_fraction, eom=args.moe_eom,
        balance=args.moe_balance, micro_weight=args.moe_balance_micro_weight,
        seed=getattr(args, "seed", 1), layer_id=layer_id,
    )


class _MoEFFNMixin:
    """Turns a fairseq transformer layer's FFN into the MoE: fairseq computes
    ``fc2(dropout(act(fc1(x))))``; fc1/act/dropout become identities and fc2 becomes
    :meth:`_moe_ffn` (a bound method, not a module, so parameter names stay NLLB's)."""

    def _setup_moe(self, args: argparse.Namespace, model_dim: int, ffn_dim: int, layer_id: int) -> None:
        has_cmr = bool(args.moe_cmr)
        if has_cmr:  # keep the dense FFN under CMR names
            self.cmr_fc1, self.cmr_fc2 = self.fc1, self.fc2
            self.cmr_act, self.cmr_act_drop = self.activation_fn, self.activation_dropout_module
        del self.fc1, self.fc2
        self.moe_layer = MoELayer(**_moe_kwargs(args, model_dim, ffn_dim, layer_id))
        self.cmr_gate = CMRGate(model_dim, args.cmr_gate_drop) if has_cmr else None
        self.fc1 = _identity
        self.activation_fn = _identity
        self.activation_dropout_module = nn.Identity()
        self.fc2 = self._moe_ffn
        self._pad_mask: torch.Tensor | None = None

    def _moe_ffn(self, x: torch.Tensor) -> torch.Tensor:
        T, B, M = x.shape
        flat = x.reshape(T * B, M)
        pad = None
        if self._pad_mask is not None and tuple(self._pad_mask.shape) == (B, T):
            pad = self._pad_mask.transpose(0, 1).reshape(-1)
        y = self.moe_layer(flat, pad)
        if self.cmr_gate is not None:
            dense = self.cmr_fc2(self.cmr_act_drop(self.cmr_act(self.cmr_fc1(flat))))
            g = self.cmr_gate(flat, pad)
            y = (1 - g) * dense + g * y
        return y.view(T, B, M)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class MoEEncoderLayer(_MoEFFNMixin, TransformerEncoderLayerBase):
    def __init__(self, cfg: TransformerConfig, args: argparse.Namespace, layer_id: int):
        super().__init__(cfg)
        self._setup_moe(args, cfg.encoder.embed_dim, cfg.encoder.ffn_embed_dim, layer_id)

    def forward(self, x, encoder_padding_mask=None, attn_mask=None):  # noqa: ANN001, ANN201
        self._pad_mask = encoder_padding_mask
        return super().forward(x, encoder_padding_mask, attn_mask)


class MoEDecoderLayer(_MoEFFNMixin, TransformerDecoderLayerBase):
    def __init__(self, cfg: TransformerConfig, args: argparse.Namespace, layer_id: int,
                 no_encoder_attn: bool = False):
        super().__init__(cfg, no_encoder_attn)
        self._setup_moe(args, cfg.decoder.embed_dim, cfg.decoder.ffn_embed_dim, layer_id)

    def forward(self, x, *a, self_attn_padding_mask=None, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201
        self._pad_mask = self_attn_padding_mask
        return super().forward(x, *a, self_attn_padding_mask=self_attn_padding_mask, **kw)


def _is_moe(i: int, freq: int) -> bool:
    return freq > 0 and (i + 1) % freq == 0


class MoETransformerEncoder(TransformerEncoder):
    def build_encoder_layer(self, args):  # noqa: ANN001, ANN201
        i = getattr(self, "_n_built", 0)
        self._n_built = i + 1
        freq = max(args.encoder_moe_freq, args.moe_freq)
        if args.moe_expert_count > 0 and _is_moe(i, freq):
            return MoEEncoderLayer(TransformerConfig.from_namespace(args), args, layer_id=i)
        return super().build_encoder_layer(args)


class MoETransformerDecoder(TransformerDecoder):
    def build_decoder_layer(self, args, no_encoder_attn=False):  # noqa: ANN001, ANN201
        i = getattr(self, "_n_built", 0)
        self._n_built = i + 1
        freq = max(args.decoder_moe_freq, args.moe_freq)
        if args.moe_expert_count > 0 and _is_moe(i, freq):
            return MoEDecoderLayer(TransformerConfig.from_namespace(args), args, layer_id=1000 + i,
                                   no_encoder_attn=no_encoder_attn)
        return super().build_decoder_layer(args, no_encoder_attn)


@register_model("transformer_moe")
class TransformerMoEModel(TransformerModel):
    """Transformer with MoE FFNs; all of fairseq's transformer options apply."""

    is_moe = True

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        super().add_args(parser)
        add_moe_args(parser)

    @classmethod
    def build_model(cls, args, task):  # noqa: ANN001, ANN206
        model = super().build_model(args, task)
        parallel.ddp_ignore_expert_params(model)
        return model

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):  # noqa: ANN001, ANN206
        return MoETransformerEncoder(args, src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):  # noqa: ANN001, ANN206
        return MoETransformerDecoder(args, tgt_dict, embed_tokens,
                                     no_encoder_attn=getattr(args, "no_cross_attention", False))


def _set_default(args: argparse.Namespace, name: str, value: object) -> None:
    if getattr(args, name, None) is None:
        setattr(args, name, value)


def moe_base_architecture(args: argparse.Namespace) -> None:
    for f in fields(MoEConfig):
        _set_default(args, f.name, f.default)
    args.moe_gating_use_fp32 = True
    base_architecture(args)


register_model_architecture("transformer_moe", "transformer_moe")(moe_base_architecture)


@register_model_architecture("transformer_moe", "transformer_moe_tiny")
def transformer_moe_tiny(args: argparse.Namespace) -> None:
    """CPU test shape (mtkit/testing.py's mBART-like model): 2+2 layers, dim 64, 4 experts,
    MoE in layer 2 of encoder and decoder."""
    for name, value in (("encoder_layers", 2), ("decoder_layers", 2), ("encoder_embed_dim", 64),
                        ("decoder_embed_dim", 64), ("encoder_ffn_embed_dim", 128), ("decoder_ffn_embed_dim", 128),
                        ("encoder_attention_heads", 4), ("decoder_attention_heads", 4),
                        ("moe_expert_count", 4), ("moe_freq", 2)):
        _set_default(args, name, value)
    moe_base_architecture(args)


@register_model_architecture("transformer_moe", "transformer_moe_24_24_big")
def transformer_moe_24_24_big(args: argparse.Namespace) -> None:
    """NLLB-200 MoE shape: transformer_24_24_big (24+24 layers, dim 2048, FFN 8192, 16 heads,
    pre-norm, shared embeddings, 512 positions) with 128 experts in every 4th layer, EOM 0.2,
    second expert policy "all"."""
    for name, value in (("encoder_layers", 24), ("decoder_layers", 24), ("encoder_embed_dim", 2048),
                        ("decoder_embed_dim", 2048), ("encoder_ffn_embed_dim", 8192),
                        ("decoder_ffn_embed_dim", 8192), ("encoder_attention_heads", 16),
                        ("decoder_attention_heads", 16), ("attention_dropout", 0.1), ("relu_dropout", 0.0),
                        ("max_source_positions", 512), ("max_target_positions", 512)):
        _set_default(args, name, value)
    for name, value in (("moe_expert_count", 128), ("moe_freq", 4), ("moe_second_expert_policy", "all"),
                        ("moe_eom", 0.2)):
        _set_default(args, name, value)
    args.encoder_normalize_before = True
    args.decoder_normalize_before = True
    args.share_all_embeddings = True
    moe_base_architecture(args)

