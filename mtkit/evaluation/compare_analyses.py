"""Error analyses of ``mtkit compare`` for one direction, after compare-mt (Neubig et al. 2019).

What computes what:

- words: sacrebleu's tokeniser for the language (the one BLEU uses: 13a, zh for Chinese, ja-mecab /
  ko-mecab), so "a word" means the same here as in BLEU;
- sentence scores: sacrebleu's chrF++ of each sentence alone (from the statistics the significance
  tests use); corpus scores of a bucket: the sacrebleu metric on the bucket's lines;
- bucket edges and labels (``<5``, ``[5,10)``, ``>=60``): compare-mt's ``Bucketer``;
- word F-measure by training frequency: compare-mt's ``FreqWordBucketer.calc_statistics`` with our
  word counts from the training folder;
- n-grams one system matches more often than the other: compare-mt's ``ngram_utils.compare_ngrams``
  and ``stat_utils.extract_salient_features`` (``compare_type=match``);
- the sentences where two systems differ most: the largest sentence chrF++ differences.

compare-mt is imported only here and only when an analysis runs: importing it switches matplotlib
to the Agg backend and imports nltk (see docs/compare.md).
"""
from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mtkit.errors import MtkitError
from mtkit.evaluation.bleu import SPM_TOKENIZERS, default_tokenizer, make_bleu
from mtkit.evaluation.compare_inputs import Direction
from mtkit.evaluation.compare_stats import Stats
from mtkit.langs import to_flores

CHRF_CUTOFFS = (10, 20, 30, 40, 50, 60, 70, 80, 90)
LENGTH_CUTOFFS = (5, 10, 20, 30, 40, 60)
FREQ_CUTOFFS = (1, 2, 3, 4, 5, 10, 100, 1000)  # compare-mt's default frequency buckets


def _compare_mt() -> Any:
    try:
        import compare_mt.bucketers
        import compare_mt.ngram_utils
        import compare_mt.stat_utils
    except ImportError as e:
        raise MtkitError(
            f"mtkit compare's analyses need compare-mt ({e}); install them with: pip install 'mtkit[compare]' "
            "(compare-mt==0.2.10 and six, which it imports without declaring)"
        ) from None
    return compare_mt


def buckets(cutoffs: Sequence[float], num_type: str = "int") -> Any:
    """A compare-mt ``Bucketer`` with these cutoffs (``bucket_strs`` labels, ``cutoff_into_bucket``)."""
    b = _compare_mt().bucketers.Bucketer()
    b.set_bucket_cutoffs(list(cutoffs), num_type=num_type)
    return b


@lru_cache(maxsize=32)
def word_tokenizer(lang: str) -> Callable[[str], list[str]]:
    """Words of a sentence as BLEU sees them for ``lang`` (sacrebleu's tokeniser; 13a where BLEU
    would use a SentencePiece model)."""
    tok = default_tokenizer(lang)
    bleu = make_bleu("13a" if tok in SPM_TOKENIZERS else tok)
    return lambda line: bleu.tokenizer(line).split()


def sentence_buckets(scores: Mapping[str, np.ndarray], cutoffs: Sequence[float] = CHRF_CUTOFFS) -> dict[str, Any]:
    """How many sentences of each system fall in each sentence-chrF++ bucket."""
    b = buckets(cutoffs, "float")
    counts = {s: [0] * len(b.bucket_strs) for s in scores}
    for s, values in scores.items():
        for v in values:
            counts[s][b.cutoff_into_bucket(v)] += 1
    return {"buckets": b.bucket_strs, "counts": counts}


def length_buckets(lengths: Sequence[int], stats: Mapping[str, Stats], systems: Sequence[str],
                   cutoffs: Sequence[int] = LENGTH_CUTOFFS) -> dict[str, Any]:
    """Per length bucket: its lines and each metric's corpus score of each system on them."""
    b = buckets(cutoffs)
    members: list[list[int]] = [[] for _ in b.bucket_strs]
    for i, n in enumerate(lengths):
        members[b.cutoff_into_bucket(n)].append(i)
    rows = []
    for label, lines in zip(b.bucket_strs, members):
        row: dict[str, Any] = {"bucket": label, "n_lines": len(lines)}
        if lines:
            row["scores"] = {m: {s: st.score(s, lines) for s in systems} for m, st in stats.items()}
        rows.append(row)
    return {"rows": rows}


def training_word_counts(files: Sequence[os.PathLike], lang: str, max_lines: int) -> Counter:
    """Words (see :func:`word_tokenizer`) in the training files of ``lang``, reading at most
    ``max_lines`` lines over all of them."""
    from mtkit.io import read_lines

    tokenize = word_tokenizer(lang)
    counts: Counter = Counter()
    lines = itertools.islice(itertools.chain.from_iterable(read_lines(f) for f in files), max_lines)
    for line in lines:
        counts.update(tokenize(line))
    return counts


def language_files(train_files: Sequence[tuple[Any, str, str, str]], lang: str) -> list[Any]:
    """The training files (as :func:`mtkit.evaluation.folder.training_files` lists them) in ``lang``."""
    key = to_flores(lang)
    return [p for p, _, _, file_lang in train_files if to_flores(file_lang) == key]


def word_accuracy(ref_words: list[list[str]], out_words: Mapping[str, list[list[str]]],
                  counts: Mapping[str, int], cutoffs: Sequence[int] = FREQ_CUTOFFS,
                  lowercase: bool = False) -> dict[str, Any]:
    """Target word precision, recall and F-measure per training-frequency bucket (compare-mt)."""
    bucketer = _compare_mt().bucketers.FreqWordBucketer(
        freq_counts=dict(counts), bucket_cutoffs=list(cutoffs), case_insensitive=lowercase)
    systems = list(out_words)
    statistics, *_ = bucketer.calc_statistics(ref_words, [out_words[s] for s in systems])
    rows = []
    for i, label in enumerate(bucketer.bucket_strs):
        per = {s: statistics[k][i] for k, s in enumerate(systems)}
        rows.append({
            "bucket": label, "ref_words": int(per[systems[0]][1]),
            "out_words": {s: int(v[2]) for s, v in per.items()},
            "matched": {s: int(v[0]) for s, v in per.items()},
            "recall": {s: float(v[3]) for s, v in per.items()},
            "precision": {s: float(v[4]) for s, v in per.items()},
            "fmeasure": {s: float(v[5]) for s, v in per.items()},
        })
    return {"rows": rows}


def ngram_differences(ref_words: list[list[str]], base_words: list[list[str]], sys_words: list[list[str]],
                      top: int = 10, max_order: int = 4, alpha: float = 1.0) -> dict[str, Any]:
    """The n-grams matched (present in the reference) more often by one system than the other.

    compare-mt's score: ``(matches_base + alpha) / (matches_base + matches_sys + 2 alpha)``; near 1:
    the baseline matches the n-gram where the system does not, near 0 the other way round.
    """
    cm = _compare_mt()
    _, base_match, _, _ = cm.ngram_utils.compare_ngrams(ref_words, base_words, max_length=max_order)
    _, sys_match, _, _ = cm.ngram_utils.compare_ngrams(ref_words, sys_words, max_length=max_order)
    scores = cm.stat_utils.extract_salient_features(base_match, sys_match, alpha=alpha)

    def row(ngram: tuple[str, ...]) -> dict[str, Any]:
        return {"ngram": " ".join(ngram), "score": float(scores[ngram]),
                "baseline_matches": int(base_match[ngram]), "system_matches": int(sys_match[ngram])}

    volume = {k: base_match[k] + sys_match[k] for k in scores}
    by_base = sorted(scores, key=lambda k: (-scores[k], -volume[k], k))
    by_sys = sorted(scores, key=lambda k: (scores[k], -volume[k], k))
    return {"alpha": alpha, "max_order": max_order,
            "baseline_better": [row(k) for k in by_base[:top] if scores[k] > 0.5],
            "system_better": [row(k) for k in by_sys[:top] if scores[k] < 0.5]}


def examples(d: Direction, sentence_scores: Mapping[str, np.ndarray], baseline: str, system: str,
             top: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` sentences where ``system`` beats ``baseline`` most by sentence chrF++ and the
    ``top`` where it loses most, with the source, reference and every system's hypothesis."""
    diff = sentence_scores[system] - sentence_scores[baseline]
    order = np.argsort(-diff, kind="stable")

    def item(i: int) -> dict[str, Any]:
        return {"line": d.line_ids[i] + 1, "difference": float(diff[i]),
                "source": d.sources[i] if d.sources is not None else None, "reference": d.refs[i],
                "hypotheses": {s: d.hyps[s][i] for s in d.hyps},
                "chrf++": {s: float(v[i]) for s, v in sentence_scores.items()}}

    better = [item(i) for i in order[:top] if diff[i] > 0]
    worse = [item(i) for i in order[::-1][:top] if diff[i] < 0]
    return {"system_better": better, "baseline_better": worse}
