"""Parse fairseq-generate output into hypotheses aligned by sentence id.

fairseq-generate prints results in batch order, not input order (``S-12``, ``T-12``, ``H-12``,
``D-12``, ``P-12`` ...), and silently skips inputs longer than the model's limits. So we sort by id,
never by position, and refuse to score when ids are missing: shifting the remaining lines would pair
every later hypothesis with the wrong reference.

Cleaning follows the NLLB / ML50 evaluation scripts: take ``D-`` lines (detokenised) if present, else
``H-``; remove SentencePiece (``▁``) or subword-nmt (``@@ ``) segmentation if it is still there;
drop language tokens (``__de_DE__``, ``__eng_Latn__``, ``[de_DE]``) and NLLB data tags
(``<MINED_DATA>``, ``<MMT_BT_DATA>`` ...).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from mtkit.errors import InputError

_LINE = re.compile(r"^([SHDTP])-(\d+)(?:\t(.*))?$")
_LANG_TOKEN = re.compile(r"^(?:__[a-z]{2,3}(?:_[A-Za-z]{2,4})?__|\[[a-z]{2,3}_[A-Za-z]{2,4}\])$")
_DATA_TAG = re.compile(r"^<[A-Z0-9_]*DATA[A-Z0-9_]*>$")
_SPM = "\u2581"
REMOVE_BPE = ("auto", "sentencepiece", "subword_nmt", "none")


@dataclass
class GenerateOutput:
    """What one fairseq-generate output file holds, by sentence id (first hypothesis per id)."""

    path: str
    hyps: dict[int, str] = field(default_factory=dict)     # chosen (D- or H-) text, uncleaned
    sources: dict[int, str] = field(default_factory=dict)  # S- lines
    targets: dict[int, str] = field(default_factory=dict)  # T- lines
    kind: str = "D"                                        # which lines gave the hypotheses

    def missing_ids(self, expected: int | None = None) -> list[int]:
        """Ids absent from ``0..expected-1`` (or from ``0..max id`` when ``expected`` is None)."""
        n = expected if expected is not None else (max(self.hyps) + 1 if self.hyps else 0)
        return [i for i in range(n) if i not in self.hyps]


def is_generate_output(path: str | os.PathLike, probe: int = 50) -> bool:
    """True if one of the first ``probe`` lines looks like a fairseq-generate result line."""
    with open(path, "rb") as f:
        for _, raw in zip(range(probe), f):
            if _LINE.match(raw.decode("utf-8", errors="replace").rstrip()):
                return True
    return False


def read_generate_output(path: str | os.PathLike, prefer: str = "D") -> GenerateOutput:
    """Collect S/T/H/D lines by id. ``prefer`` is ``"D"`` (detokenised) or ``"H"``."""
    from mtkit.evaluation.inputs import read_lines

    if prefer not in ("D", "H"):
        raise ValueError("prefer must be 'D' or 'H'")
    found: dict[str, dict[int, str]] = {k: {} for k in "SHDT"}
    for line in read_lines(path):
        m = _LINE.match(line)
        if not m:
            continue  # log lines, the final "Generate test with beam=5: BLEU4 = ..." line
        kind, idx, rest = m.group(1), int(m.group(2)), m.group(3) or ""
        if kind == "P":
            continue
        if kind in "HD":
            # "<score>\t<text>"; the text may be empty
            text = rest.split("\t", 1)[1] if "\t" in rest else ""
        else:
            text = rest
        found[kind].setdefault(idx, text)  # with --nbest > 1 the first one is the best
    other = "H" if prefer == "D" else "D"
    kind = prefer if found[prefer] else other
    if not found[kind]:
        raise InputError(
            f"{path}: no H-/D- lines found; expected fairseq-generate output "
            "(lines like 'H-0<TAB>-0.51<TAB>text')"
        )
    return GenerateOutput(str(path), found[kind], found["S"], found["T"], kind)


def detect_segmentation(texts: list[str]) -> str:
    """``sentencepiece`` if any text has ``▁``, ``subword_nmt`` if any has ``@@``, else ``none``."""
    if any(_SPM in t for t in texts):
        return "sentencepiece"
    if any("@@ " in t or t.endswith("@@") for t in texts):
        return "subword_nmt"
    return "none"


def clean_hypothesis(text: str, remove_bpe: str = "none") -> str:
    """Drop language tokens and data tags, then undo the subword segmentation."""
    tokens = [t for t in text.split() if not (_LANG_TOKEN.match(t) or _DATA_TAG.match(t)
                                              or _LANG_TOKEN.match(t.lstrip(_SPM))
                                              or _DATA_TAG.match(t.lstrip(_SPM)))]
    if remove_bpe == "sentencepiece":
        return "".join(tokens).replace(_SPM, " ").strip()
    if remove_bpe == "subword_nmt":
        return (" ".join(tokens) + " ").replace("@@ ", "").rstrip()
    if remove_bpe == "none":
        return " ".join(tokens)
    raise ValueError(f"remove_bpe must be one of {REMOVE_BPE}, not {remove_bpe!r}")


def align_generate_output(path: str | os.PathLike, expected_lines: int | None = None,
                          prefer: str = "D", remove_bpe: str = "auto") -> tuple[list[str], list[int]]:
    """Cleaned hypotheses by sentence id (``""`` where an id is missing) and the missing ids.

    ``expected_lines``: the reference's line count; ids ``0..expected_lines-1`` are expected (without
    it only gaps below the largest id can be detected); an id beyond it is an error.
    """
    out = read_generate_output(path, prefer)
    if remove_bpe == "auto":
        remove_bpe = detect_segmentation(list(out.hyps.values()))
    extra = sorted(i for i in out.hyps if expected_lines is not None and i >= expected_lines)
    if extra:
        raise InputError(
            f"{path}: has hypotheses for ids {_ids(extra)} but the reference has only {expected_lines} "
            "lines (ids 0..{}); is this the output for another test set?".format(expected_lines - 1)
        )
    n = expected_lines if expected_lines is not None else (max(out.hyps) + 1 if out.hyps else 0)
    hyps = [clean_hypothesis(out.hyps[i], remove_bpe) if i in out.hyps else "" for i in range(n)]
    return hyps, out.missing_ids(expected_lines)


def missing_ids_error(path: str | os.PathLike, missing_ids: list[int], n: int, remedy: str) -> InputError:
    """The error for ids missing from fairseq-generate output; ``remedy`` names the option that
    accepts them."""
    return InputError(
        f"{path}: no hypothesis for {len(missing_ids)} of {n} sentence ids: {_ids(missing_ids)}. "
        "fairseq-generate silently skips inputs longer than the model's limits "
        "(--max-source-positions, --skip-invalid-size-inputs-valid-test) and, when --batch-size is "
        "not a multiple of --required-batch-size-multiple (default 8), sentences that do not fill a "
        "batch; the lines cannot be aligned by position. Re-generate (larger limits, --batch-size a "
        f"multiple of 8), or {remedy}"
    )


def parse_generate_output(path: str | os.PathLike, expected_lines: int | None = None,
                          prefer: str = "D", remove_bpe: str = "auto",
                          missing: str = "error") -> list[str]:
    """Hypotheses of a fairseq-generate output file in input order (index = sentence id).

    ``expected_lines``: the reference's line count; ids ``0..expected_lines-1`` must all be present
    (without it only gaps below the largest id can be detected). ``missing="empty"`` scores missing
    ids as empty hypotheses instead of failing (a penalty, never a shift).
    """
    hyps, missing_ids = align_generate_output(path, expected_lines, prefer, remove_bpe)
    if missing_ids and missing != "empty":
        raise missing_ids_error(path, missing_ids, len(hyps),
                                "score them as empty hypotheses with --missing-as-empty")
    return hyps


def _ids(ids: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")
