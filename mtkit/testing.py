"""A tiny, real multilingual fairseq model for tests and benchmarks: synthetic corpus, SPM, databin,
training (the test suite's session fixture; ``benchmarks/translate_speed`` translates its language).

The languages are made up (each target language is a per-word cipher of a small English vocabulary),
but everything else is real: sentencepiece training, fairseq-preprocess, fairseq-train with
translation_multi_simple_epoch and the mtkit plugin. The model learns the cipher within a few hundred
updates, so beam-search agreement tests compare meaningful outputs.

    from mtkit.testing import build_tiny_model
    model = build_tiny_model(Path("work/tiny"))   # trained once, reused when its checkpoint is there
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mtkit.io import write_text

BIN = Path(sys.executable).parent

WORDS = (
    "the a one two red blue green small big house tree river cat dog bird eats sees runs "
    "sleeps near under over and with quickly slowly old new man woman child book reads writes "
    "happy sad water fire stone"
).split()


def _cipher(lang: str) -> dict[str, str]:
    rng = random.Random(f"cipher-{lang}")
    syllables = ["ka", "lo", "mi", "ru", "te", "zo", "pa", "ne", "si", "vu", "de", "ga", "fo", "bi"]
    out: dict[str, str] = {}
    used: set[str] = set()
    for w in WORDS:
        while True:
            cand = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 3)))
            if cand not in used:
                used.add(cand)
                out[w] = cand
                break
    return out


def translate_words(sentence: str, lang: str) -> str:
    """The ground-truth 'translation' of an English sentence into a synthetic language."""
    if lang == "en_XX":
        return sentence
    table = _cipher(lang)
    return " ".join(table[w] for w in sentence.split())


def english_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


@dataclass
class TinyModel:
    root: Path
    raw: Path
    databin: Path
    spm_model: Path
    langs_file: Path
    lang_pairs: str
    checkpoint: Path
    save_dir: Path

    def train_args(self) -> list[str]:
        return tiny_train_args(self.databin, self.langs_file, self.lang_pairs)


def write_raw(raw: Path, langs: list[str], n_train: int = 1500, n_valid: int = 40, n_test: int = 40) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": english_sentences(n_train, 1),
        "valid": english_sentences(n_valid, 2),
        "test": english_sentences(n_test, 3),
    }
    for tgt in langs:
        if tgt == "en_XX":
            continue
        for split, sents in splits.items():
            for lang in ("en_XX", tgt):
                with open(raw / f"{split}.en_XX-{tgt}.{lang}", "w", encoding="utf-8") as f:
                    for s in sents:
                        f.write(translate_words(s, lang) + "\n")


def train_spm(raw: Path, out_prefix: Path, vocab_size: int = 120) -> Path:
    import sentencepiece as spm

    files = sorted(str(p) for p in raw.glob("train.*"))
    spm.SentencePieceTrainer.train(
        input=",".join(files), model_prefix=str(out_prefix), vocab_size=vocab_size,
        character_coverage=1.0, model_type="unigram", bos_id=-1, eos_id=-1, unk_id=0,
        pad_id=-1, minloglevel=2,
    )
    return out_prefix.with_suffix(".model")


def encode_and_binarize(raw: Path, spm_model: Path, work: Path, langs: list[str]) -> Path:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    enc = work / "spm"
    enc.mkdir(parents=True, exist_ok=True)
    for p in raw.iterdir():
        with open(p, encoding="utf-8") as fi, open(enc / p.name, "w", encoding="utf-8") as fo:
            for line in fi:
                fo.write(" ".join(sp.encode(line.strip(), out_type=str)) + "\n")
    databin = work / "databin"
    # one joined dictionary from all training text
    dict_path = work / "dict.txt"
    counts: dict[str, int] = {}
    for p in enc.glob("train.*"):
        for line in open(p, encoding="utf-8"):
            for tok in line.split():
                counts[tok] = counts.get(tok, 0) + 1
    with open(dict_path, "w", encoding="utf-8") as f:
        for tok, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            f.write(f"{tok} {c}\n")
    for tgt in langs:
        if tgt == "en_XX":
            continue
        subprocess.run(
            [str(BIN / "fairseq-preprocess"), "--source-lang", "en_XX", "--target-lang", tgt,
             "--trainpref", str(enc / f"train.en_XX-{tgt}"), "--validpref", str(enc / f"valid.en_XX-{tgt}"),
             "--testpref", str(enc / f"test.en_XX-{tgt}"), "--destdir", str(databin),
             "--srcdict", str(dict_path), "--tgtdict", str(dict_path), "--workers", "1"],
            check=True, capture_output=True,
        )
    return databin


def tiny_train_args(databin: Path, langs_file: Path, lang_pairs: str) -> list[str]:
    """fairseq-train arguments of the tiny mBART-like model (pre-norm, layernorm-embedding,
    shared embeddings, learned positions) on translation_multi_simple_epoch."""
    from mtkit.plugin import user_dir

    return [
        str(databin), "--user-dir", user_dir(), "--cpu", "--seed", "1",
        "--task", "translation_multi_simple_epoch", "--lang-dict", str(langs_file),
        "--lang-pairs", lang_pairs, "--encoder-langtok", "src", "--decoder-langtok",
        "--sampling-method", "temperature", "--sampling-temperature", "1.5",
        "--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
        "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
        "--encoder-ffn-embed-dim", "128", "--decoder-ffn-embed-dim", "128",
        "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
        "--encoder-normalize-before", "--decoder-normalize-before", "--layernorm-embedding",
        "--encoder-learned-pos", "--decoder-learned-pos", "--share-all-embeddings",
        "--max-source-positions", "64", "--max-target-positions", "64",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "0.005",
        "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "50", "--dropout", "0.0",
        "--max-tokens", "2000", "--num-workers", "0", "--log-format", "simple",
        "--log-interval", "50", "--no-epoch-checkpoints", "--no-progress-bar",
    ]


def build_tiny_model(root: Path, langs: tuple[str, ...] = ("en_XX", "de_DE", "fr_XX"),
                     max_update: int = 800, n_train: int = 1500) -> TinyModel:
    """Build data and train the tiny model under ``root`` (reused if a build finished there)."""
    root.mkdir(parents=True, exist_ok=True)
    raw = root / "raw"
    langs_file = root / "langs.txt"
    langs_file.write_text("\n".join(langs) + "\n", encoding="utf-8")
    pairs = [f"en_XX-{t}" for t in langs if t != "en_XX"] + [f"{t}-en_XX" for t in langs if t != "en_XX"]
    lang_pairs = ",".join(pairs)
    save_dir = root / "checkpoints"
    ckpt = save_dir / "checkpoint_last.pt"
    # train.log is written last: a build killed earlier is redone (fairseq resumes its checkpoint)
    if not (root / "train.log").exists():
        write_raw(raw, list(langs), n_train=n_train)
        spm_model = train_spm(raw, root / "spm")
        databin = encode_and_binarize(raw, spm_model, root, list(langs))
        cmd = [str(BIN / "fairseq-train"), *tiny_train_args(databin, langs_file, lang_pairs),
               "--max-update", str(max_update), "--save-dir", str(save_dir),
               "--save-interval-updates", str(max_update), "--validate-interval-updates", str(max_update)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"fairseq-train failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
        write_text(root / "train.log", res.stdout + res.stderr)  # atomic: the build is done
    return TinyModel(root=root, raw=raw, databin=root / "databin", spm_model=root / "spm.model",
                     langs_file=langs_file, lang_pairs=lang_pairs, checkpoint=ckpt, save_dir=save_dir)
