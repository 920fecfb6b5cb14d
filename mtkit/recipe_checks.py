"""Early checks for the mBART-50 recipes: catch inconsistent inputs before fairseq does.

The classic failure (fairseq issue #3474) is an embedding size mismatch deep inside fairseq-train when
the dictionary / language list do not produce the checkpoint's vocabulary: fairseq builds the
vocabulary as ``4 specials + dict.txt + one token per language (+ <mask>)``. This module compares the
checkpoint's embedding rows with that count and says exactly what is wrong.

    python -m mtkit.recipe_checks vocab --checkpoint model.pt --dict dict.txt --langs ML50_langs.txt \
        [--expect-mask yes|no|auto]
    python -m mtkit.recipe_checks databin --databin DIR --langs FILE --pairs en_XX-fr_XX,... [--split train]
    python -m mtkit.recipe_checks mono --databin DIR --langs en_XX,fr_XX [--split train]

Exit status 0 when consistent, 2 with a message otherwise.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mtkit.errors import InputError, MtkitError
from mtkit.extend_langs import NUM_SPECIALS, infer_layout, read_dict_symbols, read_langs

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
    for pair in [p for p in pairs.replace(",", " ").split() if p]:
        if pair.count("-") != 1:
            raise InputError(f"language pair {pair!r} is not SRC-TGT")
        src, tgt = pair.split("-")
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


def stop_time_hours(budget_hours: float, init_checkpoint: str | os.PathLike | None = None,
                    trust: bool = False) -> float:
    """The --stop-time-hours that gives a stage ``budget_hours`` of training of its own.

    fairseq restores ``previous_training_time`` from any checkpoint it starts from, even with
    --finetune-from-model / --reset-meters, and --stop-time-hours compares against that cumulative
    time; without this a stage initialised from a checkpoint trained for longer than its own budget
    stops after one update. 0 keeps "no time limit".
    """
    if budget_hours <= 0 or not init_checkpoint:
        return budget_hours
    from mtkit.checkpoint import load

    state = load(init_checkpoint, trust=trust)
    previous = float((state.get("extra_state") or {}).get("previous_training_time") or 0.0)
    return budget_hours + previous / 3600.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtkit.recipe_checks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("vocab", help="checkpoint rows vs dict + language tokens (+ <mask>)")
    v.add_argument("--checkpoint", required=True)
    v.add_argument("--dict", required=True)
    v.add_argument("--langs", required=True)
    v.add_argument("--expect-mask", choices=("yes", "no", "auto"), default="auto")
    v.add_argument("--trust-checkpoint", action="store_true")
    b = sub.add_parser("databin", help="parallel databin: files per pair, one shared dictionary")
    b.add_argument("--databin", required=True)
    b.add_argument("--langs", required=True)
    b.add_argument("--pairs", required=True)
    b.add_argument("--split", default="train")
    b.add_argument("--dict", default=None, help="the model's dictionary, which the databin's must equal")
    m = sub.add_parser("mono", help="monolingual (denoising) databin")
    m.add_argument("--databin", required=True)
    m.add_argument("--langs", required=True)
    m.add_argument("--split", default="train")
    t = sub.add_parser("stop-time", help="--stop-time-hours for a stage budget, counting the training time "
                       "fairseq carries over from the checkpoint the stage starts from (printed on stdout)")
    t.add_argument("--hours", type=float, required=True, help="the stage's own budget in hours (0: none)")
    t.add_argument("--checkpoint", default=None, help="the checkpoint the stage is initialised from")
    t.add_argument("--trust-checkpoint", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.what == "stop-time":
            print(f"{stop_time_hours(args.hours, args.checkpoint, args.trust_checkpoint):.6f}")
            return 0
        if args.what == "vocab":
            msg = check_vocab(args.checkpoint, args.dict, args.langs, args.expect_mask, args.trust_checkpoint)
        elif args.what == "databin":
            msg = check_databin(args.databin, args.langs, args.pairs, args.split, args.dict)
        else:
            msg = check_mono(args.databin, args.langs, args.split)
    except MtkitError as e:
        print(f"recipe check failed: {e}", file=sys.stderr)
        return 2
    print(msg, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
