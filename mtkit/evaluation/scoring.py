"""Score one direction with any of BLEU, spBLEU, chrF++, chrF and added toxicity.

This is the library behind ``mtkit evaluate --hyp/--ref``; the folder mode calls it per direction.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from sacrebleu.metrics.base import Metric

from mtkit.errors import InputError, MtkitError
from mtkit.evaluation.base import metric_result
from mtkit.evaluation.bleu import (
    SPM_TOKENIZERS,
    SpmTokenizer,
    default_tokenizer,
    load_spm_tokenizer,
    make_bleu,
)
from mtkit.evaluation.chrf import WORD_ORDER_PLUS_PLUS, make_chrf
from mtkit.evaluation.inputs import check_same_length, read_lines
from mtkit.evaluation.toxicity import Matcher, ToxicityLists, added_toxicity
from mtkit.langs import validate

log = logging.getLogger(__name__)

METRICS = ("bleu", "spbleu", "chrf++", "chrf", "toxicity")
DEFAULT_METRICS = ("bleu", "chrf++")
_ALIASES = {"chrfpp": "chrf++", "chrf2": "chrf++", "sp-bleu": "spbleu", "spBLEU": "spbleu"}


def default_metrics(spm_model: str | os.PathLike | None = None,
                    toxicity_lists: object | None = None) -> list[str]:
    """BLEU and chrF++, plus spBLEU when a SentencePiece model is given and added toxicity when
    word lists are given (the same default for the API and ``mtkit evaluate``)."""
    names = list(DEFAULT_METRICS)
    if spm_model is not None:
        names.insert(1, "spbleu")
    if toxicity_lists is not None:
        names.append("toxicity")
    return names


def parse_metrics(metrics: str | Sequence[str] | None, spm_model: str | os.PathLike | None = None,
                  toxicity_lists: object | None = None) -> list[str]:
    """``"bleu,chrf++"`` or a list -> validated metric names, in the given order, no repeats;
    None -> :func:`default_metrics` for the given model and lists."""
    if metrics is None:
        return default_metrics(spm_model, toxicity_lists)
    names = metrics.replace(",", " ").split() if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for name in names:
        key = _ALIASES.get(name, name.lower())
        if key not in METRICS:
            raise MtkitError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        if key not in out:
            out.append(key)
    if not out:
        raise MtkitError(f"no metric given; choose from {', '.join(METRICS)}")
    return out


def make_metric(metric: str, tgt_lang: str, *, tokenize: str | None = None,
                spm: SpmTokenizer | None = None, lowercase: bool = False) -> Metric:
    """The sacrebleu object that computes ``metric`` (bleu, spbleu, chrf++ or chrf) for a target
    language: BLEU's tokeniser comes from ``tgt_lang`` unless ``tokenize`` is given; spBLEU (and BLEU
    with an spm ``tokenize``) tokenises with the local SentencePiece model ``spm``."""
    if metric == "bleu":
        tok = tokenize or default_tokenizer(tgt_lang)
        return make_bleu(tok, spm if tok in SPM_TOKENIZERS else None, lowercase)
    if metric == "spbleu":
        if spm is None:
            raise MtkitError(
                "metric 'spbleu' needs a local SentencePiece model: pass --spm-model PATH (e.g. the "
                "Flores-200 model 'flores200sacrebleuspm') and --spm-name flores200; nothing is downloaded"
            )
        return make_bleu(spm=spm, lowercase=lowercase)
    if metric in ("chrf++", "chrf"):
        return make_chrf(word_order=WORD_ORDER_PLUS_PLUS if metric == "chrf++" else 0, lowercase=lowercase)
    raise MtkitError(f"metric {metric!r} is not a corpus score; choose from bleu, spbleu, chrf++, chrf")


def load_spm(spm_model: str | os.PathLike | None, tokenize: str | None = None,
             spm_name: str = "spm") -> SpmTokenizer | None:
    """The local SentencePiece tokeniser for spBLEU (``None`` without a model)."""
    if spm_model is None:
        return None
    label = tokenize if tokenize in SPM_TOKENIZERS and spm_name == "spm" else spm_name
    return load_spm_tokenizer(str(spm_model), label)


def _toxicity_lists(lists: str | os.PathLike | ToxicityLists | None,
                    password: str | None) -> ToxicityLists:
    if lists is None:
        raise MtkitError(
            "metric 'toxicity' needs word lists: pass --toxicity-lists DIR (a folder of "
            "{flores_code}_twl.txt or the Toxicity-200 {flores_code}_twl.zip files)"
        )
    return lists if isinstance(lists, ToxicityLists) else ToxicityLists(lists, password)


def score_direction(
    hyps: Sequence[str],
    refs: Sequence[str],
    tgt_lang: str,
    src: Sequence[str] | None = None,
    metrics: str | Sequence[str] | None = None,
    spm_model: str | os.PathLike | None = None,
    *,
    src_lang: str | None = None,
    tokenize: str | None = None,
    spm_name: str = "spm",
    lowercase: bool = False,
    toxicity_lists: str | os.PathLike | ToxicityLists | None = None,
    toxicity_password: str | None = None,
    toxicity_mode: str = "space",
    toxicity_spm_model: str | os.PathLike | None = None,
    names: tuple[str, str, str] = ("hypotheses", "references", "source"),
) -> dict[str, Any]:
    """Score one direction; returns a JSON-ready dict.

    Keys: ``src_lang``, ``tgt_lang``, ``n_lines``, one float per metric (``bleu``, ``spbleu``,
    ``chrf++``, ``chrf``: the exact ``score`` sacrebleu computes, 0-100), ``signatures``
    (metric -> sacrebleu signature), ``tokenize`` (the BLEU tokeniser), ``details`` (BLEU n-gram
    statistics) and, with the toxicity metric, ``toxicity`` (see :func:`added_toxicity`).

    ``tokenize`` overrides the BLEU tokeniser chosen from ``tgt_lang`` (13a; zh for Chinese;
    ja-mecab / ko-mecab for Japanese / Korean). ``spm_model`` is a local SentencePiece model for
    spBLEU (``spm_name`` says which, e.g. ``flores200``, and goes into the signature with the file's
    hash); ``tokenize="flores200"`` (or flores101/spm) with ``spm_model`` makes BLEU itself spBLEU.
    """
    wanted = parse_metrics(metrics, spm_model, toxicity_lists)
    tgt_lang = validate(tgt_lang)
    if src_lang is not None:
        src_lang = validate(src_lang)
    hyp_name, ref_name, src_name = names
    check_same_length(hyp_name, len(hyps), ref_name, len(refs))
    if src is not None:
        check_same_length(hyp_name, len(hyps), src_name, len(src), what="source")
    hyps, refs = list(hyps), list(refs)

    result: dict[str, Any] = {"src_lang": src_lang, "tgt_lang": tgt_lang, "n_lines": len(hyps)}
    signatures: dict[str, str] = {}
    details: dict[str, Any] = {}
    spm = load_spm(spm_model, tokenize, spm_name)

    for metric in wanted:
        if metric == "toxicity":
            result["toxicity"] = _score_toxicity(
                hyps, tgt_lang, src, src_lang, _toxicity_lists(toxicity_lists, toxicity_password),
                toxicity_mode, toxicity_spm_model,
            )
            continue
        scorer = make_metric(metric, tgt_lang, tokenize=tokenize, spm=spm, lowercase=lowercase)
        r = metric_result(metric, scorer, hyps, refs)
        if metric == "bleu":
            result["tokenize"] = r.signature.split("tok:", 1)[1].split("|", 1)[0]
        result[metric] = r.score
        signatures[metric] = r.signature
        if r.details:
            details[metric] = r.details
    result["signatures"] = signatures
    result["details"] = details
    return result


def _score_toxicity(hyps: list[str], tgt_lang: str, src: Sequence[str] | None, src_lang: str | None,
                    lists: ToxicityLists, mode: str, spm_model: str | os.PathLike | None) -> dict[str, Any]:
    tgt_matcher = Matcher(lists.items(tgt_lang), mode, spm_model)
    src_matcher = None
    if src is not None:
        if src_lang is None:
            raise MtkitError("added toxicity needs the source language: pass --src-lang")
        src_matcher = Matcher(lists.items(src_lang), mode, spm_model)
    else:
        log.warning("no source given: reporting toxicity in the hypotheses only, not *added* toxicity")
    report = added_toxicity(hyps, tgt_matcher, src, src_matcher)
    report["list"] = str(lists.path_for(tgt_lang))
    return report


def score_files(
    hyp: str | os.PathLike,
    ref: str | os.PathLike,
    tgt_lang: str,
    src: str | os.PathLike | None = None,
    metrics: str | Sequence[str] | None = None,
    *,
    hyp_format: str = "auto",
    missing_as_empty: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`score_direction` on files. ``hyp_format``: ``plain``, ``generate`` or ``auto``
    (fairseq-generate output if its lines look like ``H-0<TAB>score<TAB>text``)."""
    from mtkit.evaluation.generate_output import is_generate_output, parse_generate_output

    refs = read_lines(ref)
    if hyp_format not in ("auto", "plain", "generate"):
        raise MtkitError(f"hyp_format must be auto, plain or generate, not {hyp_format!r}")
    if hyp_format == "auto":
        try:
            hyp_format = "generate" if is_generate_output(hyp) else "plain"
        except FileNotFoundError:
            raise InputError(f"{hyp}: no such file") from None
    if hyp_format == "generate":
        hyps = parse_generate_output(hyp, expected_lines=len(refs),
                                     missing="empty" if missing_as_empty else "error")
    else:
        hyps = read_lines(hyp)
    srcs = read_lines(src) if src is not None else None
    result = score_direction(hyps, refs, tgt_lang, srcs, metrics,
                             names=(str(hyp), str(ref), str(src)), **kwargs)
    result["files"] = {"hyp": str(hyp), "ref": str(ref), "src": str(src) if src else None,
                       "hyp_format": hyp_format}
    return result
