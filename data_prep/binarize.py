"""`mtkit data binarize`: SentencePiece (train or apply) and fairseq's binarised format, one joined dictionary.

Outputs under OUT:
- ``spm.model`` / ``spm.vocab`` when a model is trained here;
- ``databin/``: ``{split}.{src}-{tgt}.{lang}.{bin,idx}``, ``dict.{lang}.txt`` (all identical),
  ``dict.txt`` and ``langs.txt`` (ML50 order; this order fixes the language-token ids);
- with ``mono=True``: ``databin_mono/dict.txt`` + ``databin_mono/{lang}/{train,valid}.{bin,idx}``,
  the layout of fairseq's ``multilingual_denoising`` task;
- ``manifest.json``: counts per direction and split, drops, settings, versions.

Steps: check the corpus (every file pair line-aligned, before anything is trained or written),
train or reuse the SentencePiece model, write the dictionary, encode and binarise every
(direction, split) in ``workers`` processes, copy the dictionary per language, then the optional
monolingual layout. Each step's outputs are atomic and cached by a digest of its inputs, so a
re-run (after a kill, too) redoes only what is missing, removes what a killed run left, and gives
byte-identical files.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from data_prep.corpus_files import (
    SPLITS,
    check_pairs,
    corpus_file,
    list_directions,
    progress_settings,
)
from data_prep.step_cache import StepCache
from data_prep.steps import databin
from data_prep.steps import spm as spm_step
from mtkit.errors import InputError
from mtkit.io import (
    atomic_copy,
    clean_stale_tmp,
    file_digest,
    read_lines,
    read_pairs,
    text_hash,
    versions,
    write_json,
    write_lines,
)
from mtkit.langs import ML50_LANGS, read_lang_file

log = logging.getLogger(__name__)
ENCODE_BATCH = 4096


def ordered_langs(langs: set[str], langs_file: str | None = None) -> list[str]:
    """The language list: ``langs_file`` order when given (must cover ``langs``), else ML50 order."""
    if langs_file:
        listed = read_lang_file(langs_file)
        missing = sorted(langs - set(listed))
        if missing:
            raise InputError(f"{langs_file}: does not list {', '.join(missing)}, which the corpus uses")
        return listed
    return [c for c in ML50_LANGS if c in langs] + sorted(langs - set(ML50_LANGS))


@dataclass(frozen=True)
class Vocab:
    """The SentencePiece model and fairseq dictionary every encoded file uses."""

    model: str
    dict_path: str
    settings_digest: str  # digest of model + dictionary: part of every cache key


@dataclass(frozen=True)
class EncodeJob:
    src: str
    tgt: str
    split: str
    a: Path
    b: Path
    prefix: Path  # databin/{split}.{src}-{tgt} (the language and .bin/.idx are added)
    max_pieces: int | None
    drop_empty: bool


# ------------------------------------------------------------------------------------------ steps


def check_corpus(raw: Path) -> tuple[list[tuple[str, str]], dict]:
    """Directions of ``raw`` and line counts of every file pair (refused when they differ)."""
    if not raw.is_dir():
        raise InputError(f"{raw}: not a folder (expected a raw corpus with {{split}}.{{src}}-{{tgt}}.{{lang}} files)")
    directions = list_directions(raw)
    if not directions:
        raise InputError(f"{raw}: no files named {{split}}.{{src}}-{{tgt}}.{{lang}} (e.g. train.en_XX-fr_XX.fr_XX)")
    return directions, check_pairs(raw, directions)


def train_or_reuse_spm(raw: Path, out: Path, directions, langs: list[str], vocab_size: int,
                       character_coverage: float, input_sentences: int, temperature: float,
                       workers: int) -> dict:
    """``out/spm.model`` trained on the train split, or the one a previous run trained on the same text."""
    files: dict[str, list[Path]] = {lang: [] for lang in langs}
    for src, tgt in directions:
        for lang in (src, tgt):
            p = corpus_file(raw, "train", src, tgt, lang)
            if p.exists():
                files[lang].append(p)
    settings = {"vocab": vocab_size, "cov": character_coverage, "n": input_sentences, "T": temperature}
    cache = StepCache(out, "spm_train")
    key = cache.key([p for ps in files.values() for p in ps], settings)
    if cache.is_done(key, [out / "spm.model", out / "spm.vocab"]):
        log.info("spm: inputs unchanged, reusing %s", out / "spm.model")
        return cache.info()
    log.info("spm: training a %d-piece model", vocab_size)
    info = spm_step.train(files, out, vocab_size, character_coverage=character_coverage,
                          input_sentences=input_sentences, temperature=temperature, threads=workers)
    cache.record(key, [out / "spm.model", out / "spm.vocab"], info)
    return info


def write_dictionary(model: str, databin_dir: Path, fairseq_dict: str | None) -> Vocab:
    """``databin/dict.txt``: a copy of ``fairseq_dict`` or one derived from the SentencePiece model."""
    dict_path = databin_dir / "dict.txt"
    if fairseq_dict:
        if not os.path.exists(fairseq_dict):
            raise InputError(f"{fairseq_dict}: fairseq dictionary not found")
        atomic_copy(fairseq_dict, dict_path)
    else:
        databin.write_dict_from_spm(spm_step.load(model), dict_path)
    return Vocab(model, str(dict_path), file_digest(model) + file_digest(dict_path))


def _encode_job(job: EncodeJob, vocab: Vocab, threads: int) -> Counter:
    """Encode one (direction, split) file pair and write its two binarised datasets."""
    sp = spm_step.load(vocab.model)
    index = databin.read_dictionary(vocab.dict_path)
    idmap, size = databin.id_map(sp, index), databin.dictionary_size(index)
    c: Counter = Counter()
    with databin.indexed_writer(f"{job.prefix}.{job.src}", size) as ws, \
            databin.indexed_writer(f"{job.prefix}.{job.tgt}", size) as wt:
        batch: list[tuple[str, str]] = []

        def flush() -> None:
            ea = sp.encode([x for x, _ in batch], out_type=int, num_threads=threads)
            eb = sp.encode([y for _, y in batch], out_type=int, num_threads=threads)
            keep = [(pa, pb) for pa, pb in zip(ea, eb)
                    if not (job.drop_empty and (not pa or not pb))
                    and not (job.max_pieces and (len(pa) > job.max_pieces or len(pb) > job.max_pieces))]
            c["in"] += len(batch)
            c["drop_empty"] += sum(1 for pa, pb in zip(ea, eb) if job.drop_empty and (not pa or not pb))
            c["out"] += len(keep)
            ws.add([pa for pa, _ in keep], idmap)
            wt.add([pb for _, pb in keep], idmap)
            batch.clear()

        for pair in read_pairs(job.a, job.b):
            batch.append(pair)
            if len(batch) >= ENCODE_BATCH:
                flush()
        if batch:
            flush()
    c["drop_max_pieces"] = c["in"] - c["out"] - c["drop_empty"]
    return c


def _outputs(job: EncodeJob) -> list[Path]:
    return [Path(f"{job.prefix}.{x}.{e}") for x in (job.src, job.tgt) for e in ("bin", "idx")]


def encode_splits(raw: Path, databin_dir: Path, directions, vocab: Vocab, max_pieces: int | None,
                  workers: int) -> dict[str, dict]:
    """Every (direction, split) encoded and binarised, cached per file pair; returns counts per direction."""
    jobs = []
    for src, tgt in directions:
        for split in SPLITS:
            a, b = corpus_file(raw, split, src, tgt, src), corpus_file(raw, split, src, tgt, tgt)
            if a.exists():
                jobs.append(EncodeJob(src, tgt, split, a, b, databin_dir / f"{split}.{src}-{tgt}",
                                      max_pieces if split == "train" else None, split == "train"))
    caches = {}
    todo, counts = [], {}
    for job in jobs:
        cache = StepCache(databin_dir, f"encode.{job.split}.{job.src}-{job.tgt}")
        key = cache.key([job.a, job.b], {"vocab": vocab.settings_digest, "max_pieces": job.max_pieces})
        caches[job] = (cache, key)
        if cache.is_done(key, _outputs(job)):
            counts[job] = Counter(cache.info())
        else:
            todo.append(job)
    # big files first; with fewer files than workers, SentencePiece's own threads use the rest
    todo.sort(key=lambda j: -os.path.getsize(j.a))
    threads = max(1, workers // max(1, min(workers, len(todo))))
    log.info("encode: %d of %d file pairs to binarise", len(todo), len(jobs))
    ex = ProcessPoolExecutor(workers) if workers > 1 and len(todo) > 1 else None
    try:
        results = (ex.map(_encode_job, todo, [vocab] * len(todo), [threads] * len(todo)) if ex
                   else (_encode_job(j, vocab, threads) for j in todo))
        for job, c in tqdm(zip(todo, results), total=len(todo), desc="encode", unit="file", **progress_settings()):
            cache, key = caches[job]
            cache.record(key, _outputs(job), dict(c))
            counts[job] = c
    finally:
        if ex is not None:
            ex.shutdown(cancel_futures=True)
    out: dict[str, dict] = {}
    for job in jobs:
        c = counts[job]
        out.setdefault(f"{job.src}-{job.tgt}", {})[job.split] = {
            "lines": c["in"], "kept": c["out"], "drop_max_pieces": c["drop_max_pieces"], "drop_empty": c["drop_empty"]}
    return out


def write_lang_files(databin_dir: Path, langs: list[str]) -> None:
    """``dict.{lang}.txt`` (copies of the joined dictionary) and ``langs.txt``."""
    for lang in langs:
        atomic_copy(databin_dir / "dict.txt", databin_dir / f"dict.{lang}.txt")
    write_lines(databin_dir / "langs.txt", langs)


def build_mono(raw: Path, out: Path, vocab: Vocab, directions, langs: list[str]) -> dict:
    """One deduplicated monolingual dataset per language (every side of every direction), binarised."""
    sp = spm_step.load(vocab.model)
    index = databin.read_dictionary(vocab.dict_path)
    idmap, size = databin.id_map(sp, index), databin.dictionary_size(index)
    mono = out / "databin_mono"
    atomic_copy(vocab.dict_path, mono / "dict.txt")
    stats: dict[str, dict] = {}
    for lang in langs:
        stats[lang] = {}
        for split in ("train", "valid"):
            files = [p for p in (corpus_file(raw, split, s, t, lang) for s, t in directions if lang in (s, t))
                     if p.exists()]
            if not files:
                log.warning("mono: no %s text for %s", split, lang)
                if split == "train":
                    break
                continue
            with databin.indexed_writer(mono / lang / split, size) as w:
                for batch in _batches(_unique_lines(files), ENCODE_BATCH):
                    w.add(sp.encode(batch, out_type=int), idmap)
            stats[lang][split] = w.lines
    return stats


def _unique_lines(files: list[Path]) -> Iterator[str]:
    """Non-blank lines of ``files``, each (after strip) once; holds 64-bit hashes, not the text."""
    seen: set[int] = set()
    for p in files:
        for line in read_lines(p):
            h = text_hash(line.strip())
            if line.strip() and h not in seen:
                seen.add(h)
                yield line


def _batches(items: Iterator[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for x in items:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------------------- the command


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
    """SentencePiece (apply ``spm_model`` or train one of ``spm_vocab_size``) + binarisation. Returns the manifest.

    ``fairseq_dict``: an existing fairseq dictionary (e.g. mBART's ``dict_250k.txt``) instead of one
    derived from the SentencePiece model.
    """
    raw, out = Path(raw), Path(out)
    if (spm_model is None) == (spm_vocab_size is None):
        raise InputError("give exactly one of --spm-model (apply) or --spm-vocab-size (train)")
    if spm_model is not None and not os.path.exists(spm_model):
        raise InputError(f"{spm_model}: SentencePiece model not found")
    directions, _ = check_corpus(raw)
    langs = ordered_langs({x for d in directions for x in d}, langs_file)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(out)
    manifest: dict = {"command": "mtkit data binarize", "raw": str(raw), "versions": versions(),
                      "settings": {"max_pieces": max_pieces, "mono": mono, "langs_file": langs_file}, "langs": langs}
    if spm_model is None:
        manifest["spm"] = train_or_reuse_spm(raw, out, directions, langs, spm_vocab_size, character_coverage,
                                             spm_input_sentences, spm_temperature, workers)
        model = str(out / "spm.model")
    else:
        model = spm_model
        manifest["spm"] = {"model": os.path.abspath(spm_model), "digest": file_digest(spm_model)}
    databin_dir = out / "databin"
    vocab = write_dictionary(model, databin_dir, fairseq_dict)
    manifest["directions"] = encode_splits(raw, databin_dir, directions, vocab, max_pieces, workers)
    write_lang_files(databin_dir, langs)
    if mono:
        manifest["mono"] = build_mono(raw, out, vocab, directions, langs)
    write_json(out / "manifest.json", manifest)
    return manifest
