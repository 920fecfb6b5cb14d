"""`mtkit translate`: translate files or stdin to stdout with a trained model.

Python API::

    from mtkit.translate import Translator, Options
    t = Translator.from_folder("runs/tiny", src_lang="en_XX", tgt_lang="de_DE", options=Options(beam=5))
    t.translate_lines(["the cat sleeps", "", "a dog"])   # -> 3 strings, in order

The model-folder layout is described in :mod:`mtkit.translate.model` and docs/translate.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from mtkit.translate.engine import CT2_META, Options, Translator
from mtkit.translate.model import ModelFiles, build_model, find_files

__all__ = ["CT2_META", "ModelFiles", "Options", "Translator", "add_arguments", "build_model",
           "find_files", "run", "split_lines"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Translate FILEs (or stdin) to stdout, one output line per input line in order. MODEL is a model "
        "folder (checkpoint, dict.txt, SentencePiece model, langs.txt; see docs/translate.md) or a "
        "checkpoint file; with --engine ct2, a folder written by `mtkit export ct2`."
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="input files (default: stdin)")
    parser.add_argument("-m", "--model", required=True, help="model folder or checkpoint file")
    parser.add_argument("--src-lang", required=True, help="source language (mBART en_XX or Flores eng_Latn)")
    parser.add_argument("--tgt-lang", required=True, help="target language (mBART or Flores code)")
    parser.add_argument("--engine", choices=("fairseq", "ct2"), default="fairseq",
                        help="fairseq (in-process SequenceGenerator) or ct2 (an `mtkit export ct2` folder)")
    parser.add_argument("--checkpoint", help="checkpoint file (overrides the one found in the folder)")
    parser.add_argument("--dict", dest="dict_path", help="fairseq dictionary (dict.txt)")
    parser.add_argument("--spm", dest="spm_path", help="SentencePiece model")
    parser.add_argument("--langs", dest="langs_path", help="language list the model was trained with")
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
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="load the checkpoint with full unpickling (only for files you trust)")


def split_lines(text: str) -> list[str]:
    """Lines as `wc -l` counts them: split on \\n only (not on the other characters str.splitlines
    treats as breaks, such as \\x0c or U+2028), a final newline does not start a new line."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def _read(files: list[str]) -> list[tuple[str, list[str]]]:
    from mtkit.errors import InputError

    out = []
    if not files:
        try:  # bytes, so that a lone \r is not turned into a line break
            out.append(("<stdin>", split_lines(sys.stdin.buffer.read().decode("utf-8"))))
        except UnicodeDecodeError as e:
            raise InputError(f"standard input is not valid UTF-8 ({e})") from None
        return out

    for f in files:
        try:
            with open(f, encoding="utf-8", newline="") as fh:
                out.append((f, split_lines(fh.read())))
        except FileNotFoundError:
            raise InputError(f"input file {f} does not exist") from None
        except UnicodeDecodeError as e:
            raise InputError(f"input file {f} is not valid UTF-8 ({e})") from None
    return out


def run(args: argparse.Namespace) -> int:
    if args.engine == "fairseq":
        import torch

        torch.set_num_threads(max(1, args.threads))
    dtype = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    opts = Options(beam=args.beam, lenpen=args.lenpen, max_len=args.max_len, nbest=args.nbest,
                   max_tokens=args.max_tokens, max_sentences=args.batch_size)
    inputs = _read(args.files)
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
