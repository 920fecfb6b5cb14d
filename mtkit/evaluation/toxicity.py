"""Added toxicity, the NLLB way (Toxicity-200 word lists, ETOX matching).

A line has *added toxicity* when its hypothesis matches at least one item of the target language's
list while its source matches none of the source language's list (FL toxicity README; seamless
``etox_bad_word_checker``). Lists are plain text, one word or phrase a line, named
``{flores_code}_twl.txt`` in a folder, or the password-protected ``{flores_code}_twl.zip`` files of
the Toxicity-200 release (ZipCrypto, which Python's zipfile reads given the password).

Matching modes (ETOX ``token_level``):

- ``space`` (default): lower-case, replace non-word characters with spaces, pad with spaces and look
  for `` item `` — whole-token matches; list items are normalised the same way.
- ``character``: plain substring match of the lower-cased item, for scripts written without spaces.
- ``spm``: the SentencePiece pieces of the lower-cased item appear contiguously among the pieces of
  the lower-cased line (needs a SentencePiece model).

An item found several times in one line counts once for that line, as in ETOX.
"""
from __future__ import annotations

import functools
import os
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError
from mtkit.langs import to_flores

MODES = ("space", "character", "spm")
_NON_WORD = re.compile(r"[\W+]")
_SPACES = re.compile(r"\s+")


def normalize_space(text: str) -> str:
    """ETOX/seamless preprocessing for space mode, plus padding: ``" " + tokens + " "``."""
    return " " + " ".join(_NON_WORD.sub(" ", text.lower()).split()) + " "


def _decode_list(data: bytes, name: str) -> list[str]:
    from mtkit.evaluation.inputs import decode_lines

    items: list[str] = []
    seen: set[str] = set()
    for line in decode_lines(data, name):
        item = line.strip()
        if item and item not in seen:
            seen.add(item)
            items.append(item)
    return items


class ToxicityLists:
    """Word lists per language from a folder of ``{code}_twl.txt`` or ``{code}_twl.zip`` files.

    ``source`` may also be a single ``.txt``/``.zip`` file, then used for every language (handy for
    one-direction checks with a custom list).
    """

    def __init__(self, source: str | os.PathLike, password: str | bytes | None = None):
        self.source = Path(source)
        if not self.source.exists():
            raise InputError(f"toxicity lists: {self.source} does not exist")
        self.password = password.encode("utf-8") if isinstance(password, str) else password
        self._cache: dict[str, list[str]] = {}

    def __str__(self) -> str:  # what reports record (never the password)
        return str(self.source)

    def path_for(self, lang: str) -> Path:
        code = to_flores(lang)
        if self.source.is_file():
            return self.source
        for name in (f"{code}_twl.txt", f"{code}_twl.zip"):
            if (self.source / name).is_file():
                return self.source / name
        raise InputError(
            f"no toxicity list for {code} in {self.source}: expected {code}_twl.txt or {code}_twl.zip "
            "(Toxicity-200 layout); add it or leave 'toxicity' out of --metrics"
        )

    def items(self, lang: str) -> list[str]:
        code = to_flores(lang)
        if code not in self._cache:
            path = self.path_for(code)
            if path.suffix == ".zip":
                self._cache[code] = self._read_zip(path, code)
            else:
                self._cache[code] = _decode_list(path.read_bytes(), str(path))
        return self._cache[code]

    def _read_zip(self, path: Path, code: str) -> list[str]:
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
                wanted = [m for m in members if Path(m).name == f"{code}_twl.txt"]
                texts = [m for m in members if m.endswith(".txt")]
                member = (wanted or texts or members or [None])[0]
                if member is None:
                    raise InputError(f"{path}: the zip is empty")
                try:
                    data = zf.read(member, pwd=self.password)
                except RuntimeError as e:  # encrypted and no/wrong password
                    raise InputError(
                        f"{path}: cannot read {member}: {e}; pass the list password with "
                        "--toxicity-password (the Toxicity-200 README gives it)"
                    ) from None
        except zipfile.BadZipFile as e:
            raise InputError(f"{path}: not a zip file ({e})") from None
        return _decode_list(data, f"{path}:{member}")


@dataclass
class Matcher:
    """Finds list items in lines in one of the ETOX modes."""

    items: Sequence[str]
    mode: str = "space"
    spm_model: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise MtkitError(f"unknown toxicity mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode == "space":
            keys = [normalize_space(i) for i in self.items]
            self._keys = [(k, i) for k, i in zip(keys, self.items) if k.strip()]
        elif self.mode == "character":
            self._keys = [(i.lower(), i) for i in self.items if i.strip()]
        else:
            if self.spm_model is None:
                raise MtkitError("toxicity mode 'spm' needs a SentencePiece model (--toxicity-spm-model)")
            self._sp = _load_spm(str(self.spm_model))
            self._keys = [(tuple(self._sp.EncodeAsPieces(i.lower())), i) for i in self.items if i.strip()]

    def find(self, line: str) -> list[str]:
        """The list items present in ``line``, each once, in list order."""
        if self.mode == "space":
            text = normalize_space(line)
            return [item for key, item in self._keys if key in text]
        if self.mode == "character":
            text = line.lower()
            return [item for key, item in self._keys if key in text]
        pieces = tuple(self._sp.EncodeAsPieces(line.lower()))
        return [item for key, item in self._keys if key and _contains(pieces, key)]


def _contains(seq: tuple[str, ...], sub: tuple[str, ...]) -> bool:
    n = len(sub)
    return any(seq[i:i + n] == sub for i in range(len(seq) - n + 1))


@functools.lru_cache(maxsize=4)
def _load_spm(path: str) -> Any:
    import sentencepiece as spm

    if not Path(path).is_file():
        raise MtkitError(f"SentencePiece model {path} not found (toxicity mode 'spm')")
    return spm.SentencePieceProcessor(model_file=path)


def added_toxicity(hyps: Sequence[str], tgt_matcher: Matcher, srcs: Sequence[str] | None = None,
                   src_matcher: Matcher | None = None) -> dict[str, Any]:
    """Added-toxicity report for one direction.

    Line numbers are 1-based. Without a source, ``added_*`` is None and only the hypothesis side is
    reported (toxicity in the output, not known to be *added*).
    """
    if srcs is not None and len(srcs) != len(hyps):
        raise InputError(f"toxicity: {len(hyps)} hypotheses but {len(srcs)} source lines")
    hyp_lines: list[int] = []
    added_lines: list[int] = []
    hyp_items: Counter[str] = Counter()
    added_items: Counter[str] = Counter()
    src_matched = 0
    for lineno, hyp in enumerate(hyps, 1):
        found = tgt_matcher.find(hyp)
        if found:
            hyp_lines.append(lineno)
            hyp_items.update(found)
        if srcs is not None and src_matcher is not None:
            src_found = src_matcher.find(srcs[lineno - 1])
            src_matched += bool(src_found)
            if found and not src_found:
                added_lines.append(lineno)
                added_items.update(found)
    n = len(hyps)
    has_src = srcs is not None and src_matcher is not None
    report: dict[str, Any] = {
        "mode": tgt_matcher.mode,
        "n_lines": n,
        "n_list_items": len(tgt_matcher.items),
        "added_share": (len(added_lines) / n if n else 0.0) if has_src else None,
        "added_percent": (100.0 * len(added_lines) / n if n else 0.0) if has_src else None,
        "added_lines": added_lines if has_src else None,
        "added_items": dict(added_items.most_common()) if has_src else None,
        "hyp_matched_lines": hyp_lines,
        "hyp_matched_items": dict(hyp_items.most_common()),
        "hyp_matched_share": len(hyp_lines) / n if n else 0.0,
        "src_matched_line_count": src_matched if has_src else None,
    }
    return report
