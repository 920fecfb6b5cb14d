"""CLI for `mtkit data gettext` (see data_prep.gettext.build)."""
from __future__ import annotations

import argparse

from data_prep.cli import langs_arg, print_summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (raw/, flores/, manifest.json)")
    p.add_argument("--catalogs", nargs="+", default=None, metavar="PATH",
                   help="folders, .mo/.po files or tarballs of catalogs (default: /usr/share/locale)")
    p.add_argument("--langs", type=langs_arg, default=None,
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


def run(args: argparse.Namespace) -> int:
    from data_prep.gettext import build

    m = build(args.out, catalogs=args.catalogs, langs=args.langs, valid_size=args.valid_size,
              test_size=args.test_size, flores_size=args.flores_size,
              max_heldout_fraction=args.max_heldout_fraction, min_chars=args.min_chars,
              max_chars=args.max_chars, max_words=args.max_words, workers=args.workers)
    print_summary({d: {k: v[k] for k in ("train", "valid", "test")} for d, v in m["directions"].items()})
    return 0
