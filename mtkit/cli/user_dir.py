"""``mtkit user-dir``: print the folder to pass to fairseq as ``--user-dir``."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the directory to pass to fairseq as --user-dir. fairseq then imports mtkit, which installs "
        "mtkit's fairseq patches (safe checkpoint loader, ...; see `mtkit doctor`) and registers its "
        "models and criteria.")


def run(args: argparse.Namespace) -> int:
    from mtkit.plugin import user_dir

    print(user_dir())
    return 0
