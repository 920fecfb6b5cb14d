"""What every metric module returns (sacrebleu keeps its ``Score`` in ``metrics/base.py`` the same way)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sacrebleu.metrics import BLEU
from sacrebleu.metrics.base import Metric


@dataclass
class MetricResult:
    """One corpus-level score with the sacrebleu signature that produced it."""

    name: str
    score: float
    signature: str
    details: dict[str, Any] = field(default_factory=dict)


def metric_result(name: str, scorer: Metric, hyps: list[str], refs: list[str]) -> MetricResult:
    """Corpus score of a sacrebleu metric (one reference) with its signature and, for BLEU, the
    n-gram details."""
    s = scorer.corpus_score(hyps, [refs])
    details: dict[str, Any] = {}
    if isinstance(scorer, BLEU):
        details = {
            "counts": list(s.counts), "totals": list(s.totals),
            "precisions": [float(p) for p in s.precisions], "bp": float(s.bp),
            "sys_len": int(s.sys_len), "ref_len": int(s.ref_len),
        }
    return MetricResult(name, float(s.score), scorer.get_signature().format(), details)
