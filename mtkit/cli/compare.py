"""``mtkit compare``: compare systems with paired significance, error analyses and examples.

A thin layer over :mod:`mtkit.evaluation.compare`; see docs/compare.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from mtkit.errors import MtkitError

EPILOG = """\
examples:
  # ML50 / Flores folders: each system a folder that `mtkit evaluate --hyp-dir` reads
  mtkit compare bilingual=eval/bilingual/hyp multilingual=eval/m2m/hyp \\
      --ref-dir data/raw --split test --train-dir data/raw --out eval/compare
  # one direction's files (plain text or fairseq-generate output)
  mtkit compare beam1=gen.b1.txt beam5=gen.b5.txt --ref test.de --tgt-lang de_DE \\
      --src test.en --src-lang en_XX --out compare/

The first system is the baseline. Per direction: sacrebleu's paired bootstrap (--bootstrap resamples)
and approximate randomization (--ar-trials) with --seed; averages over directions (all, x->en,
en->x, resource classes) use a stratified paired bootstrap with the same statistics and leave out
directions with fewer than --min-lines test lines (they stay in the tables, marked). Writes
OUT/compare.html (one self-contained page), OUT/report.md and OUT/compare.json.
"""


def _cutoffs(text: str) -> list[float]:
    try:
        values = [float(x) if "." in x else int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give increasing numbers separated by commas") from None
    if not values or values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r}: give increasing numbers separated by commas")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("systems", nargs="+", metavar="NAME=PATH",
                        help="two or more systems; the first is the baseline. PATH: a folder of hypothesis "
                             "files ({src}-{tgt}.hyp, generate-{src}-{tgt}.txt, {src}-{tgt}/generate-{split}.txt) "
                             "or, with --ref, one file")
    parser.add_argument("--out", required=True, help="folder for compare.html, report.md and compare.json")

    many = parser.add_argument_group("many directions")
    many.add_argument("--ref-dir", help="ML50-style ({split}.{src}-{tgt}.{lang}) or Flores-style "
                                        "({split}/{code}.{split}) references; sources are read from it too")
    many.add_argument("--src-dir", help="sources from another folder (default: --ref-dir, when present)")
    many.add_argument("--split", help="reference split (default: test for ML50 names, devtest for Flores)")
    many.add_argument("--train-dir", help="ML50-style training folder: resource classes from its line counts "
                                          "and the word-frequency analysis")
    many.add_argument("--resource-classes", metavar="FILE",
                      help="'CODE CLASS' lines (instead of classes from --train-dir line counts)")
    many.add_argument("--resource-thresholds", default="high=1000000,medium=100000,low=0",
                      help="class=minimum training lines for classes from --train-dir (default: %(default)s)")

    one = parser.add_argument_group("one direction")
    one.add_argument("--ref", help="reference file (each system is then one hypothesis file)")
    one.add_argument("--src", help="source file (for the length analysis and the examples)")
    one.add_argument("--src-lang", help="source language (mBART or Flores code)")
    one.add_argument("--tgt-lang", help="target language (mBART or Flores code)")

    met = parser.add_argument_group("scores and tests")
    met.add_argument("--metrics", help="comma list of bleu, spbleu, chrf++, chrf (default: bleu,chrf++, plus "
                                       "spbleu with --spm-model)")
    met.add_argument("--tokenize", help="BLEU tokeniser instead of the one for the target language")
    met.add_argument("--lowercase", action="store_true", help="case-insensitive scores and word analyses")
    met.add_argument("--spm-model", help="local SentencePiece model for spBLEU (nothing is downloaded)")
    met.add_argument("--spm-name", default="spm", help="what --spm-model is (e.g. flores200), for the signature")
    met.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples (default: 1000)")
    met.add_argument("--ar-trials", type=int, default=10000,
                     help="approximate randomization trials; 0 skips the test (default: 10000)")
    met.add_argument("--seed", type=int, default=12345, help="seed of both tests, > 0 (default: 12345)")
    met.add_argument("--alpha", type=float, default=0.05, help="significance level of the marks (default: 0.05)")
    met.add_argument("--min-lines", type=int, default=100,
                     help="directions with fewer test lines are shown, marked, and left out of the averages "
                          "(default: 100)")
    met.add_argument("--missing", choices=("error", "empty", "drop"), default="error",
                     help="sentence ids missing from fairseq-generate output: error (default), empty (score "
                          "them as empty hypotheses) or drop (leave them out for every system); stated in "
                          "the report")

    ana = parser.add_argument_group("analyses")
    ana.add_argument("--examples", type=int, default=10, help="sentences shown each way per direction (default: 10)")
    ana.add_argument("--ngrams", type=int, default=10, help="n-grams shown each way per direction (default: 10)")
    ana.add_argument("--ngram-order", type=int, default=4, help="longest n-gram (default: 4)")
    ana.add_argument("--length-buckets", type=_cutoffs, default=[5, 10, 20, 30, 40, 60],
                     help="source-length bucket edges in words (default: 5,10,20,30,40,60)")
    ana.add_argument("--chrf-buckets", type=_cutoffs, default=[10, 20, 30, 40, 50, 60, 70, 80, 90],
                     help="sentence chrF++ bucket edges (default: 10,20,...,90)")
    ana.add_argument("--freq-buckets", type=_cutoffs, default=[1, 2, 3, 4, 5, 10, 100, 1000],
                     help="training-frequency bucket edges (default: compare-mt's 1,2,3,4,5,10,100,1000)")
    ana.add_argument("--freq-max-lines", type=int, default=1_000_000,
                     help="training lines read per target language for word frequencies (default: 1000000)")
    parser.add_argument("--json", action="store_true", help="print compare.json's content instead of a summary")


def _classes(args: argparse.Namespace) -> tuple[dict[str, str] | None, list[str] | None]:
    from mtkit.evaluation.folder import (
        classes_from_counts,
        count_training_lines,
        parse_thresholds,
        read_resource_classes,
    )

    if args.resource_classes:
        classes = read_resource_classes(args.resource_classes)
        return classes, list(dict.fromkeys(classes.values()))
    if args.train_dir:
        thresholds = parse_thresholds(args.resource_thresholds)
        classes = classes_from_counts(count_training_lines(args.train_dir), thresholds)
        return classes, [name for name, _ in sorted(thresholds, key=lambda t: -t[1])]
    return None, None


def _load(args: argparse.Namespace, systems: list[Any]) -> tuple[list[Any], dict[str, list[str]]]:
    from mtkit.evaluation.compare_inputs import load_files, load_folders

    if bool(args.ref_dir) == bool(args.ref):
        raise MtkitError("give --ref-dir (systems are folders) or --ref with --src-lang/--tgt-lang "
                         "(systems are files of one direction)")
    if args.ref:
        if not (args.src_lang and args.tgt_lang):
            raise MtkitError("--ref needs --src-lang and --tgt-lang (the direction of the files)")
        return [load_files(systems, args.ref, args.tgt_lang, args.src_lang, args.src, args.missing)], {}
    return load_folders(systems, args.ref_dir, split=args.split, src_dir=args.src_dir, missing=args.missing)


def run(args: argparse.Namespace) -> int:
    from mtkit.evaluation.compare import CompareSettings, compare_systems, write_report
    from mtkit.evaluation.compare_inputs import parse_systems

    if not args.verbose:
        logging.getLogger("sacrebleu").setLevel(logging.WARNING)  # its tests log every step at INFO
    systems = parse_systems(args.systems)
    settings = CompareSettings(
        metrics=args.metrics, n_bootstrap=args.bootstrap, n_trials=args.ar_trials, seed=args.seed,
        min_lines=args.min_lines, alpha=args.alpha, tokenize=args.tokenize, lowercase=args.lowercase,
        spm_model=args.spm_model, spm_name=args.spm_name, examples=args.examples, ngrams=args.ngrams,
        ngram_order=args.ngram_order, chrf_cutoffs=args.chrf_buckets, length_cutoffs=args.length_buckets,
        freq_cutoffs=args.freq_buckets, freq_max_lines=args.freq_max_lines, missing=args.missing,
        extra={"ref_dir": args.ref_dir, "ref": args.ref, "src_dir": args.src_dir, "split": args.split,
               "train_dir": args.train_dir, "resource_classes_file": args.resource_classes,
               "resource_thresholds": args.resource_thresholds if args.train_dir else None},
    )
    classes, class_order = _classes(args)
    directions, left_out = _load(args, systems)
    result = compare_systems(directions, [s.name for s in systems], settings=settings, classes=classes,
                             class_order=class_order, train_dir=args.train_dir, left_out=left_out,
                             system_paths={s.name: str(s.path) for s in systems})
    files = write_report(result, args.out)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(summary(result))
    print(f"wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0


def summary(result: dict[str, Any]) -> str:
    """The averages (or, without any, each direction) as printed lines."""
    from mtkit.evaluation.compare_tables import LABELS

    base, s = result["baseline"], result["settings"]
    rows = result["groups"] or result["directions"]
    lines = [f"paired bootstrap: {s['n_bootstrap']} resamples; approximate randomization: {s['n_trials']} "
             f"trials; seed {s['seed']}",
             f"{'group' if result['groups'] else 'direction':<18} metric   system: \u0394 to {base} "
             "[95% interval] p(bs) p(ar)"]
    for name, g in rows.items():
        for m, per in g["differences"].items():
            for s, d in per.items():
                p_ar = "-" if d["p_ar"] is None else f"{d['p_ar']:.4f}"
                lines.append(f"{name:<18} {LABELS[m]:<8} {s}: {d['delta']:+.2f} [{d['low']:+.2f}, "
                             f"{d['high']:+.2f}] {d['p_bs']:.4f} {p_ar}")
    return "\n".join(lines)
