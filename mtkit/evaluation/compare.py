"""``mtkit compare``: is system B really better than A, where, and on which sentences?

:func:`compare_systems` takes the directions read by :mod:`mtkit.evaluation.compare_inputs`, scores
every system with sacrebleu, tests each difference to the baseline (the first system) with
sacrebleu's paired bootstrap and approximate randomization (:mod:`~mtkit.evaluation.compare_stats`),
averages over groups of directions (all, x->en / en->x, resource classes) with the same statistics,
and runs the error analyses of :mod:`~mtkit.evaluation.compare_analyses`. It returns one JSON-ready
dict; :func:`write_report` renders it as ``compare.html``, ``report.md`` and ``compare.json``.

Directions whose test set has fewer than ``min_lines`` lines stay in every table, marked, and are
left out of the averages (a handful of sentences would move a mean by points).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mtkit.errors import MtkitError
from mtkit.evaluation import compare_analyses as analyses
from mtkit.evaluation.compare_inputs import Direction
from mtkit.evaluation.compare_stats import (
    DEFAULT_AR_TRIALS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    Stats,
    check_seed,
    compare_group,
    paired_tests,
)
from mtkit.evaluation.report import KINDS, class_of, direction_kind
from mtkit.evaluation.scoring import load_spm, make_metric, parse_metrics

log = logging.getLogger(__name__)

SCORE_METRICS = ("bleu", "spbleu", "chrf++", "chrf")
SENTENCE_METRIC = "chrf++"
DEFAULT_MIN_LINES = 100


@dataclass
class CompareSettings:
    """Everything that changes a number in the report (all of it is written into the report)."""

    metrics: str | Sequence[str] | None = None  # None: bleu, chrf++ (+ spbleu with spm_model)
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    n_trials: int = DEFAULT_AR_TRIALS
    seed: int = DEFAULT_SEED
    min_lines: int = DEFAULT_MIN_LINES
    alpha: float = 0.05  # significance level of the marks in the tables
    tokenize: str | None = None
    lowercase: bool = False
    spm_model: str | None = None
    spm_name: str = "spm"
    examples: int = 10
    ngrams: int = 10
    ngram_order: int = 4
    chrf_cutoffs: Sequence[float] = analyses.CHRF_CUTOFFS
    length_cutoffs: Sequence[int] = analyses.LENGTH_CUTOFFS
    freq_cutoffs: Sequence[int] = analyses.FREQ_CUTOFFS
    freq_max_lines: int = 1_000_000
    missing: str = "error"
    extra: dict[str, Any] = field(default_factory=dict)  # inputs to record (folders, split, classes)

    def __post_init__(self) -> None:
        self.metrics = parse_metrics(self.metrics, self.spm_model)
        bad = [m for m in self.metrics if m not in SCORE_METRICS]
        if bad:
            raise MtkitError(f"compare scores {', '.join(SCORE_METRICS)}; not {', '.join(bad)}")
        check_seed(self.seed)
        if self.n_bootstrap < 40:
            raise MtkitError(f"--bootstrap {self.n_bootstrap}: use at least 40 resamples for a 95 % interval "
                             "(sacrebleu's default is 1000)")


@dataclass
class _Scored:
    """One direction while it is being compared: its record and the statistics the groups reuse."""

    record: dict[str, Any]
    stats: dict[str, Stats]


def _direction_stats(d: Direction, systems: Sequence[str], s: CompareSettings, spm: Any,
                     ) -> tuple[dict[str, Any], dict[str, Stats]]:
    scorers = {m: make_metric(m, d.tgt_lang, tokenize=s.tokenize, spm=spm, lowercase=s.lowercase)
               for m in s.metrics}
    hyps = {name: d.hyps[name] for name in systems}
    scores, p_bs, p_ar, signatures = paired_tests(hyps, d.refs, scorers, s.n_bootstrap, s.n_trials, s.seed)
    stats = {m: Stats.extract(scorer, hyps, d.refs) for m, scorer in scorers.items()}
    differences: dict[str, dict[str, Any]] = {}
    for m, st in stats.items():
        g = compare_group([st], systems[0], systems, s.n_bootstrap, 0, s.seed)
        differences[m] = {name: {**asdict(diff), "p_bs": p_bs[m][name], "p_ar": p_ar.get(m, {}).get(name)}
                          for name, diff in g.differences.items()}
    record = {
        "scores": {m: {name: _floats(asdict(v)) for name, v in per.items()} for m, per in scores.items()},
        "differences": differences,
        "signatures": signatures,
    }
    return record, stats


def _floats(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in obj.items()}


class _WordCounts:
    """Training word counts per target language, read once."""

    def __init__(self, train_dir: str | os.PathLike | None, max_lines: int):
        from mtkit.evaluation.folder import training_files

        self.files = training_files(train_dir) if train_dir is not None else None
        self.max_lines = max_lines
        self.cache: dict[str, Any] = {}

    def get(self, lang: str) -> tuple[Any, str | None]:
        """(counts, None) or (None, why there are none)."""
        if self.files is None:
            return None, "no training folder given (--train-dir)"
        if lang not in self.cache:
            files = analyses.language_files(self.files, lang)
            self.cache[lang] = analyses.training_word_counts(files, lang, self.max_lines) if files else None
        if not self.cache[lang]:
            return None, f"no {lang} training text in the training folder"
        return self.cache[lang], None


def _analyses(d: Direction, systems: Sequence[str], stats: dict[str, Stats], s: CompareSettings,
              words: _WordCounts) -> dict[str, Any]:
    if SENTENCE_METRIC in stats:
        sent_stats = stats[SENTENCE_METRIC]
    else:
        scorer = make_metric(SENTENCE_METRIC, d.tgt_lang, lowercase=s.lowercase)
        sent_stats = Stats.extract(scorer, {n: d.hyps[n] for n in systems}, d.refs)
    sentence = {n: sent_stats.sentence_scores(n) for n in systems}
    length_side = "source" if d.sources is not None else "reference"
    length_lang = d.src_lang if d.sources is not None else d.tgt_lang
    tokenize_len = analyses.word_tokenizer(length_lang)
    lengths = [len(tokenize_len(x)) for x in (d.sources if d.sources is not None else d.refs)]
    out: dict[str, Any] = {
        "sentence_chrf": analyses.sentence_buckets(sentence, s.chrf_cutoffs),
        "length": {"side": length_side, **analyses.length_buckets(lengths, stats, systems, s.length_cutoffs)},
    }
    tokenize = analyses.word_tokenizer(d.tgt_lang)
    ref_words = [tokenize(x) for x in d.refs]
    out_words = {n: [tokenize(x) for x in d.hyps[n]] for n in systems}
    counts, why = words.get(d.tgt_lang)
    out["word_accuracy"] = (analyses.word_accuracy(ref_words, out_words, counts, s.freq_cutoffs, s.lowercase)
                            if counts else {"skipped": why})
    base = systems[0]
    out["ngrams"] = {n: analyses.ngram_differences(ref_words, out_words[base], out_words[n], s.ngrams,
                                                   s.ngram_order) for n in systems[1:]}
    out["examples"] = {n: analyses.examples(d, sentence, base, n, s.examples) for n in systems[1:]}
    return out


def _group_names(records: Mapping[str, dict[str, Any]], class_order: Sequence[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {"all": []}
    groups.update({k: [] for k in KINDS})
    for cls in class_order:
        groups.update({cls: [], f"{cls} x->en": [], f"{cls} en->x": []})
    for name, r in records.items():
        if not r["in_averages"]:
            continue
        keys = ["all", r["kind"]]
        if r["class"] is not None:
            keys += [r["class"], f"{r['class']} {r['kind']}"]
        for k in keys:
            groups.setdefault(k, []).append(name)
    return {k: v for k, v in groups.items() if v}


def compare_systems(directions: Sequence[Direction], systems: Sequence[str], *,
                    settings: CompareSettings | None = None, classes: Mapping[str, str] | None = None,
                    class_order: Sequence[str] | None = None, train_dir: str | os.PathLike | None = None,
                    left_out: Mapping[str, list[str]] | None = None,
                    system_paths: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Compare ``systems`` (the first is the baseline) on ``directions``; see the module docstring.

    ``classes``: Flores code -> resource class (of a direction's non-English language);
    ``train_dir``: ML50-style training folder for the word-frequency analysis; ``left_out``:
    directions not compared because some system lacks them (recorded in the report).
    """
    s = settings or CompareSettings()
    systems = list(systems)
    spm = load_spm(s.spm_model, s.tokenize, s.spm_name)
    words = _WordCounts(train_dir, s.freq_max_lines)
    scored: dict[str, _Scored] = {}
    for d in tqdm(directions, desc="compare", unit="direction", disable=None):
        record, stats = _direction_stats(d, systems, s, spm)
        kind = direction_kind(d.src_lang, d.tgt_lang)
        record = {
            "src_lang": d.src_lang, "tgt_lang": d.tgt_lang, "kind": kind,
            "class": class_of(d.src_lang, d.tgt_lang, classes), "n_lines": d.n_lines,
            "in_averages": d.n_lines >= s.min_lines, "files": d.files, "notes": d.notes, **record,
        }
        record["analyses"] = _analyses(d, systems, stats, s, words)
        scored[d.name] = _Scored(record, stats)
        log.info("%s: %s", d.name, _summary(record, systems))
    records = {name: sc.record for name, sc in scored.items()}
    order = list(class_order) if class_order else sorted(set((classes or {}).values()))
    groups = {}
    for group, names in tqdm(_group_names(records, order).items(), desc="averages", unit="group", disable=None):
        groups[group] = {"directions": names, "scores": {}, "differences": {}}
        for m in s.metrics:
            g = compare_group([scored[n].stats[m] for n in names], systems[0], systems,
                              s.n_bootstrap, s.n_trials, s.seed)
            groups[group]["scores"][m] = {n: _floats(asdict(v)) for n, v in g.scores.items()}
            groups[group]["differences"][m] = {n: _floats(asdict(v)) for n, v in g.differences.items()}
    return {
        "baseline": systems[0],
        "systems": [{"name": n, "path": (system_paths or {}).get(n)} for n in systems],
        "settings": _settings_record(s),
        "versions": _versions(),
        "directions": records,
        "groups": groups,
        "left_out": dict(left_out or {}),
        "below_min_lines": [n for n, r in records.items() if not r["in_averages"]],
        "resource_classes": dict(classes) if classes else None,
    }


def _summary(record: dict[str, Any], systems: Sequence[str]) -> str:
    parts = []
    for m, per in record["differences"].items():
        for name, diff in per.items():
            parts.append(f"{m} {name}-{systems[0]} {diff['delta']:+.2f} (p={diff['p_bs']:.3f})")
    return ", ".join(parts)


def _settings_record(s: CompareSettings) -> dict[str, Any]:
    out = asdict(s)
    extra = out.pop("extra")
    out["metrics"] = list(s.metrics)
    for k in ("chrf_cutoffs", "length_cutoffs", "freq_cutoffs"):
        out[k] = list(out[k])
    out["sentence_metric"] = SENTENCE_METRIC
    out["bootstrap_method"] = (
        "per direction: sacrebleu PairedTest (paired bootstrap, approximate randomization); averages: "
        "stratified paired bootstrap (each direction's sentences resampled on their own, the same "
        "indices for every system) and stratified approximate randomization, with sacrebleu's formulas")
    return {**out, **extra}


def _versions() -> dict[str, str]:
    from mtkit.io import versions

    return versions(("mtkit", "sacrebleu", "compare-mt", "numpy"))


def write_report(result: Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``compare.html``, ``report.md`` and ``compare.json`` into ``out_dir`` (atomically: a new
    folder appears complete; in an existing folder each file is replaced whole)."""
    from mtkit.evaluation.compare_html import render_html
    from mtkit.evaluation.compare_markdown import render_markdown
    from mtkit.io import atomic_dir, write_json, write_text

    files = {"compare.html": render_html(result), "report.md": render_markdown(result)}
    out = Path(out_dir)

    def put(folder: Path) -> None:
        for name, text in files.items():
            write_text(folder / name, text)
        write_json(folder / "compare.json", result)

    if out.exists() and not out.is_dir():
        raise MtkitError(f"--out {out} is a file; give a folder")
    if out.exists():
        put(out)
    else:
        with atomic_dir(out) as tmp:
            put(tmp)
    return [out / n for n in (*files, "compare.json")]
