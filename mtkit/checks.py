"""Pre-flight checks (``mtkit check``): catch inconsistent inputs before fairseq does.

The classic failure (fairseq issue #3474) is an embedding size mismatch deep inside fairseq-train when
the dictionary / language list do not produce the checkpoint's vocabulary: fairseq builds the
vocabulary as ``4 specials + dict.txt + one token per language (+ <mask>)``. :func:`check_vocab`
compares the checkpoint's embedding rows with that count and says exactly what is wrong;
:func:`check_databin` and :func:`check_mono` check binarised data; :func:`check_checkpoint` lists
what a checkpoint's pickle would import. Each returns a one-line "ok" summary or raises
:class:`InputError`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from mtkit.errors import InputError
from mtkit.extend_langs import NUM_SPECIALS, infer_layout, read_dict_symbols, read_langs
from mtkit.langs import parse_pairs

logger = logging.getLogger(__name__)


def checkpoint_vocab_rows(path: str | os.PathLike, trust: bool = False) -> tuple[int, int]:
    """(rows, dim) of the checkpoint's token embedding, read memory-mapped (cheap for 2 GB files)."""
    from mtkit import checkpoint as ckpt_io

    try:
        state = ckpt_io.load(path, trust=trust, mmap=True)
    except (RuntimeError, ValueError):  # legacy (non-zip) files cannot be memory-mapped
        state = ckpt_io.load(path, trust=trust)
    model = state.get("model", state) if isinstance(state, dict) else None
    for key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        if isinstance(model, dict) and key in model:
            rows, dim = model[key].shape
            return int(rows), int(dim)
    raise InputError(f"{path}: no encoder.embed_tokens.weight in the checkpoint; not a fairseq mBART/transformer")


def check_vocab(checkpoint: str | os.PathLike, dictionary: str | os.PathLike, langs: str | os.PathLike,
                expect_mask: str = "auto", trust: bool = False) -> str:
    """Raise InputError naming the problem when checkpoint rows != dict + language tokens (+ <mask>)."""
    for p, what in ((checkpoint, "checkpoint"), (dictionary, "dictionary")):
        if not os.path.isfile(p):
            raise InputError(f"{what} {p}: no such file")
    symbols = read_dict_symbols(dictionary)
    lang_list = read_langs(langs)
    rows, dim = checkpoint_vocab_rows(checkpoint, trust=trust)
    where = f"checkpoint {checkpoint}"
    try:
        layout = infer_layout(rows, symbols, lang_list, where=where)
    except InputError as e:
        raise InputError(f"{e} [dictionary {dictionary}: {len(symbols)} entries; language list {langs}: "
                         f"{len(lang_list)} languages]") from None
    if expect_mask == "yes" and not layout.has_mask:
        raise InputError(
            f"{where} has {rows} rows = {NUM_SPECIALS} + {len(symbols)} + {len(lang_list)} languages and NO <mask> "
            "row, but this recipe uses mBART-style tokens (--lang-tok-style mbart adds <mask>): it is a "
            "translation model with __xx__ tokens; use --lang-tok-style multilingual for it")
    if expect_mask == "no" and layout.has_mask:
        raise InputError(f"{where} has a <mask> row (mBART-style), but the recipe was told to expect none")
    return (f"ok: {checkpoint}: {rows} x {dim} = {NUM_SPECIALS} specials + {len(symbols)} pieces + "
            f"{len(lang_list)} language tokens{' + <mask>' if layout.has_mask else ''}")


def _same_file(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def check_databin(databin: str | os.PathLike, langs: str | os.PathLike, pairs: str, split: str = "train",
                  ref_dict: str | os.PathLike | None = None) -> str:
    """Every pair has its binarised files, every dict.{lang}.txt is identical (and equals ref_dict)."""
    d = Path(databin)
    if not d.is_dir():
        raise InputError(f"databin {d}: no such folder (run `mtkit data binarize` first)")
    lang_list = read_langs(langs)
    missing, dicts = [], set()
    for src, tgt in parse_pairs(pairs):
        pair = f"{src}-{tgt}"
        for lg in (src, tgt):
            if lg not in lang_list:
                raise InputError(f"pair {pair}: {lg} is not in the language list {langs} ({' '.join(lang_list)})")
            dicts.add(lg)
        fwd = d / f"{split}.{src}-{tgt}.{src}.idx"
        rev = d / f"{split}.{tgt}-{src}.{src}.idx"
        if not (fwd.exists() or rev.exists()):
            missing.append(f"{split}.{src}-{tgt}.{{{src},{tgt}}}.bin/idx")
    if missing:
        raise InputError(f"databin {d} lacks: {', '.join(missing)}")
    files = [d / f"dict.{lg}.txt" for lg in sorted(dicts)]
    absent = [str(f) for f in files if not f.exists()]
    if absent:
        raise InputError(f"databin {d} lacks dictionaries: {' '.join(absent)}")
    for f in files[1:]:
        if not _same_file(files[0], f):
            raise InputError(f"{f} differs from {files[0]}: translation_multi_simple_epoch needs one joined "
                             "dictionary (fairseq-preprocess --joined-dictionary / --srcdict)")
    if ref_dict and not _same_file(files[0], Path(ref_dict)):
        raise InputError(f"{files[0]} differs from the model's dictionary {ref_dict}: binarise with the model's "
                         "SPM and dictionary (mtkit data binarize --spm-model ... / fairseq-preprocess --srcdict)")
    return f"ok: {d}: {len(dicts)} languages, one shared dictionary ({len(read_dict_symbols(files[0]))} entries)"


def check_mono(databin: str | os.PathLike, langs: str | os.PathLike, split: str = "train") -> str:
    """multilingual_denoising layout: dict.txt and {lang}/{split}.bin/idx for every language."""
    d = Path(databin)
    if not (d / "dict.txt").is_file():
        raise InputError(f"{d}/dict.txt: no such file (run `mtkit data binarize --mono` first)")
    missing = [f"{lg}/{split}.idx" for lg in read_langs(langs) if not (d / lg / f"{split}.idx").exists()]
    if missing:
        raise InputError(f"monolingual databin {d} lacks {' '.join(missing)}")
    return f"ok: {d}: monolingual data for {langs}"


def check_checkpoint(path: str | os.PathLike) -> str:
    """Raise :class:`~mtkit.checkpoint.UnsafeCheckpointError` when the checkpoint's pickle references a
    global outside the safe loader's allow-list (a static scan: nothing in the file is run)."""
    from mtkit.checkpoint import UnsafeCheckpointError, scan_globals

    if not os.path.isfile(path):
        raise InputError(f"checkpoint {path}: no such file")
    bad = scan_globals(path)
    if bad:
        raise UnsafeCheckpointError(str(path), bad)
    return f"ok: {path}: references only types that fairseq checkpoints contain"
