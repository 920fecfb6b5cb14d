"""Synthetic parallel data for throughput runs: fixed-length sentences of random symbols from a
V-symbol dictionary, written straight into fairseq's mmap format (no text, no fairseq-preprocess), as
the direction en_XX-de_DE with train and valid splits, plus the language list.

    python3 benchmarks/gpu_scale/make_data.py --out DIR [--vocab 250000] [--sentences 40000] [--length 62]

Every sentence has ``length`` tokens plus fairseq's end-of-sentence, so every batch has the same
shape and the FLOPs of an update follow from its sentence count (see run.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LANGS = ("en_XX", "de_DE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--vocab", type=int, default=250_000, help="dictionary size without fairseq's 4 specials")
    ap.add_argument("--sentences", type=int, default=40_000, help="training sentence pairs")
    ap.add_argument("--length", type=int, default=62, help="tokens per sentence, end-of-sentence not counted")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import torch
    from fairseq.data import Dictionary, indexed_dataset

    args.out.mkdir(parents=True, exist_ok=True)
    d = Dictionary()
    for i in range(args.vocab):
        d.add_symbol(f"w{i}", n=1)
    for lang in LANGS:
        d.save(str(args.out / f"dict.{lang}.txt"))
    (args.out / "langs.txt").write_text("\n".join(LANGS) + "\n", encoding="utf-8")
    rng = np.random.default_rng(args.seed)
    for split, n in (("train", args.sentences), ("valid", 64)):
        for lang in LANGS:
            prefix = args.out / f"{split}.{LANGS[0]}-{LANGS[1]}.{lang}"
            builder = indexed_dataset.make_builder(f"{prefix}.bin", impl="mmap", vocab_size=len(d))
            tokens = rng.integers(d.nspecial, len(d), size=(n, args.length))
            eos = np.full((n, 1), d.eos())
            for row in np.concatenate([tokens, eos], axis=1):
                builder.add_item(torch.from_numpy(row))
            builder.finalize(f"{prefix}.idx")
    print(f"{args.out}: {args.sentences} pairs of {args.length}+1 tokens, dictionary {len(d)} symbols")


if __name__ == "__main__":
    main()
