#!/usr/bin/env python
"""The least a CTranslate2 user would write: ctranslate2.Translator on already encoded SentencePiece
pieces, the same decoding settings as `mtkit translate --engine ct2` (beam, batches of 32 lines,
language tokens), top-1 pieces to stdout. run.py times it beside mtkit to measure mtkit's overhead
(SentencePiece, re-ranking, start-up)."""
from __future__ import annotations

import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="CTranslate2 folder")
    ap.add_argument("pieces", help="one sentence a line, SentencePiece pieces separated by spaces")
    ap.add_argument("--source-prefix", default="", help="token put before each source (e.g. __en_XX__)")
    ap.add_argument("--target-prefix", default="", help="token forced first in each output (e.g. __fr_XX__)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=200, help="output tokens after the target prefix")
    ap.add_argument("--threads", type=int, default=1, help="CTranslate2 workers of one thread each")
    args = ap.parse_args()

    import ctranslate2

    tr = ctranslate2.Translator(args.model, device="cpu", inter_threads=args.threads, intra_threads=1)
    pre = [args.source_prefix] if args.source_prefix else []
    tp = [args.target_prefix] if args.target_prefix else []
    with open(args.pieces, encoding="utf-8") as f:
        source = [pre + line.split() for line in f.read().split("\n")[:-1]]
    res = tr.translate_batch(source, target_prefix=[tp] * len(source) if tp else None, beam_size=args.beam,
                             max_batch_size=args.max_batch_size, max_decoding_length=args.max_len + len(tp),
                             min_decoding_length=0)
    out = sys.stdout
    for r in res:
        out.write(" ".join(r.hypotheses[0][len(tp):]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
