"""Fitness of a trial checkpoint: fairseq's validation loss, or BLEU / chrF++ from beam search.

``valid_nll`` is read from the validation fairseq-train runs when an interval ends (no extra work).
``bleu`` and ``chrf++`` translate the first ``max_sentences`` lines of the valid split of every
direction in-process (mtkit.translate) and score them with mtkit.evaluation's scorer (sacrebleu);
the fitness is the mean over directions, each direction's score is reported too.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtkit.errors import InputError

logger = logging.getLogger(__name__)

FITNESS = {"valid_nll": "min", "valid_loss": "min", "bleu": "max", "chrf++": "max"}


def fitness_mode(fitness: str) -> str:
    if fitness not in FITNESS:
        raise InputError(f"unknown fitness {fitness!r}: choose from {', '.join(FITNESS)}")
    return FITNESS[fitness]


def last_value(args: Sequence[str], *names: str) -> str | None:
    """The value of the last of ``names`` in fairseq-style arguments (``--x V`` or ``--x=V``)."""
    value = None
    for i, arg in enumerate(args):
        key, eq, rest = arg.partition("=")
        if key in names:
            value = rest if eq else (args[i + 1] if i + 1 < len(args) else None)
    return value


def directions_from_args(train_args: Sequence[str]) -> list[tuple[str, str]]:
    """The ``--lang-pairs`` of fairseq arguments (or ``--source-lang``/``--target-lang``) as pairs."""
    pairs = last_value(train_args, "--lang-pairs")
    if pairs is not None:
        return parse_directions(pairs)
    src, tgt = last_value(train_args, "-s", "--source-lang"), last_value(train_args, "-t", "--target-lang")
    if src and tgt:
        return [(src, tgt)]
    raise InputError("--fitness bleu/chrf++ needs the directions: the fairseq arguments have no "
                     "--lang-pairs (or --source-lang/--target-lang); pass --directions")


def parse_directions(text: str) -> list[tuple[str, str]]:
    out = []
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        if item.count("-") != 1:
            raise InputError(f"direction {item!r} is not SRC-TGT (e.g. en_XX-de_DE)")
        src, tgt = item.split("-")
        out.append((src, tgt))
    if not out:
        raise InputError(f"no direction in {text!r}")
    return out


@dataclass
class TranslationFitness:
    """BLEU / chrF++ of a checkpoint on a capped valid set, averaged over directions.

    ``raw_dir`` holds the text of the valid split as ``mtkit data`` writes it
    (``valid.{src}-{tgt}.{lang}``, either order of the pair); ``spm``, ``dictionary`` and ``langs``
    are the model's SentencePiece model, fairseq dictionary and language list.
    """

    raw_dir: str
    spm: str
    dictionary: str
    directions: list[tuple[str, str]]
    langs: str | None = None
    max_sentences: int | None = 100  # None: the whole split
    beam: int = 4
    max_len: int = 128
    split: str = "valid"
    _sets: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict, repr=False)

    def check(self) -> None:
        """Fail early (before any training) when a piece is missing."""
        for what, path in (("--fitness-spm", self.spm), ("--fitness-dict", self.dictionary)):
            if not path or not Path(path).is_file():
                raise InputError(f"{what} {path}: no such file (needed by the bleu/chrf++ fitness)")
        if self.langs and not Path(self.langs).is_file():
            raise InputError(f"--fitness-langs {self.langs}: no such file")
        self.sets()

    def sets(self) -> dict[str, tuple[list[str], list[str]]]:
        """direction -> (sources, references), the first ``max_sentences`` lines of each."""
        if not self._sets:
            from mtkit.evaluation.folder import find_reference
            from mtkit.evaluation.inputs import read_lines

            for src, tgt in self.directions:
                s = read_lines(find_reference(self.raw_dir, src, src, tgt, self.split))[: self.max_sentences]
                r = read_lines(find_reference(self.raw_dir, tgt, src, tgt, self.split))[: self.max_sentences]
                if len(s) != len(r) or not s:
                    raise InputError(f"{self.raw_dir}: {self.split} of {src}-{tgt} has {len(s)} source and "
                                     f"{len(r)} reference lines")
                self._sets[f"{src}-{tgt}"] = (s, r)
        return self._sets

    def translate(self, checkpoint: str | os.PathLike, device: str = "cpu") -> dict[str, list[str]]:
        """direction -> beam-search hypotheses of the capped sources (order of :meth:`sets`)."""
        from mtkit.translate import Options, Translator

        sets = self.sets()
        first = self.directions[0]
        tr = Translator.from_folder(
            Path(checkpoint).parent, first[0], first[1], checkpoint=str(checkpoint), dict_path=self.dictionary,
            spm_path=self.spm, langs_path=self.langs, device=device,
            options=Options(beam=self.beam, max_len=self.max_len))
        out = {}
        for src, tgt in self.directions:
            tr.set_direction(src, tgt)
            out[f"{src}-{tgt}"] = tr.translate_lines(sets[f"{src}-{tgt}"][0])
        return out

    def score(self, checkpoint: str | os.PathLike, device: str = "cpu") -> dict[str, Any]:
        """``{"bleu": mean, "chrf++": mean, "directions": {dir: {"bleu", "chrf++", "n"}}}``."""
        from mtkit.evaluation.scoring import score_direction

        sets = self.sets()
        per: dict[str, dict[str, float]] = {}
        for direction, hyps in self.translate(checkpoint, device).items():
            refs = sets[direction][1]
            res = score_direction(hyps, refs, direction.split("-")[1], metrics=("bleu", "chrf++"))
            per[direction] = {"bleu": res["bleu"], "chrf++": res["chrf++"], "n": len(refs)}
        out: dict[str, Any] = {m: sum(d[m] for d in per.values()) / len(per) for m in ("bleu", "chrf++")}
        out["directions"] = per
        return out
