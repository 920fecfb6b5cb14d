"""BLEU and spBLEU through sacrebleu, with the tokeniser chosen from the target language.

sacrebleu computes every number; this module only chooses the tokeniser and makes sure nothing is
downloaded. sacrebleu's ``flores101``/``flores200`` tokenisers fetch their SentencePiece model at
first use and take no path, so for spBLEU we tokenise with the user's local model ourselves (the same
``" ".join(EncodeAsPieces(line))`` sacrebleu does) and put the model's file name and hash into the
signature instead of claiming ``tok:flores200``.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from sacrebleu.metrics import BLEU

from mtkit.errors import MtkitError
from mtkit.evaluation.base import MetricResult, metric_result
from mtkit.io import file_digest
from mtkit.langs import to_flores

#: Flores-200 code -> sacrebleu tokeniser for BLEU; everything else uses 13a.
LANG_TOKENIZERS: dict[str, str] = {
    "zho_Hans": "zh",
    "zho_Hant": "zh",
    "yue_Hant": "zh",
    "jpn_Jpan": "ja-mecab",
    "kor_Hang": "ko-mecab",
}
DEFAULT_TOKENIZER = "13a"

#: sacrebleu tokenisers that would download a SentencePiece model at first use.
SPM_TOKENIZERS = ("spm", "flores101", "flores200", "spBLEU-1K")

#: tokeniser -> (mtkit extra that installs it, sacrebleu extra)
_EXTRAS = {"ja-mecab": "ja", "ko-mecab": "ko"}


def default_tokenizer(tgt_lang: str) -> str:
    """The BLEU tokeniser for a target language (mBART or Flores code)."""
    return LANG_TOKENIZERS.get(to_flores(tgt_lang), DEFAULT_TOKENIZER)


class SpmTokenizer:
    """SentencePiece tokenisation from a local model file, as sacrebleu's spm tokenisers do it.

    ``label`` names the model the user says this is (``flores101``, ``flores200`` or anything); the
    signature adds the file name and the first 12 hex digits of its SHA-256 so the claim can be checked.
    """

    def __init__(self, model_path: str | os.PathLike, label: str = "spm"):
        import sentencepiece as spm

        path = Path(model_path)
        if not path.is_file():
            raise MtkitError(
                f"SentencePiece model {path} not found; give the path of a local .model file "
                "(e.g. the Flores-200 sacrebleu model 'flores200sacrebleuspm')"
            )
        self.path = path
        self.label = label
        self.sha256 = file_digest(path, "sha256")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(path))
        except (OSError, RuntimeError) as e:
            raise MtkitError(f"{path}: not a SentencePiece model ({e})") from None

    @functools.lru_cache(maxsize=2**16)  # noqa: B019 - one model per run, cache like sacrebleu's
    def __call__(self, line: str) -> str:
        return " ".join(self.sp.EncodeAsPieces(line))

    def signature(self) -> str:
        return f"{self.label}@{self.path.name}#sha256:{self.sha256[:12]}"


@functools.lru_cache(maxsize=8)
def load_spm_tokenizer(model_path: str, label: str = "spm") -> SpmTokenizer:
    """Load (once per path and label) a local SentencePiece tokeniser."""
    return SpmTokenizer(model_path, label)


def check_tokenizer(name: str) -> None:
    """Fail with what to install when a tokeniser's optional dependencies are missing."""
    from sacrebleu.metrics.bleu import _TOKENIZERS

    if name in SPM_TOKENIZERS:
        raise MtkitError(
            f"tokeniser {name!r} needs a SentencePiece model: sacrebleu would download it, mtkit does "
            "not; pass the local model with --spm-model PATH (spm_model=PATH in Python)"
        )
    if name not in _TOKENIZERS:
        raise MtkitError(f"unknown BLEU tokeniser {name!r}; choose one of: {', '.join(_TOKENIZERS)}")
    if name in _EXTRAS:
        try:
            _make_bleu(name)
        except (ImportError, RuntimeError) as e:
            extra = _EXTRAS[name]
            raise MtkitError(
                f"BLEU tokeniser {name!r} needs MeCab and its dictionary, which are not installed "
                f"({str(e).strip().splitlines()[0]}); install them with: pip install 'mtkit[{extra}]' "
                f"(or pip install 'sacrebleu[{extra}]'), or choose another tokeniser with --tokenize"
            ) from None


def _make_bleu(tokenize: str, lowercase: bool = False) -> BLEU:
    return BLEU(tokenize=tokenize, lowercase=lowercase)


def make_bleu(tokenize: str = DEFAULT_TOKENIZER, spm: SpmTokenizer | None = None,
              lowercase: bool = False) -> BLEU:
    """A sacrebleu BLEU object; with ``spm`` it tokenises with the local model (spBLEU)."""
    if spm is None:
        check_tokenizer(tokenize)
        return _make_bleu(tokenize, lowercase)
    bleu = BLEU(tokenize="none", lowercase=lowercase)
    bleu.tokenizer = spm
    bleu.tokenizer_signature = spm.signature()
    return bleu


def corpus_bleu(hyps: list[str], refs: list[str], tokenize: str = DEFAULT_TOKENIZER,
                spm: SpmTokenizer | None = None, lowercase: bool = False,
                name: str = "bleu") -> MetricResult:
    """Corpus BLEU (one reference) with its signature and n-gram details."""
    return metric_result(name, make_bleu(tokenize, spm, lowercase), hyps, refs)
