"""Inputs of ``mtkit compare``: systems given as ``NAME=PATH``, their hypotheses aligned with the
references by line (plain text) or by sentence id (fairseq-generate output), never by position alone.

Each system is a folder that ``mtkit evaluate --hyp-dir`` reads (one file per direction) or, for a
one-direction comparison, a single file. Directions are compared where every system has them; the
others are listed, not compared. A hypothesis file whose line count differs from its reference is an
error; ids missing from fairseq-generate output are an error unless the caller chooses to score them
as empty (``missing="empty"``) or to leave those sentences out for every system (``missing="drop"``),
and either choice is recorded in the direction's notes.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mtkit.errors import InputError, MtkitError
from mtkit.evaluation.folder import HypFile, find_hypotheses, find_reference
from mtkit.evaluation.generate_output import (
    align_generate_output,
    is_generate_output,
    missing_ids_error,
)
from mtkit.evaluation.inputs import check_same_length, read_lines
from mtkit.langs import to_flores, validate

MISSING_POLICIES = ("error", "empty", "drop")
_REMEDY = ("pass --missing empty (score them as empty hypotheses) or --missing drop (leave those "
           "sentences out for every system)")


@dataclass
class System:
    name: str
    path: Path


@dataclass
class Direction:
    """One direction's test set with every system's hypotheses, line-aligned with ``refs``."""

    name: str
    src_lang: str
    tgt_lang: str
    refs: list[str]
    hyps: dict[str, list[str]]
    sources: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)  # "reference", "source", system -> path
    line_ids: list[int] = field(default_factory=list)    # 0-based line of the test set per kept line
    notes: list[str] = field(default_factory=list)       # stated exclusions and substitutions

    @property
    def n_lines(self) -> int:
        return len(self.refs)


def parse_systems(specs: Sequence[str]) -> list[System]:
    """``["base=runs/a/hyp", "new=runs/b/hyp"]`` -> systems, the first one being the baseline."""
    systems: list[System] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise MtkitError(f"system {spec!r}: write NAME=PATH, e.g. baseline=eval/bilingual/hyp")
        name = name.strip()
        if any(s.name == name for s in systems):
            raise MtkitError(f"system name {name!r} is given twice; names must be unique")
        if not Path(path).exists():
            raise InputError(f"system {name}: {path} does not exist")
        systems.append(System(name, Path(path)))
    if len(systems) < 2:
        raise MtkitError("compare needs at least two systems (NAME=PATH NAME=PATH ...); the first is the baseline")
    return systems


def read_hypotheses(path: str | os.PathLike, n_refs: int, ref_path: str | os.PathLike,
                    fmt: str = "auto") -> tuple[list[str], list[int]]:
    """Hypotheses aligned with a reference of ``n_refs`` lines, and the ids missing from
    fairseq-generate output (plain text must have exactly ``n_refs`` lines)."""
    if fmt == "auto":
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file")
        fmt = "generate" if is_generate_output(path) else "plain"
    if fmt == "generate":
        return align_generate_output(path, expected_lines=n_refs)
    hyps = read_lines(path)
    check_same_length(path, len(hyps), ref_path, n_refs)
    return hyps, []


def apply_missing(direction: Direction, missing: dict[str, list[int]], policy: str) -> None:
    """Resolve ids missing from some systems' fairseq-generate output (see the module docstring)."""
    missing = {name: ids for name, ids in missing.items() if ids}
    if not missing:
        return
    if policy not in MISSING_POLICIES:
        raise MtkitError(f"missing must be one of {', '.join(MISSING_POLICIES)}, not {policy!r}")
    if policy == "error":
        name, ids = next(iter(missing.items()))
        raise missing_ids_error(direction.files[name], ids, direction.n_lines, _REMEDY)
    if policy == "empty":
        for name, ids in missing.items():
            direction.notes.append(f"{name}: {len(ids)} sentence ids missing from "
                                   f"{direction.files[name]} scored as empty hypotheses: {_ids(ids)}")
        return
    dropped = sorted(set().union(*missing.values()))
    keep = [i for i in range(direction.n_lines) if i not in set(dropped)]
    if not keep:
        raise InputError(f"{direction.name}: every sentence is missing from some system's output; nothing to compare")
    direction.refs = [direction.refs[i] for i in keep]
    direction.hyps = {name: [h[i] for i in keep] for name, h in direction.hyps.items()}
    if direction.sources is not None:
        direction.sources = [direction.sources[i] for i in keep]
    direction.line_ids = [direction.line_ids[i] for i in keep]
    who = "; ".join(f"{name} lacks {_ids(ids)}" for name, ids in missing.items())
    direction.notes.append(f"{len(dropped)} sentence ids left out for every system (missing from "
                           f"fairseq-generate output: {who})")


def _ids(ids: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def load_direction(name: str, src_lang: str, tgt_lang: str, hyp_files: dict[str, tuple[Path, str]],
                   ref_path: Path, src_path: Path | None, missing: str) -> Direction:
    """Read one direction: the reference, the optional source and every system's hypotheses."""
    refs = read_lines(ref_path)
    if not refs:
        raise InputError(f"{ref_path}: the reference is empty")
    sources = None
    if src_path is not None:
        sources = read_lines(src_path)
        check_same_length(src_path, len(sources), ref_path, len(refs), what="references")
    d = Direction(name, src_lang, tgt_lang, refs, {}, sources, line_ids=list(range(len(refs))))
    d.files = {"reference": str(ref_path), "source": str(src_path) if src_path else None}
    gaps: dict[str, list[int]] = {}
    for system, (path, fmt) in hyp_files.items():
        d.files[system] = str(path)
        d.hyps[system], gaps[system] = read_hypotheses(path, len(refs), ref_path, fmt)
    apply_missing(d, gaps, missing)
    return d


def _key(h: HypFile) -> tuple[str, str]:
    return to_flores(h.src), to_flores(h.tgt)


def load_folders(systems: Sequence[System], ref_dir: str | os.PathLike, *, split: str | None = None,
                 src_dir: str | os.PathLike | None = None, missing: str = "error",
                 ) -> tuple[list[Direction], dict[str, list[str]]]:
    """Directions every system covers (in name order) and ``{direction: systems that have it}`` for
    the ones left out because some system lacks them."""
    found: dict[str, dict[tuple[str, str], HypFile]] = {}
    for s in systems:
        if not s.path.is_dir():
            raise InputError(f"system {s.name}: {s.path} is a file; with --ref-dir every system is a folder "
                             "of hypothesis files (for one direction's files use --ref and --tgt-lang)")
        found[s.name] = {_key(h): h for h in find_hypotheses(s.path, split)}
    base = found[systems[0].name]
    every = set.union(*(set(f) for f in found.values()))
    shared = set.intersection(*(set(f) for f in found.values()))
    names = {k: f"{h.src}-{h.tgt}" for f in reversed(list(found.values())) for k, h in f.items()}
    left_out = {names[k]: [s for s, f in found.items() if k in f] for k in sorted(every - shared, key=names.get)}
    if not shared:
        raise InputError("the systems share no direction: " + "; ".join(
            f"{s}: {', '.join(sorted(names[k] for k in f))}" for s, f in found.items()))
    directions = []
    for k in sorted(shared, key=names.get):
        h0 = base[k]
        ref = find_reference(ref_dir, h0.tgt, h0.src, h0.tgt, split)
        src = find_reference(src_dir or ref_dir, h0.src, h0.src, h0.tgt, split, required=src_dir is not None)
        files = {s: (found[s][k].path, found[s][k].fmt) for s in found}
        directions.append(load_direction(names[k], h0.src, h0.tgt, files, ref, src, missing))
    return directions, left_out


def load_files(systems: Sequence[System], ref: str | os.PathLike, tgt_lang: str, src_lang: str,
               src: str | os.PathLike | None = None, missing: str = "error") -> Direction:
    """One direction: each system a hypothesis file (plain text or fairseq-generate output)."""
    for s in systems:
        if not s.path.is_file():
            raise InputError(f"system {s.name}: {s.path} is a folder; with --ref every system is one "
                             "hypothesis file (for folders of directions use --ref-dir)")
    src_lang, tgt_lang = validate(src_lang), validate(tgt_lang)
    files = {s.name: (s.path, "auto") for s in systems}
    return load_direction(f"{src_lang}-{tgt_lang}", src_lang, tgt_lang, files, Path(ref),
                          Path(src) if src else None, missing)
