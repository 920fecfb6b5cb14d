"""``mtkit evaluate``: BLEU / spBLEU / chrF++ / chrF / added toxicity, one direction or a folder.

A thin layer over :mod:`mtkit.evaluation.scoring` (one direction) and
:mod:`mtkit.evaluation.folder` (many directions).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from mtkit.errors import MtkitError

EPILOG = """\
examples:
  mtkit evaluate --hyp out.de --ref test.en_XX-de_DE.de_DE --tgt-lang de_DE --json
  mtkit evaluate --hyp generate-test.txt --ref devtest/zho_Hans.devtest --tgt-lang zho_Hans \\
      --metrics bleu,spbleu,chrf++ --spm-model ~/models/flores200sacrebleuspm --spm-name flores200
  mtkit evaluate --hyp out.fr --ref ref.fr --tgt-lang fr_XX --src src.en --src-lang en_XX \\
      --metrics chrf++,toxicity --toxicity-lists twl/ --toxicity-password PASSWORD
  mtkit evaluate --hyp-dir hyps/ --ref-dir ml50/raw --out report/ --train-dir ml50/raw

Scores are computed by sacrebleu and equal `sacrebleu REF -i HYP` with the same settings; each
carries its signature. Printed and written scores are rounded to --width decimals (sacrebleu's -w).
See docs/evaluate.md for file naming in folder mode and the toxicity lists.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    one = parser.add_argument_group("one direction")
    one.add_argument("--hyp", help="hypotheses: plain text (one a line) or fairseq-generate output")
    one.add_argument("--ref", help="references, line-aligned with the hypotheses")
    one.add_argument("--tgt-lang", help="target language (mBART en_XX or Flores eng_Latn form)")
    one.add_argument("--src", help="source sentences (needed for added toxicity)")
    one.add_argument("--src-lang", help="source language (needed for added toxicity)")
    one.add_argument("--hyp-format", choices=("auto", "plain", "generate"), default="auto",
                     help="how to read --hyp; auto recognises fairseq-generate lines (default: auto)")

    many = parser.add_argument_group("many directions (see docs/evaluate.md for the file names)")
    many.add_argument("--hyp-dir", help="folder of {src}-{tgt}.hyp, generate-{src}-{tgt}.txt or "
                                        "{src}-{tgt}/generate-{split}.txt files")
    many.add_argument("--ref-dir", help="ML50-style ({split}.{src}-{tgt}.{lang}) or Flores-style "
                                        "({split}/{code}.{split}) reference folder")
    many.add_argument("--out", help="folder for scores.json/.csv/.md and the PNG plots")
    many.add_argument("--split", help="reference split (default: test for ML50 names, devtest for Flores)")
    many.add_argument("--resource-classes", metavar="FILE",
                      help="'CODE CLASS' lines giving each language's resource class for averages")
    many.add_argument("--train-dir", help="ML50-style training folder; classes from its line counts")
    many.add_argument("--resource-thresholds", default="high=1000000,medium=100000,low=0",
                      help="class=minimum training lines, for --train-dir (default: %(default)s)")
    many.add_argument("--plot-metric", default="chrf++", help="metric of the plots (default: chrf++)")

    met = parser.add_argument_group("metrics")
    met.add_argument("--metrics", help="comma list of bleu, spbleu, chrf++, chrf, toxicity (default: "
                                       "bleu,chrf++, plus spbleu with --spm-model and toxicity with "
                                       "--toxicity-lists)")
    met.add_argument("--tokenize", help="BLEU tokeniser instead of the one for the target language "
                                        "(13a; zh for Chinese; ja-mecab / ko-mecab); e.g. none, intl, char")
    met.add_argument("--lowercase", action="store_true", help="case-insensitive BLEU and chrF")
    met.add_argument("--spm-model", help="local SentencePiece model for spBLEU (nothing is downloaded)")
    met.add_argument("--spm-name", default="spm",
                     help="what --spm-model is (e.g. flores200); recorded in the signature with its hash")
    met.add_argument("--missing-as-empty", action="store_true",
                     help="score ids missing from fairseq-generate output as empty hypotheses "
                          "(default: stop with an error naming them)")

    tox = parser.add_argument_group("added toxicity (NLLB Toxicity-200 lists)")
    tox.add_argument("--toxicity-lists", help="folder of {flores_code}_twl.txt or _twl.zip lists")
    tox.add_argument("--toxicity-password",
                     help="password of the zipped lists (or set MTKIT_TOXICITY_PASSWORD)")
    tox.add_argument("--toxicity-mode", choices=("space", "character", "spm"), default="space",
                     help="space: whole tokens (default); character: substrings, for scripts without "
                          "spaces; spm: SentencePiece pieces (needs --toxicity-spm-model)")
    tox.add_argument("--toxicity-spm-model", help="SentencePiece model for --toxicity-mode spm")

    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--width", "-w", type=int, default=1,
                     help="decimals of printed and written scores, like sacrebleu -w (default: 1)")


def _score_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "tokenize": args.tokenize, "lowercase": args.lowercase,
        "spm_model": args.spm_model, "spm_name": args.spm_name,
        "toxicity_lists": args.toxicity_lists,
        "toxicity_password": args.toxicity_password or os.environ.get("MTKIT_TOXICITY_PASSWORD"),
        "toxicity_mode": args.toxicity_mode, "toxicity_spm_model": args.toxicity_spm_model,
    }


def run(args: argparse.Namespace) -> int:
    from mtkit.evaluation.report import LABELS, round_scores

    single = [a for a in ("hyp", "ref", "tgt_lang") if getattr(args, a)]
    folder = [a for a in ("hyp_dir", "ref_dir", "out") if getattr(args, a)]
    if single and folder:
        raise MtkitError("give either --hyp/--ref/--tgt-lang (one direction) or "
                         "--hyp-dir/--ref-dir/--out (a folder), not both")
    if folder:
        if len(folder) != 3:
            raise MtkitError("folder mode needs --hyp-dir, --ref-dir and --out")
        return _run_folder(args)
    if len(single) != 3:
        raise MtkitError("give --hyp FILE --ref FILE --tgt-lang CODE (or --hyp-dir/--ref-dir/--out)")
    from mtkit.evaluation.scoring import parse_metrics, score_files

    metrics = parse_metrics(args.metrics, args.spm_model, args.toxicity_lists)
    if bool(args.src) != bool(args.src_lang) and "toxicity" in metrics:
        raise MtkitError("added toxicity needs both --src and --src-lang")

    result = score_files(args.hyp, args.ref, args.tgt_lang, args.src, metrics,
                         hyp_format=args.hyp_format, missing_as_empty=args.missing_as_empty,
                         src_lang=args.src_lang, **_score_kwargs(args))
    if args.json:
        print(json.dumps(round_scores(result, args.width), ensure_ascii=False, indent=1))
        return 0
    w = args.width
    for metric, sig in result["signatures"].items():
        print(f"{LABELS[metric]:<7} {result[metric]:6.{w}f}  {sig}")
    tox = result.get("toxicity")
    if tox is not None:
        print(_toxicity_line(tox, w))
    return 0


def _toxicity_line(tox: dict[str, Any], w: int) -> str:
    if tox["added_lines"] is None:
        return (f"toxicity (no source, so not 'added'): {len(tox['hyp_matched_lines'])} of "
                f"{tox['n_lines']} hypothesis lines match; lines {tox['hyp_matched_lines']}")
    items = ", ".join(f"{k} x{v}" for k, v in tox["added_items"].items()) or "none"
    return (f"added toxicity: {len(tox['added_lines'])} of {tox['n_lines']} lines "
            f"({tox['added_percent']:.{w}f}%); lines {tox['added_lines']}; items: {items}")


def _run_folder(args: argparse.Namespace) -> int:
    from mtkit.evaluation.folder import evaluate_folder, parse_thresholds
    from mtkit.evaluation.report import LABELS, SCORE_METRICS, round_scores

    if args.resource_classes and args.train_dir:
        raise MtkitError("give --resource-classes or --train-dir, not both")
    summary = evaluate_folder(
        args.hyp_dir, args.ref_dir, args.out, args.metrics, split=args.split,
        resource_classes=args.resource_classes, train_dir=args.train_dir,
        thresholds=parse_thresholds(args.resource_thresholds), width=args.width,
        plot_metric=args.plot_metric, missing_as_empty=args.missing_as_empty, **_score_kwargs(args),
    )
    if args.json:
        print(json.dumps(round_scores(summary, args.width), ensure_ascii=False, indent=1))
        return 0
    w = args.width
    for group, agg in summary["aggregates"].items():
        vals = ", ".join(f"{LABELS[m]} {agg[m]:.{w}f}" for m in SCORE_METRICS if m in agg)
        print(f"{group:<16} {agg['n_directions']:>3} directions  {vals}")
    print(f"wrote {', '.join(summary['files'])}", file=sys.stderr)
    return 0
