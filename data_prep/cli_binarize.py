"""CLI for `mtkit data binarize` (see data_prep.binarize.binarize)."""
from __future__ import annotations

import argparse

from data_prep.cli import print_summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", required=True, help="folder of {split}.{src}-{tgt}.{lang} text files")
    p.add_argument("--out", required=True, help="output folder (spm.model, spm/, databin/, manifest.json)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--spm-model", help="apply this SentencePiece model (e.g. mBART's sentence.bpe.model)")
    g.add_argument("--spm-vocab-size", type=int, help="train a SentencePiece model of this size on train")
    p.add_argument("--dict", dest="fairseq_dict", default=None,
                   help="use this fairseq dictionary (e.g. dict_250k.txt) instead of one made from the SPM model")
    p.add_argument("--langs-file", default=None,
                   help="language list to write as databin/langs.txt (default: ML50 order of the corpus languages)")
    p.add_argument("--max-pieces", type=int, default=None, help="drop training pairs with a side of more pieces")
    p.add_argument("--character-coverage", type=float, default=0.9995, help="SentencePiece character_coverage")
    p.add_argument("--spm-input-sentences", type=int, default=2_000_000,
                   help="sentences sampled (temperature-balanced per language) to train SentencePiece")
    p.add_argument("--spm-temperature", type=float, default=5.0,
                   help="sampling temperature for SPM training text: p ∝ n^(1/T)")
    p.add_argument("--mono", action="store_true",
                   help="also write databin_mono/ for fairseq's multilingual_denoising task")
    p.add_argument("--workers", type=int, default=1, help="parallel files / directions")


def run(args: argparse.Namespace) -> int:
    from data_prep.binarize import binarize

    m = binarize(args.raw, args.out, spm_model=args.spm_model, spm_vocab_size=args.spm_vocab_size,
                 langs_file=args.langs_file, max_pieces=args.max_pieces, workers=args.workers, mono=args.mono,
                 character_coverage=args.character_coverage, spm_input_sentences=args.spm_input_sentences,
                 spm_temperature=args.spm_temperature, fairseq_dict=args.fairseq_dict)
    print_summary({"databin": f"{args.out}/databin", "langs": m["langs"]})
    return 0
