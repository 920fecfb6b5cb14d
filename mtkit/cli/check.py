"""``mtkit check vocab|databin|mono|checkpoint``: pre-flight checks that the recipes run before fairseq.

Exit status 0 with an "ok: ..." line on stderr when consistent; 2 with the reason otherwise.
"""
from __future__ import annotations

import argparse
import sys

from mtkit.cli.common import add_trust_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check inputs before fairseq does, and say exactly what is wrong. vocab: a checkpoint's embedding rows "
        "equal 4 specials + dict.txt + one token per language (+ <mask>) (fairseq issue #3474); databin: a "
        "parallel databin has every pair and one shared dictionary; mono: a denoising databin has every "
        "language; checkpoint: the checkpoint's pickle references only types the safe loader allows.")
    sub = parser.add_subparsers(dest="what", metavar="CHECK", required=True)
    v = sub.add_parser("vocab", help="checkpoint rows vs dict + language tokens (+ <mask>)")
    v.add_argument("--checkpoint", required=True)
    v.add_argument("--dict", required=True)
    v.add_argument("--langs", required=True, help="language list file (or codes), in the model's order")
    v.add_argument("--expect-mask", choices=("yes", "no", "auto"), default="auto",
                   help="yes: mBART-style tokens (a <mask> row); no: __xx__ tokens without <mask>")
    add_trust_argument(v)
    b = sub.add_parser("databin", help="parallel databin: files per pair, one shared dictionary")
    b.add_argument("--databin", required=True)
    b.add_argument("--langs", required=True, help="language list file (or codes)")
    b.add_argument("--pairs", required=True, help="comma-separated SRC-TGT pairs")
    b.add_argument("--split", default="train")
    b.add_argument("--dict", default=None, help="the model's dictionary, which the databin's must equal")
    m = sub.add_parser("mono", help="monolingual (denoising) databin")
    m.add_argument("--databin", required=True)
    m.add_argument("--langs", required=True, help="language list file (or codes)")
    m.add_argument("--split", default="train")
    c = sub.add_parser("checkpoint", help="static scan of a checkpoint's pickle (nothing in it is run)")
    c.add_argument("paths", nargs="+", metavar="CHECKPOINT")


def run(args: argparse.Namespace) -> int:
    from mtkit import checks

    if args.what == "vocab":
        msgs = [checks.check_vocab(args.checkpoint, args.dict, args.langs, args.expect_mask, args.trust_checkpoint)]
    elif args.what == "databin":
        msgs = [checks.check_databin(args.databin, args.langs, args.pairs, args.split, args.dict)]
    elif args.what == "mono":
        msgs = [checks.check_mono(args.databin, args.langs, args.split)]
    else:
        msgs = [checks.check_checkpoint(p) for p in args.paths]
    for msg in msgs:
        print(msg, file=sys.stderr)
    return 0
