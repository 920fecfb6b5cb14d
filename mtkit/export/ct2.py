"""Export a fairseq checkpoint to CTranslate2 with CTranslate2's own fairseq converter.

``ctranslate2.converters.FairseqConverter._load`` calls ``torch.load(weights_only=False)`` when asked
for ``unsafe_deserialization`` (which every fairseq checkpoint needs on torch >= 2.6) and rebuilds the
task from ``data_dir``. We keep the converter's spec-filling code (``_get_model_spec``,
``set_transformer_encoder/decoder``, ``_get_vocab``) and replace only the loading step: the checkpoint
is read with :func:`mtkit.checkpoint.load` and the model is built by :func:`mtkit.model_folder.build_model`,
the same code ``mtkit translate`` uses, so language-token ids are exactly those of training.

Next to CTranslate2's files the export writes :data:`CT2_META` (language-token conventions, limits,
the SentencePiece model's name), which ``mtkit translate --engine ct2`` reads.
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

logger = logging.getLogger(__name__)

#: metadata file of an export, read by ``mtkit translate --engine ct2``
CT2_META = "mtkit_ct2.json"

QUANTIZATIONS = ("int8", "float16", "float32", "int8_float32", "int8_float16", "bfloat16")


def _converter_class() -> type:
    from ctranslate2.converters import fairseq as ct2fs

    class SafeFairseqConverter(ct2fs.FairseqConverter):
        """FairseqConverter fed with a model built from a safely loaded checkpoint."""

        def __init__(self, loaded: LoadedModel):
            super().__init__(str(loaded.files.checkpoint), str(loaded.files.dictionary.parent))
            self._loaded = loaded

        def _load(self) -> Any:
            import torch

            lm = self._loaded
            args = lm.args
            try:
                spec = ct2fs._get_model_spec(args)
            except ValueError as e:
                raise MtkitError(f"CTranslate2 cannot represent this model: {e}") from None
            if not isinstance(spec, ct2fs.transformer_spec.TransformerSpec):
                raise MtkitError(f"architecture {args.arch} is not an encoder-decoder model; "
                                 "mtkit export ct2 handles translation models only")
            with torch.no_grad():
                model = lm.model.float().cpu().eval()
                ct2fs.set_transformer_encoder(spec.encoder, model.encoder)
                ct2fs.set_transformer_decoder(spec.decoder, model.decoder)
            spec.register_source_vocabulary(ct2fs._get_vocab(lm.dictionary))
            spec.register_target_vocabulary(ct2fs._get_vocab(lm.tgt_dictionary))
            spec.config.decoder_start_token = spec.config.eos_token
            spec.config.add_source_eos = True
            return spec

    return SafeFairseqConverter


def export_ct2(files: ModelFiles, out: str | os.PathLike, quantization: str = "float32",
               trust: bool = False, force: bool = False, loaded: LoadedModel | None = None) -> Path:
    """Convert ``files`` to a CTranslate2 folder ``out`` (written atomically) and return it.

    ``out`` also gets the SentencePiece model and :data:`CT2_META` (language-token conventions
    and limits), so ``mtkit translate --engine ct2 -m OUT`` needs nothing else.
    """
    if quantization not in QUANTIZATIONS:
        raise MtkitError(f"unknown quantization {quantization!r}; use one of {', '.join(QUANTIZATIONS)}")
    from mtkit.moe_checkpoint import is_moe_state

    out = Path(out)
    check_out_dir(out, force)
    lm = loaded or build_model(files, trust=trust)
    if is_moe_state(lm.model.state_dict()):
        raise MtkitError("mixture-of-experts checkpoints cannot be exported to CTranslate2 (it has no MoE "
                         "layers); translate them with the fairseq engine, which loads all experts")
    if getattr(lm.args, "lang_tok_replacing_bos_eos", False):
        raise MtkitError("--lang-tok-replacing-bos-eos models cannot be exported to CTranslate2")
    conv = _converter_class()(lm)
    with atomic_dir(out, force=force) as target:
        conv.convert(str(target), quantization=quantization, force=True)
        if files.spm is not None:
            shutil.copy2(files.spm, target / "spm.model")
        if files.langs is not None:
            shutil.copy2(files.langs, target / "langs.txt")
        (target / CT2_META).write_text(json.dumps(_metadata(lm, files, quantization), indent=2) + "\n",
                                       encoding="utf-8")
    logger.info("wrote CTranslate2 model (%s) to %s", quantization, out)
    return out


def _metadata(lm: LoadedModel, files: ModelFiles, quantization: str) -> dict[str, Any]:
    info = lm.info
    return {
        "lang_info": {
            "multilingual": info.multilingual, "langs": info.langs, "lang_pairs": info.lang_pairs,
            "style": info.style, "encoder_langtok": info.encoder_langtok,
            "decoder_langtok": info.decoder_langtok, "source_lang": info.source_lang,
            "target_lang": info.target_lang,
        },
        "max_source_positions": lm.max_source_positions,
        "max_target_positions": lm.max_target_positions,
        "quantization": quantization,
        "spm": "spm.model" if files.spm is not None else None,
        "source_checkpoint": str(files.checkpoint),
    }
