"""``mtkit translate``: translate files or stdin to stdout (or a resumable file) with a trained model."""
from __future__ import annotations

import argparse
import os

from mtkit.cli.common import add_model_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Translate FILEs (or stdin) to stdout, one output line per input line in order. MODEL is a model "
        "folder (checkpoint, dict.txt, SentencePiece model, langs.txt; see docs/translate.md) or a "
        "checkpoint file; with --engine ct2, a folder written by `mtkit export ct2`. Input is read and "
        "translated in chunks (--buffer-size) and each chunk's output is written as soon as it is done; "
        "on a terminal each line is translated as it is typed."
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="input files (default: stdin)")
    add_model_arguments(parser, required=False)
    parser.add_argument("--src-lang", help="source language (mBART en_XX or Flores eng_Latn); required")
    parser.add_argument("--tgt-lang", help="target language (mBART or Flores code); required")
    parser.add_argument("--engine", choices=("fairseq", "ct2"), default="fairseq",
                        help="fairseq (in-process SequenceGenerator) or ct2 (an `mtkit export ct2` folder)")
    parser.add_argument("--ct2-dir", help="CTranslate2 folder (default: MODEL or MODEL/ct2)")
    parser.add_argument("--ct2-ranking", choices=("fairseq", "ct2"), default=None,
                        help="with --engine ct2, how a line's beam hypotheses are ranked. fairseq (default): as "
                             "fairseq does, with the forced target-language token's log-probability in the "
                             "length-normalised score, so the output is fairseq's; this costs one more encoder "
                             "pass over the lines whose best hypothesis it can change. ct2: CTranslate2's own "
                             "ranking (that token counted as 0): faster, and on some lines a different "
                             "hypothesis wins (docs/translate.md)")
    parser.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    parser.add_argument("--lenpen", type=float, default=1.0, help="length penalty (default 1.0)")
    parser.add_argument("--max-len", type=int, default=200, help="maximum output tokens (default 200)")
    parser.add_argument("--nbest", type=int, default=1,
                        help="hypotheses per line, at least 1 and at most --beam; >1 prints them "
                             "tab-separated on the line (default 1)")
    parser.add_argument("--max-tokens", type=int, default=4000, help="tokens per batch (default 4000)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="lines per batch at most (default: 128 with fairseq, 32 with ct2)")
    parser.add_argument("--device", default="cpu",
                        help="cpu, cuda (every visible GPU, one worker each), cuda:N, or a comma-separated "
                             "list such as cuda:0,cuda:2 (default cpu)")
    prec = parser.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="half precision (GPU only)")
    prec.add_argument("--bf16", action="store_true", help="bfloat16 (GPU only)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("MTKIT_THREADS", "1")),
                        help="CPU threads (default 1 or $MTKIT_THREADS): fairseq uses them as torch intra-op "
                             "threads; ct2 as parallel batch workers of one thread each")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    corpus = parser.add_argument_group("corpus scale (see docs/translate.md)")
    corpus.add_argument("--buffer-size", type=int, default=None, metavar="LINES",
                        help="lines per chunk at most: chunks start at 64 lines and double up to this; each is "
                             "sorted by length for batching and written as soon as it is done. 1: each line "
                             "as it arrives (the default when stdin is a terminal); 0: the whole input in "
                             "one chunk. Default 10000")
    corpus.add_argument("-o", "--output", metavar="OUT",
                        help="write to OUT instead of stdout: lines go to OUT.partial as they are done, "
                             "which is renamed to OUT when complete")
    corpus.add_argument("--resume", action="store_true",
                        help="with --output: continue OUT.partial left by a killed run (same model, "
                             "settings and input); do nothing if OUT is complete")
    corpus.add_argument("--shard", metavar="I/N",
                        help="translate only the I-th (from 0) of N contiguous parts of the input lines into "
                             "OUT.shard-I-of-N (needs --output OUT and input files)")
    corpus.add_argument("--merge", action="store_true",
                        help="join OUT.shard-0-of-N ... into OUT (--output OUT) after checking that every "
                             "shard is complete, in order and from the same run; FILEs, if given, must be "
                             "the input the shards were translated from")


def run(args: argparse.Namespace) -> int:
    from mtkit.errors import InputError

    if args.merge:
        return _merge(args)
    missing = [flag for flag, value in (("-m/--model", args.model), ("--src-lang", args.src_lang),
                                        ("--tgt-lang", args.tgt_lang)) if not value]
    if missing:
        raise InputError(f"{', '.join(missing)} required (only --merge runs without a model)")
    from mtkit.translate import Options, Translator, parse_shard, translate_corpus
    from mtkit.translate.corpus import check_inputs, default_buffer_size
    from mtkit.translate.output import check_stdout_encoding

    if args.ct2_ranking and args.engine != "ct2":
        raise InputError("--ct2-ranking is for --engine ct2 (the fairseq engine always ranks as fairseq does)")
    opts = Options(beam=args.beam, lenpen=args.lenpen, max_len=args.max_len, nbest=args.nbest,
                   max_tokens=args.max_tokens, max_sentences=args.batch_size,
                   ranking=args.ct2_ranking or "fairseq")
    shard = parse_shard(args.shard) if args.shard else None
    check_inputs(args.files, args.output, args.resume, shard)
    if not args.output:
        check_stdout_encoding()
    buffer_size = args.buffer_size if args.buffer_size is not None else default_buffer_size(args.files)
    dtype = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    tr = Translator.from_folder(
        args.model, args.src_lang, args.tgt_lang, engine=args.engine, options=opts,
        trust_checkpoint=args.trust_checkpoint, device=args.device, dtype=dtype, checkpoint=args.checkpoint,
        dict_path=args.dict_path, spm_path=args.spm_path, langs_path=args.langs_path, ct2_dir=args.ct2_dir,
        threads=args.threads)
    translate_corpus(tr, args.files, output=args.output, resume=args.resume, shard=shard,
                     buffer_size=buffer_size, progress=bool(args.files) and not args.no_progress)
    return 0


def _merge(args: argparse.Namespace) -> int:
    from mtkit.errors import InputError
    from mtkit.translate import merge_shards
    from mtkit.translate.corpus import check_inputs, input_identity

    if not args.output:
        raise InputError("--merge needs --output OUT: the shards OUT.shard-I-of-N are joined into OUT")
    check_inputs(args.files)
    merge_shards(args.output, inputs=input_identity(args.files) if args.files else None)
    return 0
