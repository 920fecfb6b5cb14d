"""`mtkit data ...`: gettext | ml50 | flores | binarize (thin layer over data_prep modules)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from mtkit.langs import parse_lang_list

SUBVERBS = {
    "gettext": ("data_prep.cli_gettext", "real corpus from gettext catalogs (.mo/.po), offline"),
    "binarize": ("data_prep.cli_binarize", "SentencePiece (train or apply) + fairseq-preprocess"),
    "ml50": ("data_prep.ml50", "the ML50 benchmark from its public sources (or a --mirror folder)"),
    "flores": ("data_prep.flores", "read/write Flores-style dev/devtest folders"),
}


def langs_arg(text: str) -> list[str]:
    return parse_lang_list(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_verb", metavar="STEP")
    sub.required = True
    for name, (module, help_text) in SUBVERBS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                sp.set_defaults(_data_impl=None, _missing=f"{module} is not part of this install")
                continue
            raise
        mod.add_arguments(sp)
        sp.set_defaults(_data_impl=mod)


def run(args: argparse.Namespace) -> int:
    impl = getattr(args, "_data_impl", None)
    if impl is None:
        print(f"mtkit data {args.data_verb}: not available: {getattr(args, '_missing', '')}", file=sys.stderr)
        return 2
    return int(impl.run(args) or 0)


def print_summary(obj: dict) -> None:
    """The CLI's one line of result on stdout (JSON), so scripts can read it."""
    print(json.dumps(obj, ensure_ascii=False))
