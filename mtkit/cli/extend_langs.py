"""``mtkit extend-langs``: add languages (and optionally SentencePiece pieces) to a pretrained mBART."""
from __future__ import annotations

import argparse
import logging
import os

from mtkit.cli.common import add_trust_argument

logger = logging.getLogger("mtkit.extend_langs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Add languages to a pretrained mBART-style fairseq checkpoint, as the mBART-25 -> mBART-50 extension "
        "did: new language-token rows go before <mask> (which stays last) in the encoder and decoder "
        "embeddings and the output projection. Old tokens keep their ids and rows, so outputs for the old "
        "languages do not change. Writes OUT/model.pt, OUT/dict.txt, OUT/langs.txt (+ OUT/spm.model) "
        "and OUT/extend_langs.json.")
    parser.add_argument("--checkpoint", "-c", required=True, help="fairseq checkpoint (model.pt / checkpoint_*.pt)")
    parser.add_argument("--dict", required=True, dest="dictionary",
                        help="the model's dict.txt (SentencePiece pieces only, no language tokens)")
    parser.add_argument("--langs", required=True,
                        help="the model's language list: a file (one code a line, e.g. ML50_langs.txt) or codes")
    parser.add_argument("--new-langs", required=True,
                        help="the extended list (file or codes); must start with --langs in the same order")
    parser.add_argument("--out", "-o", required=True, help="output folder")
    parser.add_argument("--init", choices=("normal", "mean"), default="normal",
                        help="new language rows: normal(0, d^-0.5) as fairseq does (default), or the mean of "
                             "the existing language tokens")
    parser.add_argument("--init-from", action="append", metavar="NEW=OLD",
                        help="copy the row of a related language, e.g. gl_ES=es_XX (repeatable)")
    parser.add_argument("--add-pieces", metavar="FILE",
                        help="new SentencePiece pieces, one a line; extends the SPM model and the dictionary; each "
                             "new row starts as the mean of the pieces the old model split it into")
    parser.add_argument("--spm-model", help="the model's SentencePiece model (copied to OUT/spm.model)")
    parser.add_argument("--lang-tok-style", choices=("mbart", "multilingual"), default=None,
                        help="language token style, only recorded for messages (default: mbart)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random initialisation")
    add_trust_argument(parser)


def run(args: argparse.Namespace) -> int:
    from mtkit.errors import InputError
    from mtkit.extend_langs import extend_model_dir

    for path, what in ((args.checkpoint, "--checkpoint"), (args.dictionary, "--dict")):
        if not os.path.isfile(path):
            raise InputError(f"{what} {path}: no such file")
    if args.add_pieces and not os.path.isfile(args.add_pieces):
        raise InputError(f"--add-pieces {args.add_pieces}: no such file")
    res = extend_model_dir(
        args.checkpoint, args.dictionary, args.langs, args.new_langs, args.out, init=args.init,
        init_from=args.init_from, add_pieces=args.add_pieces, spm_model=args.spm_model,
        style=args.lang_tok_style, seed=args.seed, trust=args.trust_checkpoint)
    logger.info("added languages: %s; added pieces: %d; vocabulary %d -> %d rows",
                " ".join(f"{lg} ({res.init[lg]})" for lg in res.added_langs) or "none",
                len(res.added_pieces), res.old_size, res.new_size)
    return 0
