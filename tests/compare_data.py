"""Comparison inputs for tests: the tiny model's languages (tiny.py), two or more systems made by
corrupting the references at different rates, ML50-style folders."""
from __future__ import annotations

import random
from pathlib import Path

from mtkit.testing import english_sentences, translate_words

FILLERS = ["the", "a", "big", "cat"]


def corrupt(sentence: str, p: float, rng: random.Random) -> str:
    """Replace each word with probability ``p`` by a frequent filler word."""
    return " ".join(w if rng.random() > p else rng.choice(FILLERS) for w in sentence.split())


def make_systems(root: Path, sizes: dict[str, int], rates: dict[str, float]) -> Path:
    """ML50-style references of the tiny model's languages (test + train) under ``root/raw`` and one
    folder ``root/SYSTEM`` of ``{src}-{tgt}.hyp`` files per system, each a corrupted copy of the
    reference at its rate. Returns the reference folder."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    for lang, n in sizes.items():
        for split, sents in (("test", english_sentences(n, 7)), ("train", english_sentences(3 * n, 8))):
            for side in ("en_XX", lang):
                (raw / f"{split}.en_XX-{lang}.{side}").write_text(
                    "".join(translate_words(s, side) + "\n" for s in sents), encoding="utf-8")
    for system, rate in rates.items():
        rng = random.Random(system)
        folder = root / system
        folder.mkdir()
        for lang, n in sizes.items():
            en = english_sentences(n, 7)
            (folder / f"en_XX-{lang}.hyp").write_text(
                "".join(corrupt(translate_words(s, lang), rate, rng) + "\n" for s in en), encoding="utf-8")
            (folder / f"{lang}-en_XX.hyp").write_text(
                "".join(corrupt(s, rate, rng) + "\n" for s in en), encoding="utf-8")
    return raw
