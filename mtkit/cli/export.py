"""``mtkit export ct2|hf``: convert a checkpoint (read through mtkit's safe loader) for fast serving."""
from __future__ import annotations

import argparse

from mtkit.cli.common import add_model_arguments


def _common(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mtkit.export.ct2 import QUANTIZATIONS

    parser.description = "Export a fairseq checkpoint to CTranslate2 (ct2) or Hugging Face transformers (hf)."
    sub = parser.add_subparsers(dest="export_kind", metavar="KIND", required=True)
    ct2 = sub.add_parser("ct2", help="CTranslate2 folder for `mtkit translate --engine ct2`")
    _common(ct2)
    ct2.add_argument("--quantization", default="int8", choices=QUANTIZATIONS, help="weight type (default int8)")
    hf = sub.add_parser("hf", help="transformers MBart/M2M100 folder (dense mBART-family models)")
    _common(hf)
    hf.add_argument("--no-verify", action="store_true",
                    help="skip reloading the folder with transformers and comparing logits with fairseq")


def run(args: argparse.Namespace) -> int:
    import torch

    from mtkit.model_folder import find_files

    torch.set_num_threads(1)
    files = find_files(args.model, checkpoint=args.checkpoint, dict_path=args.dict_path,
                       spm_path=args.spm_path, langs_path=args.langs_path)
    if args.export_kind == "ct2":
        from mtkit.export.ct2 import export_ct2

        out = export_ct2(files, args.out, quantization=args.quantization, trust=args.trust_checkpoint,
                         force=args.force)
    else:
        from mtkit.export.hf import export_hf

        out = export_hf(files, args.out, trust=args.trust_checkpoint, force=args.force, verify=not args.no_verify)
    print(out)
    return 0
