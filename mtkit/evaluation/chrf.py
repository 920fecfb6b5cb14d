"""chrF and chrF++ through sacrebleu (character n-grams up to 6, word n-grams up to 2 for chrF++).

chrF++ is the primary metric of Flores-200 / NLLB (``sacrebleu -m chrf --chrf-word-order 2``).
"""
from __future__ import annotations

from sacrebleu.metrics import CHRF

from mtkit.evaluation.base import MetricResult, metric_result

CHAR_ORDER = 6
WORD_ORDER_PLUS_PLUS = 2


def make_chrf(word_order: int = WORD_ORDER_PLUS_PLUS, char_order: int = CHAR_ORDER,
              lowercase: bool = False) -> CHRF:
    """A sacrebleu chrF (``word_order=0``) or chrF++ (``word_order=2``) object."""
    return CHRF(char_order=char_order, word_order=word_order, lowercase=lowercase)


def corpus_chrf(hyps: list[str], refs: list[str], word_order: int = WORD_ORDER_PLUS_PLUS,
                char_order: int = CHAR_ORDER, lowercase: bool = False) -> MetricResult:
    """Corpus chrF (``word_order=0``) or chrF++ (``word_order=2``) with its signature."""
    name = "chrf++" if word_order == WORD_ORDER_PLUS_PLUS else "chrf" if word_order == 0 else f"chrf{'+' * word_order}"
    return metric_result(name, make_chrf(word_order, char_order, lowercase), hyps, refs)
