"""The ``mtkit`` console script: one module per verb in this package, a thin layer over the API.

Each verb module (``mtkit/cli/<verb>.py``) provides ``add_arguments(parser)`` and ``run(args) -> int``:
it parses arguments, calls the API and prints; it holds no logic of its own. Modules are imported
only when their verb is used, so ``mtkit --help`` stays fast and never imports fairseq or torch.
To add a verb: write its module here and add one line to :data:`VERBS`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# verb -> (module, one-line help). Order is the order shown by --help.
VERBS: dict[str, tuple[str, str]] = {
    "data": ("mtkit.cli.data", "build corpora: gettext | ml50 | flores | binarize"),
    "extend-langs": ("mtkit.cli.extend_langs", "add languages to a pretrained mBART checkpoint"),
    "translate": ("mtkit.cli.translate", "translate files or stdin to stdout with a trained model"),
    "evaluate": ("mtkit.cli.evaluate", "BLEU / spBLEU / chrF++ / added toxicity, one or many directions"),
    "compare": ("mtkit.cli.compare", "compare systems: paired significance, error analyses, examples (HTML)"),
    "export": ("mtkit.cli.export", "export a checkpoint to CTranslate2 (ct2) or Hugging Face (hf)"),
    "check": ("mtkit.cli.check", "pre-flight checks: vocab | databin | mono | checkpoint"),
    "tune": ("mtkit.cli.tune", "PBT, PB2, grid / random sweeps of fairseq runs on Ray Tune"),
    "doctor": ("mtkit.cli.doctor", "report what is installed and usable; non-zero exit when broken"),
    "user-dir": ("mtkit.cli.user_dir", "print the directory to pass to fairseq as --user-dir"),
    "scaling": ("mtkit.cli.scaling", "fit scaling laws: BLEU log-law, cross-entropy power law, Chinchilla"),
}

EPILOG = """\
Recipes call fairseq directly with the plugin, e.g.
  fairseq-train DATA --user-dir "$(mtkit user-dir)" ...
Run `mtkit VERB --help` for the options of a verb.
"""


class _MissingVerb:
    """Stands in for a verb whose module is not importable (names the reason)."""

    def __init__(self, verb: str, error: Exception):
        self.verb, self.error = verb, error

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("rest", nargs=argparse.REMAINDER)

    def run(self, args: argparse.Namespace) -> int:
        print(f"mtkit {self.verb}: not available: {self.error}", file=sys.stderr)
        return 2


def _load(verb: str):
    module_name = VERBS[verb][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            return _MissingVerb(verb, f"module {module_name} is not part of this install")
        raise
    return module


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtkit",
        description="mtkit: multilingual machine translation on fairseq (mBART-50 / ML50, NLLB MoE).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (_, help_text) in VERBS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == verb:
            impl = _load(name)
            impl.add_arguments(sp)
            sp.set_defaults(_impl=impl)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in VERBS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
        stream=sys.stderr,
    )
    if not args.verb:
        parser.print_help()
        return 0
    from mtkit.errors import MtkitError
    from mtkit.langs import UnknownLanguageError

    try:
        return int(args._impl.run(args) or 0)
    except (MtkitError, UnknownLanguageError) as e:
        print(f"mtkit {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0

