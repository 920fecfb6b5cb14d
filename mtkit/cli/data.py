"""`mtkit data gettext|ml50|flores|binarize`: parse arguments, call the data_prep API, print one JSON line.

The only mtkit module that imports ``data_prep`` (the top layer sees both packages). The API
modules are imported inside ``run`` so that ``mtkit data --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json

from mtkit.errors import InputError
from mtkit.langs import parse_lang_list


def _print(obj: object) -> None:
    """The command's one line of result on stdout (JSON), so scripts can read it."""
    print(json.dumps(obj, ensure_ascii=False))


def _directions(text: str) -> list[tuple[str, str]]:
    out = []
    for d in text.replace(",", " ").split():
        if "-" not in d:
            raise argparse.ArgumentTypeError(f"{d!r}: a direction is SRC-TGT, e.g. en_XX-fr_XX")
        a, b = d.split("-", 1)
        out.append((a, b))
    return out


# ------------------------------------------------------------------------------------------ gettext


def _add_gettext(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (raw/, flores/, manifest.json)")
    p.add_argument("--catalogs", nargs="+", default=None, metavar="PATH",
                   help="folders, .mo/.po files or tarballs of catalogs (default: /usr/share/locale)")
    p.add_argument("--langs", type=parse_lang_list, default=None,
                   help="ML50 languages, mBART or Flores codes, comma separated (default: all present)")
    p.add_argument("--valid-size", type=int, default=1000, help="valid pairs wanted per direction")
    p.add_argument("--test-size", type=int, default=1000, help="test pairs wanted per direction")
    p.add_argument("--flores-size", type=int, default=1000, help="sentences wanted in flores dev and devtest")
    p.add_argument("--max-heldout-fraction", type=float, default=0.1,
                   help="a language never gives more than this share of its sentences to valid (or test)")
    p.add_argument("--min-chars", type=int, default=2, help="drop pairs with a side shorter than this")
    p.add_argument("--max-chars", type=int, default=1000, help="drop pairs with a side longer than this")
    p.add_argument("--max-words", type=int, default=150, help="drop pairs with a side of more words")
    p.add_argument("--workers", type=int, default=1, help="processes that parse catalogs")


def _run_gettext(args: argparse.Namespace) -> int:
    from data_prep.corpora.gettext import build

    m = build(args.out, catalogs=args.catalogs, langs=args.langs, valid_size=args.valid_size,
              test_size=args.test_size, flores_size=args.flores_size,
              max_heldout_fraction=args.max_heldout_fraction, min_chars=args.min_chars,
              max_chars=args.max_chars, max_words=args.max_words, workers=args.workers)
    _print({d: {k: v[k] for k in ("train", "valid", "test")} for d, v in m["directions"].items()})
    return 0


# ------------------------------------------------------------------------------------------ ml50


def _add_ml50(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="work folder (downloads/, raw/, dedup/, clean/, bin/)")
    p.add_argument("--langs", type=parse_lang_list, default=None, help="ML50 languages (default: all 51)")
    p.add_argument("--mirror", default=None,
                   help="read every file from DIR/<host>/<path of URL> instead of the network")
    p.add_argument("--steps", default=None,
                   help="comma list from download,extract,dedup,clean,binarize "
                        "(default: all; binarize only with an SPM option)")
    p.add_argument("--manual-dir", default=None,
                   help="where manual sources (CzEng, Yandex, CWMT) are placed (default OUT/manual)")
    p.add_argument("--no-checksums", action="store_true", help="do not check sacrebleu md5 sums of mirror files")
    p.add_argument("--lid", default=None, metavar="ENGINE",
                   help="language-ID filter: 'pycld2' (model inside the wheel, offline) or 'fasttext:PATH' "
                        "(a lid.176.bin model; needs `pip install fasttext`)")
    p.add_argument("--max-chars", type=int, default=1000, help="drop pairs with a side longer than this")
    p.add_argument("--max-ratio", type=float, default=3.0, help="max length ratio (chars) of the two sides")
    p.add_argument("--max-memory-mb", type=int, default=512, help="memory budget of dedup")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--spm-model", default=None, help="SPM model for binarize (mBART's sentence.bpe.model)")
    g.add_argument("--spm-vocab-size", type=int, default=None, help="train an SPM model of this size")
    p.add_argument("--workers", type=int, default=1, help="processes (and SentencePiece threads)")


def _run_ml50(args: argparse.Namespace) -> int:
    from data_prep.corpora.ml50 import build
    from data_prep.steps.filters import FilterSettings

    steps = tuple(s.strip() for s in args.steps.split(",")) if args.steps else None
    fs = FilterSettings(max_chars=args.max_chars, max_ratio=args.max_ratio, lid=args.lid)
    m = build(args.out, langs=args.langs, mirror=args.mirror, steps=steps, manual_dir=args.manual_dir,
              workers=args.workers, verify_checksums=not args.no_checksums, filters=fs,
              spm_model=args.spm_model, spm_vocab_size=args.spm_vocab_size, max_memory_mb=args.max_memory_mb)
    status = {k: v.get("status") for k, v in m["languages"].items()}
    _print(status)
    return 0 if all(s and s.startswith("ok") for s in status.values() if s != "unavailable") else 1


# ------------------------------------------------------------------------------------------ flores


def _add_flores(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="flores_verb", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("read", help="Flores-200 folder -> ML50-style valid/test files")
    r.add_argument("--flores", required=True, help="folder with dev/ and devtest/ (flores200_dataset)")
    r.add_argument("--out", required=True, help="folder for valid.* (from dev) and test.* (from devtest)")
    r.add_argument("--directions", required=True, type=_directions, help="e.g. en_XX-fr_XX,eng_Latn-sin_Sinh")
    r.add_argument("--codes", choices=("mbart", "flores"), default="mbart", help="language codes in file names")
    w = sub.add_parser("write", help="multi-way parallel source -> Flores-style dev/devtest folders")
    w.add_argument("--out", required=True)
    g = w.add_mutually_exclusive_group(required=True)
    g.add_argument("--raw", help="raw folder whose directions share --pivot; valid -> dev, test -> devtest")
    g.add_argument("--files", nargs="+", metavar="CODE=PATH", help="line-aligned files, one per language")
    w.add_argument("--split", default="dev", choices=("dev", "devtest"), help="split written by --files")
    w.add_argument("--pivot", default="en_XX")


def _run_flores(args: argparse.Namespace) -> int:
    from data_prep.corpora.flores import read_flores, write_from_files, write_from_raw
    from mtkit.langs import normalize

    if args.flores_verb == "read":
        _print(read_flores(args.flores, args.out, args.directions, args.codes))
    elif args.files:
        files = {}
        for item in args.files:
            if "=" not in item:
                raise InputError(f"{item!r}: give CODE=PATH, e.g. fra_Latn=fr.txt")
            code, path = item.split("=", 1)
            files[code] = path
        _print({args.split: write_from_files(files, args.out, args.split)})
    else:
        _print(write_from_raw(args.raw, args.out, pivot=normalize(args.pivot, "mbart")))
    return 0


# ------------------------------------------------------------------------------------------ binarize


def _add_binarize(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", required=True, help="folder of {split}.{src}-{tgt}.{lang} text files")
    p.add_argument("--out", required=True, help="output folder (spm.model, databin/, manifest.json)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--spm-model", help="apply this SentencePiece model (e.g. mBART's sentence.bpe.model)")
    g.add_argument("--spm-vocab-size", type=int, help="train a SentencePiece model of this size on train")
    p.add_argument("--dict", dest="fairseq_dict", default=None,
                   help="use this fairseq dictionary (e.g. dict_250k.txt) instead of one made from the SPM model")
    p.add_argument("--langs-file", default=None,
                   help="language list to write as databin/langs.txt (default: ML50 order of the corpus languages)")
    p.add_argument("--max-pieces", type=int, default=None, help="drop training pairs with a side of more pieces")
    p.add_argument("--character-coverage", type=float, default=0.9995, help="SentencePiece character_coverage")
    p.add_argument("--spm-input-sentences", type=int, default=2_000_000,
                   help="sentences sampled (temperature-balanced per language) to train SentencePiece")
    p.add_argument("--spm-temperature", type=float, default=5.0,
                   help="sampling temperature for SPM training text: p ∝ n^(1/T)")
    p.add_argument("--mono", action="store_true",
                   help="also write databin_mono/ for fairseq's multilingual_denoising task")
    p.add_argument("--workers", type=int, default=1, help="processes (and SentencePiece threads)")


def _run_binarize(args: argparse.Namespace) -> int:
    from data_prep.binarize import binarize

    m = binarize(args.raw, args.out, spm_model=args.spm_model, spm_vocab_size=args.spm_vocab_size,
                 langs_file=args.langs_file, max_pieces=args.max_pieces, workers=args.workers, mono=args.mono,
                 character_coverage=args.character_coverage, spm_input_sentences=args.spm_input_sentences,
                 spm_temperature=args.spm_temperature, fairseq_dict=args.fairseq_dict)
    _print({"databin": f"{args.out}/databin", "langs": m["langs"]})
    return 0


_SUB = {
    "gettext": (_add_gettext, _run_gettext, "real corpus from gettext catalogs (.mo/.po), offline"),
    "ml50": (_add_ml50, _run_ml50, "the ML50 benchmark from its public sources (or a --mirror folder)"),
    "flores": (_add_flores, _run_flores, "read/write Flores-style dev/devtest folders"),
    "binarize": (_add_binarize, _run_binarize, "SentencePiece (train or apply) + fairseq's binarised format"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_verb", metavar="STEP")
    sub.required = True
    for name, (add, _, help_text) in _SUB.items():
        sp = sub.add_parser(name, help=help_text, description=help_text,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add(sp)


def run(args: argparse.Namespace) -> int:
    return _SUB[args.data_verb][1](args)
