"""``mtkit translate``: translate files or stdin to stdout with a trained model."""
from __future__ import annotations

import argparse
import os
import sys

from mtkit.cli.common import add_model_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Translate FILEs (or stdin) to stdout, one output line per input line in order. MODEL is a model "
        "folder (checkpoint, dict.txt, SentencePiece model, langs.txt; see docs/translate.md) or a "
        "checkpoint file; with --engine ct2, a folder written by `mtkit export ct2`."
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="input files (default: stdin)")
    add_model_arguments(parser)
    parser.add_argument("--src-lang", required=True, help="source language (mBART en_XX or Flores eng_Latn)")
    parser.add_argument("--tgt-lang", required=True, help="target language (mBART or Flores code)")
    parser.add_argument("--engine", choices=("fairseq", "ct2"), default="fairseq",
                        help="fairseq (in-process SequenceGenerator) or ct2 (an `mtkit export ct2` folder)")
    parser.add_argument("--ct2-dir", help="CTranslate2 folder (default: MODEL or MODEL/ct2)")
    parser.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    parser.add_argument("--lenpen", type=float, default=1.0, help="length penalty (default 1.0)")
    parser.add_argument("--max-len", type=int, default=200, help="maximum output tokens (default 200)")
    parser.add_argument("--nbest", type=int, default=1,
                        help="hypotheses per line; >1 prints them tab-separated on the line (default 1)")
    parser.add_argument("--max-tokens", type=int, default=4000, help="tokens per batch (default 4000)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="lines per batch at most (default: 128 with fairseq, 32 with ct2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    prec = parser.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="half precision (GPU only)")
    prec.add_argument("--bf16", action="store_true", help="bfloat16 (GPU only)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("MTKIT_THREADS", "1")),
                        help="CPU threads (default 1 or $MTKIT_THREADS): fairseq uses them as torch intra-op "
                             "threads; ct2 as parallel batch workers of one thread each")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from mtkit.translate import Options, Translator, read_inputs

    opts = Options(beam=args.beam, lenpen=args.lenpen, max_len=args.max_len, nbest=args.nbest,
                   max_tokens=args.max_tokens, max_sentences=args.batch_size)
    inputs = read_inputs(args.files)
    dtype = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    tr = Translator.from_folder(
        args.model, args.src_lang, args.tgt_lang, engine=args.engine, options=opts,
        trust_checkpoint=args.trust_checkpoint, device=args.device, dtype=dtype, checkpoint=args.checkpoint,
        dict_path=args.dict_path, spm_path=args.spm_path, langs_path=args.langs_path, ct2_dir=args.ct2_dir,
        threads=args.threads)
    out = sys.stdout
    for _name, lines in inputs:
        progress = bool(args.files) and not args.no_progress
        res = tr.translate_lines(lines, progress=progress, nbest=args.nbest > 1)
        for r in res:
            out.write(("\t".join(r) if isinstance(r, list) else r) + "\n")
        out.flush()
    return 0
