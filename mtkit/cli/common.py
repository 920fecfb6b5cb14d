"""Argument groups that several verbs share."""
from __future__ import annotations

import argparse


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="load the checkpoint with full unpickling (only for files whose origin you trust)")


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """A model folder and the overrides of its pieces (see mtkit.model_folder.find_files).

    ``required=False`` for verbs that also have a mode without a model (they check it themselves).
    """
    parser.add_argument("-m", "--model", required=required,
                        help="model folder or checkpoint file (see docs/translate.md)")
    parser.add_argument("--checkpoint", help="checkpoint file (overrides the one found in the folder)")
    parser.add_argument("--dict", dest="dict_path", help="fairseq dictionary (dict.txt)")
    parser.add_argument("--spm", dest="spm_path", help="SentencePiece model")
    parser.add_argument("--langs", dest="langs_path", help="language list the model was trained with")
    add_trust_argument(parser)
