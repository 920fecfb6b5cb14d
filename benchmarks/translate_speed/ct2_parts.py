#!/usr/bin/env python
"""Where CTranslate2's time goes on one model, in one process (no start-up): translate_batch with
several batch sizes, with one vs beam-many hypotheses returned, and the score_batch pass that
`mtkit translate --engine ct2` adds to re-rank like fairseq. Interleaved repeats; wall seconds.
Also what the re-ranking does: the forced language token's log-probability c of each line (from
score_batch) and on how many lines adding c/length back (fairseq's score, length penalty 1) makes
another hypothesis than CTranslate2's best the top one.

    python benchmarks/translate_speed/ct2_parts.py CT2_FOLDER --src SRC --src-lang en_XX --tgt-lang fr_XX \\
        [--lines 2000] [--beam 5] [--repeats 3] --out results.json
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from common import machine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="CTranslate2 folder written by `mtkit export ct2` (holds spm.model)")
    ap.add_argument("--src", required=True)
    ap.add_argument("--src-lang", required=True)
    ap.add_argument("--tgt-lang", required=True)
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import ctranslate2
    import sentencepiece as spm

    from mtkit.io import write_json

    sp = spm.SentencePieceProcessor(model_file=str(Path(a.model) / "spm.model"))
    lines = Path(a.src).read_text(encoding="utf-8").split("\n")[: a.lines]
    src = [[f"__{a.src_lang}__"] + sp.encode(s.strip(), out_type=str) for s in lines]
    prefix = [[f"__{a.tgt_lang}__"]] * len(src)
    tr = ctranslate2.Translator(a.model, device="cpu", inter_threads=1, intra_threads=1)
    settings = {"target_prefix": prefix, "beam_size": a.beam, "max_decoding_length": 201, "min_decoding_length": 0}
    variants = {
        "batch 32 lines, 1 hypothesis": lambda: tr.translate_batch(src, max_batch_size=32, **settings),
        "batch 64 lines, 1 hypothesis": lambda: tr.translate_batch(src, max_batch_size=64, **settings),
        "batch 128 lines, 1 hypothesis": lambda: tr.translate_batch(src, max_batch_size=128, **settings),
        "batch 4096 tokens, 1 hypothesis": lambda: tr.translate_batch(src, max_batch_size=4096, batch_type="tokens",
                                                                      **settings),
        "batch 32 lines, beam-many hypotheses with scores (mtkit)": lambda: tr.translate_batch(
            src, max_batch_size=32, num_hypotheses=a.beam, return_scores=True, **settings),
        "score_batch of the language token, every line": lambda: tr.score_batch(src, prefix, max_batch_size=64),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    last = scored = None
    for _ in range(a.repeats):
        for name, fn in variants.items():
            t = time.perf_counter()
            out = fn()
            times[name].append(round(time.perf_counter() - t, 3))
            if name.startswith("batch 32 lines, beam-many"):
                last = out
            elif name.startswith("score_batch"):
                scored = out
    need = sum(1 for r in last if any(len(h) > len(r.hypotheses[0]) for h in r.hypotheses[1:]))
    c = [sc.log_probs[0] for sc in scored]
    changed = 0
    for r, ci in zip(last, c):  # fairseq's score: (CTranslate2's sum + c) / (tokens + 1), length penalty 1
        fs = [s + ci / (len(h) + 1) for h, s in zip(r.hypotheses, r.scores)]
        changed += max(range(len(fs)), key=fs.__getitem__) != 0
    result = {"command": "python " + " ".join(sys.argv), "model": a.model, "lines": len(src),
              "beam": a.beam, "repeats": a.repeats, "machine_at_start": machine(),
              "versions": {"ctranslate2": ctranslate2.__version__}, "wall_s": times,
              "lines_mtkit_rescores": need,
              "forced_token_logprob": {"min": round(min(c), 3), "median": round(statistics.median(c), 3),
                                       "max": round(max(c), 3)},
              "lines_top1_changed_by_fairseq_ranking": changed}
    write_json(a.out, result)
    for k, v in times.items():
        print(f"{k:60s} {v}")
    print(f"lines whose beam holds a hypothesis longer than the best (mtkit re-scores them): {need}/{len(src)}")
    print(f"forced language token log-probability: {result['forced_token_logprob']}; top-1 changed by "
          f"fairseq's ranking on {changed}/{len(src)} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
