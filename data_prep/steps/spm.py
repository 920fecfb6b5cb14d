"""SentencePiece: a temperature-sampled training text, the training itself, and batch encoding.

The model is trained from an iterator over the sampled text, not from a file name: SentencePiece
records its input path and model prefix in the model's trainer spec, so training from a temporary
file would make two builds of the same corpus differ in ``spm.model``.
"""
from __future__ import annotations

import io
import logging
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mtkit.errors import InputError
from mtkit.io import atomic_write, count_lines, read_lines, write_bytes, write_lines

log = logging.getLogger(__name__)


def sample_quotas(sizes: dict[str, int], input_sentences: int, temperature: float) -> dict[str, int]:
    """Lines to take per language: p_lang ∝ n_lang^(1/T), at most ``input_sentences`` in all.

    Low-resource languages get more than their share (repeating lines), so their scripts reach the
    vocabulary; the budget never exceeds four passes over the corpus.
    """
    total = sum(sizes.values())
    weights = {k: (v / total) ** (1.0 / temperature) for k, v in sizes.items()}
    z = sum(weights.values())
    budget = min(input_sentences, total * 4)
    return {k: max(1, round(budget * w / z)) for k, w in weights.items()}


def write_sample(files: dict[str, list[Path]], input_sentences: int, temperature: float, seed: int,
                 out_path: Path) -> dict[str, int]:
    """Write the temperature-sampled training text of ``files`` (language -> train files)."""
    sizes = {lang: sum(count_lines(p) for p in ps) for lang, ps in files.items()}
    sizes = {k: v for k, v in sizes.items() if v > 0}
    if not sizes:
        raise InputError("no training text to learn a SentencePiece model from")
    quota = sample_quotas(sizes, input_sentences, temperature)
    rng = random.Random(seed)
    with atomic_write(out_path) as f:
        for lang in sorted(sizes):
            n, q = sizes[lang], quota[lang]
            # every line ceil(q/n) times at most, chosen by index without holding the text
            reps, rest = divmod(q, n)
            extra = set(rng.sample(range(n), rest)) if rest else set()
            i = 0
            for p in files[lang]:
                for line in read_lines(p):
                    if line.strip():
                        f.write((line + "\n") * (reps + (i in extra)))
                    i += 1
    return {lang: quota[lang] for lang in sorted(sizes)}


def _lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n")


def train(files: dict[str, list[Path]], out: Path, vocab_size: int, *, character_coverage: float = 0.9995,
          input_sentences: int = 2_000_000, temperature: float = 5.0, model_type: str = "unigram",
          seed: int = 1, threads: int = 1) -> dict:
    """Train ``out/spm.model`` and ``out/spm.vocab`` on the given train files; returns the settings used.

    The sample lives in a temporary folder ``out/.spmtrain.*.tmp`` (removed at the end, and by the
    next run after a kill).
    """
    import sentencepiece as spm

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".spmtrain.", suffix=".tmp") as tmp:
        text = Path(tmp) / "sample.txt"
        taken = write_sample(files, input_sentences, temperature, seed, text)
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)
        spm.SentencePieceTrainer.train(
            sentence_iterator=_lines(text), model_writer=model, vocab_size=vocab_size,
            character_coverage=character_coverage, model_type=model_type, input_sentence_size=input_sentences,
            shuffle_input_sentence=True, seed_sentencepiece_size=1_000_000, num_threads=max(1, threads),
            hard_vocab_limit=False, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2,
        )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    # spm.vocab in SentencePiece's own format (piece, tab, score), which model_writer does not write
    write_lines(out / "spm.vocab", (f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}" for i in range(sp.get_piece_size())))
    write_bytes(out / "spm.model", model.getvalue())
    return {"vocab_size": vocab_size, "character_coverage": character_coverage, "temperature": temperature,
            "input_sentences": input_sentences, "model_type": model_type, "sampled_lines": taken}


def load(model: str | os.PathLike):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(model))
