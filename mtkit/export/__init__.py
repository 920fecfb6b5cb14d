"""`mtkit export ct2|hf`: convert a checkpoint (read through mtkit's safe loader) for fast serving."""
from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", required=True, help="model folder or checkpoint file (see docs/translate.md)")
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--checkpoint", help="checkpoint file (overrides the one found in the folder)")
    p.add_argument("--dict", dest="dict_path", help="fairseq dictionary (dict.txt)")
    p.add_argument("--spm", dest="spm_path", help="SentencePiece model")
    p.add_argument("--langs", dest="langs_path", help="language list the model was trained with")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="load the checkpoint with full unpickling (only for files you trust)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Export a fairseq checkpoint to CTranslate2 (ct2) or Hugging Face transformers (hf)."
    sub = parser.add_subparsers(dest="export_kind", metavar="KIND", required=True)
    ct2 = sub.add_parser("ct2", help="CTranslate2 folder for `mtkit translate --engine ct2`")
    _common(ct2)
    ct2.add_argument("--quantization", default="int8",
                     choices=("int8", "float16", "float32", "int8_float32", "int8_float16", "bfloat16"),
                     help="weight type (default int8)")
    hf = sub.add_parser("hf", help="transformers MBart/M2M100 folder (dense mBART-family models)")
    _common(hf)
    hf.add_argument("--no-verify", action="store_true",
                    help="skip reloading the folder with transformers and comparing logits with fairseq")


def run(args: argparse.Namespace) -> int:
    import torch

    from mtkit.translate.model import find_files

    torch.set_num_threads(1)
    files = find_files(args.model, checkpoint=args.checkpoint, dict_path=args.dict_path,
                       spm_path=args.spm_path, langs_path=args.langs_path)
    if args.export_kind == "ct2":
        from mtkit.export.ct2 import export_ct2

        out = export_ct2(files, args.out, quantization=args.quantization, trust=args.trust_checkpoint,
                         force=args.force)
        print(out)
        return 0
    from mtkit.export import hf as hfx
    from mtkit.translate.model import build_model

    lm = build_model(files, trust=args.trust_checkpoint)
    hfx.check_mappable(lm.args, lm.model.state_dict())
    out = hfx.export_hf(files, args.out, force=args.force, loaded=lm)
    if not args.no_verify:
        src, prev = hfx.sample_ids(lm)
        diff = hfx.compare_logits(lm, out, src, prev)
        print(f"verified: max |logit difference| fairseq vs transformers = {diff:.2e}", file=sys.stderr)
        if diff >= 1e-4:
            logger.error("logits differ by %.2e (>= 1e-4): the export is not faithful", diff)
            return 1
    print(out)
    return 0
