"""Export dense mBART-family fairseq checkpoints to a Hugging Face transformers folder.

transformers 5.x no longer ships fairseq conversion scripts, so the mapping is ours. fairseq's
pre-norm transformer with ``--layernorm-embedding``, shared embeddings and learned positions is
exactly ``MBartForConditionalGeneration``; with sinusoidal positions and no layernorm_embedding it is
``M2M100ForConditionalGeneration``. Details that must line up:

- ``embed_scale``: fairseq multiplies token embeddings by sqrt(d) unless ``--no-scale-embedding``
  (HF ``scale_embedding``);
- positions: fairseq's learned positions have ``max_positions + padding_idx + 1`` rows and the first
  real token uses row ``padding_idx + 1`` = 2; HF's MBart embedding has ``max_position_embeddings + 2``
  rows with offset 2, so rows copy one to one when padding_idx is 1. fairseq numbers positions
  skipping (left) padding, HF counts from 0, so outputs agree for unpadded or right-padded input;
- final layer norms: fairseq ``encoder.layer_norm``/``decoder.layer_norm`` = HF ``*.layer_norm``;
- output projection tied to the shared embedding (HF ``lm_head`` tied; ``final_logits_bias`` zero).
Everything else keeps its name under ``model.``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from mtkit.errors import MtkitError
from mtkit.io import atomic_dir, check_out_dir
from mtkit.model_folder import LoadedModel, ModelFiles, build_model
from mtkit.moe_checkpoint import is_moe_state

logger = logging.getLogger(__name__)

HF_META = "mtkit_hf.json"


class UnmappableModelError(MtkitError):
    """The checkpoint's architecture has no equivalent transformers class."""


def _g(args: Any, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def check_mappable(args: Any, state: dict[str, Any]) -> str:
    """Return 'mbart' or 'm2m100', or raise UnmappableModelError saying why."""
    problems = []
    if not (_g(args, "encoder_normalize_before") and _g(args, "decoder_normalize_before")):
        problems.append("it is post-norm (MBart/M2M100 are pre-norm; train with --encoder-normalize-before "
                        "--decoder-normalize-before)")
    if not _g(args, "share_all_embeddings"):
        problems.append("its encoder, decoder and output embeddings are not shared (--share-all-embeddings)")
    if _g(args, "encoder_embed_dim") != _g(args, "decoder_embed_dim"):
        problems.append("encoder and decoder dimensions differ")
    if _g(args, "decoder_output_dim", _g(args, "decoder_embed_dim")) != _g(args, "decoder_embed_dim") or \
            _g(args, "decoder_input_dim", _g(args, "decoder_embed_dim")) != _g(args, "decoder_embed_dim"):
        problems.append("the decoder has input/output projections")
    if _g(args, "no_token_positional_embeddings"):
        problems.append("it has no positional embeddings")
    if _g(args, "activation_fn", "relu") not in ("relu", "gelu"):
        problems.append(f"activation {_g(args, 'activation_fn')} has no HF equivalent here")
    if _g(args, "no_decoder_final_norm") or _g(args, "no_encoder_final_norm"):
        problems.append("a final layer norm is missing")
    if _g(args, "cross_self_attention") or _g(args, "no_cross_attention"):
        problems.append("its attention layout differs")
    if _g(args, "max_source_positions") != _g(args, "max_target_positions"):
        problems.append("max source and target positions differ (HF has one max_position_embeddings)")
    if is_moe_state(state):
        problems.append(
            "it is a mixture-of-experts checkpoint: not exported, because transformers' NllbMoe experts "
            "layer does not reproduce fairseq/NLLB top-2 routing (NllbMoeExperts.forward picks the expert "
            "by the value of the top-1 mask, not by the expert index; see docs/translate.md), so no logits "
            "check could pass; translate MoE checkpoints with `mtkit translate` (fairseq engine)")
    learned = bool(_g(args, "encoder_learned_pos")) and bool(_g(args, "decoder_learned_pos"))
    sinus = not _g(args, "encoder_learned_pos") and not _g(args, "decoder_learned_pos")
    lne = bool(_g(args, "layernorm_embedding"))
    kind = None
    if learned and lne:
        kind = "mbart"
    elif sinus and not lne:
        kind = "m2m100"
    elif learned and not lne:
        problems.append("learned positions without --layernorm-embedding fit neither MBart (needs "
                        "layernorm_embedding) nor M2M100 (sinusoidal positions)")
    elif sinus and lne:
        problems.append("sinusoidal positions with --layernorm-embedding fit neither MBart (learned "
                        "positions) nor M2M100 (no layernorm_embedding)")
    else:
        problems.append("encoder and decoder use different kinds of positional embeddings")
    if problems:
        raise UnmappableModelError(
            "cannot export this checkpoint to Hugging Face MBart/M2M100: " + "; ".join(problems))
    return kind  # type: ignore[return-value]


def hf_config(args: Any, kind: str, vocab_size: int, pad: int, bos: int, eos: int) -> Any:
    import transformers

    common = dict(
        vocab_size=vocab_size, d_model=args.encoder_embed_dim,
        encoder_layers=args.encoder_layers, decoder_layers=args.decoder_layers,
        encoder_attention_heads=args.encoder_attention_heads, decoder_attention_heads=args.decoder_attention_heads,
        encoder_ffn_dim=args.encoder_ffn_embed_dim, decoder_ffn_dim=args.decoder_ffn_embed_dim,
        activation_function=_g(args, "activation_fn", "relu"),
        dropout=_g(args, "dropout", 0.1), attention_dropout=_g(args, "attention_dropout", 0.0),
        activation_dropout=_g(args, "activation_dropout", 0.0),
        encoder_layerdrop=0.0, decoder_layerdrop=0.0,
        max_position_embeddings=args.max_source_positions,
        scale_embedding=not _g(args, "no_scale_embedding", False),
        pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, decoder_start_token_id=eos,
        forced_eos_token_id=eos, tie_word_embeddings=True,
    )
    if kind == "mbart":
        return transformers.MBartConfig(**common)
    return transformers.M2M100Config(**common)


def map_state_dict(state: dict[str, Any], kind: str) -> dict[str, Any]:
    """fairseq model keys -> HF ``*ForConditionalGeneration`` keys (our own mapping)."""
    out: dict[str, Any] = {}
    emb = state["encoder.embed_tokens.weight"]
    for k, v in state.items():
        if k.endswith(".version") or k.endswith("_float_tensor"):
            continue
        if k == "decoder.output_projection.weight":
            continue  # tied to the shared embedding
        if k.endswith("embed_tokens.weight"):
            continue
        if kind == "m2m100" and "embed_positions" in k:
            continue  # sinusoidal: computed, not stored
        out["model." + k] = v
    out["model.shared.weight"] = emb
    out["model.encoder.embed_tokens.weight"] = emb
    out["model.decoder.embed_tokens.weight"] = emb
    out["lm_head.weight"] = emb
    return out


#: largest |logit difference| between fairseq and the exported model that counts as faithful
VERIFY_TOLERANCE = 1e-4


class ExportMismatchError(MtkitError):
    """The exported folder does not reproduce the fairseq model's logits."""


def export_hf(files: ModelFiles, out: str | os.PathLike, trust: bool = False, force: bool = False,
              loaded: LoadedModel | None = None, verify: bool = True) -> Path:
    """Write an HF folder (config.json, model.safetensors, SPM model, vocab.json, dict.txt).

    With ``verify`` (default) the folder is reloaded with transformers and its logits compared with
    fairseq's on a sample; a difference of :data:`VERIFY_TOLERANCE` or more removes nothing but
    raises :class:`ExportMismatchError` (the folder is left for inspection).
    """
    import torch

    out = Path(out)
    check_out_dir(out, force)
    lm = loaded or build_model(files, trust=trust)
    state = {k: v.detach().float().cpu() for k, v in lm.model.state_dict().items()}
    kind = check_mappable(lm.args, state)
    d = lm.dictionary
    if lm.tgt_dictionary is not d and lm.tgt_dictionary.symbols != d.symbols:
        raise UnmappableModelError("source and target dictionaries differ; HF models share one vocabulary")
    pos = state.get("encoder.embed_positions.weight")
    if kind == "mbart" and (d.pad() != 1 or pos is None or pos.shape[0] != lm.args.max_source_positions + 2):
        raise UnmappableModelError("learned positions with padding_idx != 1 do not match HF's offset of 2")
    import transformers

    cfg = hf_config(lm.args, kind, vocab_size=state["encoder.embed_tokens.weight"].shape[0],
                    pad=d.pad(), bos=d.bos(), eos=d.eos())
    cls = transformers.MBartForConditionalGeneration if kind == "mbart" else transformers.M2M100ForConditionalGeneration
    hf = cls(cfg)
    mapped = map_state_dict(state, kind)
    with torch.no_grad():
        missing, unexpected = hf.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if k != "final_logits_bias"]
    if missing or unexpected:
        raise UnmappableModelError(
            f"key mapping incomplete: missing in fairseq {missing[:8]}, not in HF {unexpected[:8]}")
    if "final_logits_bias" in dict(hf.named_buffers()):
        hf.final_logits_bias.zero_()
    hf.eval()
    with atomic_dir(out, force=force) as target:
        hf.save_pretrained(str(target))
        vocab = {sym: i for i, sym in enumerate(d.symbols)}
        (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        d.save(str(target / "dict.txt"))
        if files.spm is not None:
            shutil.copy2(files.spm, target / "sentencepiece.bpe.model")
        (target / HF_META).write_text(json.dumps(_metadata(lm, files, cls.__name__, vocab), indent=2) + "\n",
                                      encoding="utf-8")
    logger.info("wrote %s to %s", cls.__name__, out)
    if verify:
        src, prev = sample_ids(lm)
        diff = compare_logits(lm, out, src, prev)
        logger.info("verified: max |logit difference| fairseq vs transformers = %.2e", diff)
        if diff >= VERIFY_TOLERANCE:
            raise ExportMismatchError(
                f"the exported folder {out} does not reproduce the fairseq model: logits differ by {diff:.2e} "
                f"(>= {VERIFY_TOLERANCE:g}); please report this with the checkpoint's configuration")
    return out


def _metadata(lm: LoadedModel, files: ModelFiles, architecture: str, vocab: dict[str, int]) -> dict[str, Any]:
    info = lm.info
    langtoks = {lang: vocab.get(info.token(lang)) for lang in info.langs} if info.multilingual else {}
    return {
        "architecture": architecture, "source_checkpoint": str(files.checkpoint),
        "spm": "sentencepiece.bpe.model" if files.spm else None,
        "multilingual": info.multilingual, "langs": info.langs, "lang_tok_style": info.style,
        "encoder_langtok": info.encoder_langtok, "decoder_langtok": info.decoder_langtok,
        "lang_token_ids": langtoks,
        "usage": "input_ids = [src_langtok] + spm pieces + [</s>]; decoder starts with </s> then the "
                 "target language token (forced_bos_token_id)",
    }


def compare_logits(lm: LoadedModel, hf_dir: str | os.PathLike, src: list[int], prev: list[int]) -> float:
    """Max |logit difference| between fairseq and the HF folder on one (src, prev_output) pair."""
    import torch
    import transformers

    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(hf_dir)).eval()
    s = torch.tensor([src])
    p = torch.tensor([prev])
    with torch.no_grad():
        fs = lm.model.float().eval()(s, torch.tensor([len(src)]), p)[0]
        ho = hf(input_ids=s, attention_mask=torch.ones_like(s), decoder_input_ids=p).logits
    return float((fs - ho).abs().max())


def sample_ids(lm: LoadedModel) -> tuple[list[int], list[int]]:
    """A short source/prefix pair in the model's conventions, for :func:`compare_logits`."""
    d = lm.dictionary
    n = len(d)
    body = [i for i in range(d.nspecial, min(n, d.nspecial + 12))]
    info = lm.info
    src = list(body)
    prev = [d.eos()]
    if info.multilingual and info.langs:
        if info.encoder_langtok:
            src = [d.index(info.token(info.langs[0]))] + src
        if info.decoder_langtok:
            prev.append(d.index(info.token(info.langs[-1])))
    src.append(d.eos())
    prev += body[:5]
    return src, prev
