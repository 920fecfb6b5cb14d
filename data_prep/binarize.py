"""`mtkit data binarize`: SentencePiece (train or apply) + fairseq-preprocess into one joined dictionary.

Outputs under OUT:
- ``spm.model`` / ``spm.vocab`` when a model is trained here;
- ``spm/{split}.{src}-{tgt}.{lang}``: piece-encoded text (what fairseq-preprocess reads);
- ``databin/``: ``{split}.{src}-{tgt}.{lang}.{bin,idx}``, ``dict.{lang}.txt`` (all identical),
  ``dict.txt`` and ``langs.txt`` (ML50 order; this order fixes the language-token ids);
- with ``mono=True``: ``databin_mono/dict.txt`` + ``databin_mono/{lang}/{train,valid}.{bin,idx}``,
  the layout of fairseq's ``multilingual_denoising`` task;
- ``manifest.json``: counts per direction and split, drops, settings, versions.

The dictionary follows the SentencePiece model's piece order (as mBART's ``dict_250k.txt`` does),
so fairseq index = SentencePiece id + 1 for every normal piece.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from data_prep.common import (
    StepCache,
    atomic_open,
    clean_stale_tmp,
    count_lines,
    list_directions,
    read_lines,
    read_pairs,
    setup_progress,
    text_hash,
    versions,
    write_json,
    write_lines,
)
from mtkit.errors import InputError, MtkitError
from mtkit.langs import ML50_LANGS, read_lang_file

log = logging.getLogger(__name__)
ENCODE_BATCH = 10000


def ordered_langs(langs: set[str], langs_file: str | None = None) -> list[str]:
    """The language list: ``langs_file`` order when given (must cover ``langs``), else ML50 order."""
    if langs_file:
        listed = read_lang_file(langs_file)
        missing = sorted(langs - set(listed))
        if missing:
            raise InputError(f"{langs_file}: does not list {', '.join(missing)}, which the corpus uses")
        return listed
    return [c for c in ML50_LANGS if c in langs] + sorted(langs - set(ML50_LANGS))


def _sample_for_spm(raw: Path, directions, langs, input_sentences: int, temperature: float,
                    seed: int, out_path: Path) -> dict[str, int]:
    """Write a temperature-sampled training text for SPM: p_lang ∝ n_lang^(1/T).

    Low-resource languages are repeated up to their share, so their scripts reach the vocabulary.
    """
    files: dict[str, list[Path]] = {lang: [] for lang in langs}
    for src, tgt in directions:
        for lang in (src, tgt):
            p = raw / f"train.{src}-{tgt}.{lang}"
            if p.exists():
                files[lang].append(p)
    sizes = {lang: sum(count_lines(p) for p in ps) for lang, ps in files.items()}
    sizes = {k: v for k, v in sizes.items() if v > 0}
    if not sizes:
        raise InputError(f"{raw}: no training text to learn a SentencePiece model from")
    total = sum(sizes.values())
    weights = {k: (v / total) ** (1.0 / temperature) for k, v in sizes.items()}
    z = sum(weights.values())
    budget = min(input_sentences, sum(sizes.values()) * 4)
    quota = {k: max(1, round(budget * w / z)) for k, w in weights.items()}
    rng = random.Random(seed)
    taken: dict[str, int] = {}
    with atomic_open(out_path) as f:
        for lang in sorted(sizes):
            n, q = sizes[lang], quota[lang]
            # indices to take: every line ceil(q/n) times at most, chosen without holding the text
            reps, rest = divmod(q, n)
            extra = set(rng.sample(range(n), rest)) if rest else set()
            i = 0
            for p in files[lang]:
                for line in read_lines(p):
                    k = reps + (1 if i in extra else 0)
                    if line.strip():
                        for _ in range(k):
                            f.write(line + "\n")
                    i += 1
            taken[lang] = q
    return taken


def train_spm(raw: str | os.PathLike, out: str | os.PathLike, vocab_size: int, *,
              character_coverage: float = 0.9995, input_sentences: int = 2_000_000,
              temperature: float = 5.0, model_type: str = "unigram", seed: int = 1,
              langs: list[str] | None = None, workers: int = 1) -> dict:
    """Train ``out/spm.model`` on the train split of a raw folder (temperature-sampled per language)."""
    import sentencepiece as spm

    raw, out = Path(raw), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    directions = list_directions(raw)
    langs = langs or sorted({x for d in directions for x in d})
    with tempfile.TemporaryDirectory(dir=out, prefix=".spmtrain.") as tmp:
        text = Path(tmp) / "sample.txt"
        taken = _sample_for_spm(raw, directions, langs, input_sentences, temperature, seed, text)
        prefix = Path(tmp) / "spm"
        spm.set_random_generator_seed(seed)
        spm.SentencePieceTrainer.train(
            input=str(text), model_prefix=str(prefix), vocab_size=vocab_size,
            character_coverage=character_coverage, model_type=model_type,
            input_sentence_size=input_sentences, shuffle_input_sentence=True, seed_sentencepiece_size=1_000_000,
            num_threads=max(1, workers), hard_vocab_limit=False, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
            minloglevel=2,
        )
        os.replace(str(prefix) + ".vocab", out / "spm.vocab")
        os.replace(str(prefix) + ".model", out / "spm.model")
    return {"vocab_size": vocab_size, "character_coverage": character_coverage, "temperature": temperature,
            "input_sentences": input_sentences, "model_type": model_type, "sampled_lines": taken}


def write_dict_from_spm(model_path: str | os.PathLike, dict_path: str | os.PathLike) -> int:
    """fairseq dictionary in SentencePiece order (control/unknown pieces left out: fairseq adds its own)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    rows = [f"{sp.id_to_piece(i)} 1" for i in range(sp.get_piece_size())
            if not (sp.is_control(i) or sp.is_unknown(i))]
    return write_lines(dict_path, rows)


def _encode_file_pair(sp_model: str, src_in: Path, tgt_in: Path, src_out: Path, tgt_out: Path,
                      max_pieces: int | None, drop_empty: bool) -> Counter:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model)
    c: Counter = Counter()
    with atomic_open(src_out) as fs, atomic_open(tgt_out) as ft:
        batch: list[tuple[str, str]] = []

        def flush():
            if not batch:
                return
            a = sp.encode([x for x, _ in batch], out_type=str)
            b = sp.encode([y for _, y in batch], out_type=str)
            for pa, pb in zip(a, b):
                c["in"] += 1
                if drop_empty and (not pa or not pb):
                    c["drop_empty"] += 1
                    continue
                if max_pieces and (len(pa) > max_pieces or len(pb) > max_pieces):
                    c["drop_max_pieces"] += 1
                    continue
                fs.write(" ".join(pa) + "\n")
                ft.write(" ".join(pb) + "\n")
                c["out"] += 1
            batch.clear()

        for pair in read_pairs(src_in, tgt_in):
            batch.append(pair)
            if len(batch) >= ENCODE_BATCH:
                flush()
        flush()
    return c


def run_fairseq_preprocess(jobs: list[list[str]]) -> None:
    """Run fairseq-preprocess for each argument list, all in one child process (imports paid once)."""
    if not jobs:
        return
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "data_prep._preprocess_many"], input=json.dumps(jobs),
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise MtkitError(f"fairseq-preprocess failed:\n{res.stderr[-3000:]}")


def _direction_job(spm_dir: Path, tmp: Path, dict_path: Path, src: str, tgt: str, splits: list[str]) -> list[str]:
    args = ["--source-lang", src, "--target-lang", tgt, "--srcdict", str(dict_path), "--joined-dictionary",
            "--destdir", str(tmp), "--workers", "1", "--dataset-impl", "mmap"]
    for split in splits:
        args += [f"--{split}pref", str(spm_dir / f"{split}.{src}-{tgt}")]
    return args


def _mono_job(text_dir: Path, tmp: Path, dict_path: Path, lang: str, splits: list[str]) -> list[str]:
    args = ["--source-lang", lang, "--only-source", "--srcdict", str(dict_path), "--destdir", str(tmp),
            "--workers", "1", "--dataset-impl", "mmap"]
    for split in splits:
        args += [f"--{split}pref", str(text_dir / split)]
    return args


def binarize(
    raw: str | os.PathLike,
    out: str | os.PathLike,
    spm_model: str | None = None,
    spm_vocab_size: int | None = None,
    langs_file: str | None = None,
    max_pieces: int | None = None,
    workers: int = 1,
    mono: bool = False,
    character_coverage: float = 0.9995,
    spm_input_sentences: int = 2_000_000,
    spm_temperature: float = 5.0,
    fairseq_dict: str | None = None,
) -> dict:
    """SPM (apply ``spm_model`` or train one of ``spm_vocab_size``) + fairseq-preprocess. Returns the manifest.

    ``fairseq_dict``: an existing fairseq dictionary (e.g. mBART's ``dict_250k.txt``) instead of one
    derived from the SentencePiece model.
    """
    t0 = time.time()
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise InputError(f"{raw}: not a folder (expected a raw corpus with {{split}}.{{src}}-{{tgt}}.{{lang}} files)")
    if (spm_model is None) == (spm_vocab_size is None):
        raise InputError("give exactly one of --spm-model (apply) or --spm-vocab-size (train)")
    directions = list_directions(raw)
    if not directions:
        raise InputError(f"{raw}: no files named {{split}}.{{src}}-{{tgt}}.{{lang}} (e.g. train.en_XX-fr_XX.fr_XX)")
    out.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(out)
    langs = ordered_langs({x for d in directions for x in d}, langs_file)
    manifest: dict = {"command": "mtkit data binarize", "raw": str(raw), "versions": versions(),
                      "settings": {"max_pieces": max_pieces, "workers": workers, "mono": mono,
                                   "langs_file": langs_file}, "langs": langs}

    # 1. SentencePiece model
    if spm_model is None:
        inputs = [raw / f"train.{s}-{t}.{x}" for s, t in directions for x in (s, t)
                  if (raw / f"train.{s}-{t}.{x}").exists()]
        settings = {"vocab": spm_vocab_size, "cov": character_coverage, "n": spm_input_sentences,
                    "T": spm_temperature}
        cache = StepCache(out, "spm_train")
        key = cache.key(inputs, settings)
        if cache.is_done(key, [out / "spm.model"]):
            log.info("spm: inputs unchanged, reusing %s", out / "spm.model")
            manifest["spm"] = cache.info()
        else:
            log.info("spm: training a %d-piece model", spm_vocab_size)
            manifest["spm"] = train_spm(raw, out, spm_vocab_size, character_coverage=character_coverage,
                                        input_sentences=spm_input_sentences, temperature=spm_temperature,
                                        langs=langs, workers=workers)
            cache.record(key, [out / "spm.model"], manifest["spm"])
        model = str(out / "spm.model")
    else:
        if not os.path.exists(spm_model):
            raise InputError(f"{spm_model}: SentencePiece model not found")
        model = spm_model
        manifest["spm"] = {"model": os.path.abspath(spm_model)}

    databin = out / "databin"
    databin.mkdir(parents=True, exist_ok=True)
    dict_path = databin / "dict.txt"
    if fairseq_dict:
        shutil.copyfile(fairseq_dict, str(dict_path) + ".tmp")
        os.replace(str(dict_path) + ".tmp", dict_path)
    else:
        write_dict_from_spm(model, dict_path)

    # 2. encode (train pairs longer than max_pieces are dropped)
    spm_dir = out / "spm"
    jobs = []
    for src, tgt in directions:
        for split in ("train", "valid", "test"):
            a, b = raw / f"{split}.{src}-{tgt}.{src}", raw / f"{split}.{src}-{tgt}.{tgt}"
            if a.exists() and b.exists():
                jobs.append((src, tgt, split, a, b))
            elif a.exists() or b.exists():
                raise InputError(f"{a if a.exists() else b}: the other side of this {split} file is missing")
    counts: dict[str, dict] = {}
    enc_cache_settings = {"model": Path(model).stat().st_size, "max_pieces": max_pieces}
    from data_prep.common import file_digest
    enc_cache_settings["model_digest"] = file_digest(model)

    def encode(job):
        src, tgt, split, a, b = job
        oa, ob = spm_dir / a.name, spm_dir / b.name
        cache = StepCache(spm_dir, f"encode.{a.name}")
        key = cache.key([a, b], {**enc_cache_settings, "split": split})
        if cache.is_done(key, [oa, ob]):
            return job, Counter(cache.info())
        c = _encode_file_pair(model, a, b, oa, ob, max_pieces if split == "train" else None,
                              drop_empty=split == "train")
        cache.record(key, [oa, ob], dict(c))
        return job, c

    spm_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, workers)) as ex:
        for job, c in tqdm(ex.map(encode, jobs), total=len(jobs), desc="spm encode", unit="file",
                           **setup_progress()):
            src, tgt, split = job[:3]
            counts.setdefault(f"{src}-{tgt}", {})[split] = {"lines": c["in"], "kept": c["out"],
                                                           "drop_max_pieces": c["drop_max_pieces"],
                                                           "drop_empty": c["drop_empty"]}
    manifest["directions"] = counts

    # 3. fairseq-preprocess, one joined dictionary (directions whose inputs changed only)
    dict_key = StepCache.key([dict_path], {})
    todo = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".pp.") as tmpdir:
        for src, tgt in directions:
            splits = [s for s in ("train", "valid", "test") if (spm_dir / f"{s}.{src}-{tgt}.{src}").exists()
                      and (spm_dir / f"{s}.{src}-{tgt}.{src}").stat().st_size > 0]
            inputs = [spm_dir / f"{s}.{src}-{tgt}.{x}" for s in splits for x in (src, tgt)]
            outputs = [f"{s}.{src}-{tgt}.{x}.{e}" for s in splits for x in (src, tgt) for e in ("bin", "idx")]
            cache = StepCache(databin, f"preprocess.{src}-{tgt}")
            key = cache.key(inputs, {"dict": dict_key})
            if not cache.is_done(key, [databin / o for o in outputs]):
                tmp = Path(tmpdir) / f"{src}-{tgt}"
                todo.append((cache, key, tmp, outputs, _direction_job(spm_dir, tmp, dict_path, src, tgt, splits)))
        log.info("fairseq-preprocess: %d of %d directions to binarise", len(todo), len(directions))
        run_fairseq_preprocess([t[-1] for t in todo])
        for cache, key, tmp, outputs, _ in todo:
            for name in outputs:
                os.replace(tmp / name, databin / name)
            cache.record(key, [databin / o for o in outputs])
    for lang in langs:
        shutil.copyfile(dict_path, databin / f".dict.{lang}.txt.tmp")
        os.replace(databin / f".dict.{lang}.txt.tmp", databin / f"dict.{lang}.txt")
    write_lines(databin / "langs.txt", langs)

    # 4. monolingual layout for multilingual_denoising
    if mono:
        manifest["mono"] = _build_mono(raw, out, model, directions, langs, dict_path, workers)
    manifest["seconds"] = round(time.time() - t0, 1)
    write_json(out / "manifest.json", manifest)
    return manifest


def _build_mono(raw: Path, out: Path, model: str, directions, langs, dict_path: Path, workers: int) -> dict:
    """One deduplicated monolingual text per language (every side of every direction), binarised."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    mono_text, mono_bin = out / "spm_mono", out / "databin_mono"
    mono_bin.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dict_path, mono_bin / ".dict.txt.tmp")
    os.replace(mono_bin / ".dict.txt.tmp", mono_bin / "dict.txt")
    stats: dict[str, dict] = {}
    todo = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".ppm.") as tmpdir:
        for lang in langs:
            c: dict[str, int] = {}
            splits = []
            for split in ("train", "valid"):
                seen: set[int] = set()
                files = [p for p in (raw / f"{split}.{s}-{t}.{lang}" for s, t in directions if lang in (s, t))
                         if p.exists()]
                n = 0
                with atomic_open(mono_text / lang / f"{split}.{lang}") as f:
                    for p in files:
                        for line in read_lines(p):
                            h = text_hash(line.strip())
                            if not line.strip() or h in seen:
                                continue
                            seen.add(h)
                            f.write(" ".join(sp.encode(line, out_type=str)) + "\n")
                            n += 1
                c[split] = n
                if n:
                    splits.append(split)
            stats[lang] = c
            if "train" not in splits:
                log.warning("mono: no text for %s, skipped", lang)
                continue
            if "valid" not in splits:
                log.warning("mono: %s has no valid text", lang)
            tmp = Path(tmpdir) / lang
            todo.append((lang, tmp, splits, _mono_job(mono_text / lang, tmp, dict_path, lang, splits)))
        run_fairseq_preprocess([t[-1] for t in todo])
        for lang, tmp, splits, _ in todo:
            (mono_bin / lang).mkdir(parents=True, exist_ok=True)
            for split in splits:
                for ext in ("bin", "idx"):
                    os.replace(tmp / f"{split}.{lang}-None.{lang}.{ext}", mono_bin / lang / f"{split}.{ext}")
    return stats
