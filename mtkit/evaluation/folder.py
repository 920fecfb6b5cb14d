"""Evaluate many directions at once: a folder of hypotheses against ML50- or Flores-style references.

Hypothesis names (codes in mBART or Flores form, e.g. ``en_XX-de_DE`` or ``eng_Latn-deu_Latn``):

- ``{src}-{tgt}.hyp``                   plain text, one hypothesis a line
- ``generate-{src}-{tgt}.txt``          fairseq-generate output (stdout saved to a file)
- ``{src}-{tgt}/generate-{split}.txt``  what ``fairseq-generate --results-path {src}-{tgt}`` writes
- ``{src}-{tgt}.txt``                   either; fairseq-generate output is recognised by its lines

References (and sources, needed for added toxicity) are looked up in ``ref_dir``:

- ML50 style ``{split}.{src}-{tgt}.{lang}`` or the reversed pair ``{split}.{tgt}-{src}.{lang}``
  (ML50 keeps only en-xx files, whose two sides serve both directions); split ``test`` by default.
- Flores style ``{split}/{flores_code}.{split}`` (or ``{flores_code}.{split}`` directly in
  ``ref_dir``); split ``devtest`` by default.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mtkit.errors import InputError, MtkitError
from mtkit.evaluation import report
from mtkit.evaluation.scoring import parse_metrics, score_files
from mtkit.evaluation.toxicity import ToxicityLists
from mtkit.io import count_lines
from mtkit.langs import (
    FLORES_TO_MBART,
    MBART_TO_FLORES,
    UnknownLanguageError,
    is_flores,
    is_ml50,
    to_flores,
    to_mbart,
    validate,
)

log = logging.getLogger(__name__)

_CODE = r"[a-z]{2,3}_[A-Za-z]{2,4}"
_DIRECTION = rf"(?P<src>{_CODE})-(?P<tgt>{_CODE})"
_HYP_NAMES = (
    (re.compile(rf"^{_DIRECTION}\.hyp$"), "plain"),
    (re.compile(rf"^generate-{_DIRECTION}\.txt$"), "generate"),
    (re.compile(rf"^{_DIRECTION}\.txt$"), "auto"),
)
_HYP_SUBDIR = re.compile(rf"^{_DIRECTION}$")
_TRAIN_FILE = re.compile(rf"^train\.(?P<a>{_CODE})-(?P<b>{_CODE})\.(?P<lang>{_CODE})$")

#: default resource classes by training lines with English: high >= 1M, medium >= 100k, else low
DEFAULT_THRESHOLDS: tuple[tuple[str, int], ...] = (("high", 1_000_000), ("medium", 100_000), ("low", 0))


@dataclass
class HypFile:
    src: str
    tgt: str
    path: Path
    fmt: str  # plain | generate | auto


def _checked(code: str, where: Path) -> str:
    try:
        return validate(code)
    except UnknownLanguageError as e:
        raise UnknownLanguageError(f"{where}: {e}") from None


def find_hypotheses(hyp_dir: str | os.PathLike, split: str | None = None) -> list[HypFile]:
    """All hypothesis files in ``hyp_dir`` (see the module docstring for the names accepted)."""
    root = Path(hyp_dir)
    if not root.is_dir():
        raise InputError(f"--hyp-dir {root}: not a folder")
    found: dict[tuple[str, str], HypFile] = {}
    for p in sorted(root.iterdir()):
        hit: HypFile | None = None
        if p.is_file():
            for pattern, fmt in _HYP_NAMES:
                m = pattern.match(p.name)
                if m:
                    hit = HypFile(_checked(m["src"], p), _checked(m["tgt"], p), p, fmt)
                    break
        elif p.is_dir() and _HYP_SUBDIR.match(p.name):
            m = _HYP_SUBDIR.match(p.name)
            gens = sorted(p.glob("generate-*.txt"))
            named = [g for g in gens if g.name == f"generate-{split or 'test'}.txt"]
            if named or len(gens) == 1:
                hit = HypFile(_checked(m["src"], p), _checked(m["tgt"], p), (named or gens)[0], "generate")
            elif gens:
                raise InputError(f"{p}: several generate-*.txt files ({', '.join(g.name for g in gens)}); "
                                 "choose one with --split")
        if hit is None:
            continue
        key = (to_flores(hit.src), to_flores(hit.tgt))
        if key in found:
            raise InputError(f"two hypothesis files for {hit.src}-{hit.tgt}: {found[key].path} and {hit.path}")
        found[key] = hit
    if not found:
        raise InputError(
            f"no hypothesis files in {root}: expected names like en_XX-de_DE.hyp, "
            "generate-en_XX-de_DE.txt or en_XX-de_DE/generate-test.txt"
        )
    return list(found.values())


def _forms(code: str) -> list[str]:
    forms = [code]
    for alt in (MBART_TO_FLORES.get(code), FLORES_TO_MBART.get(code)):
        if alt and alt not in forms:
            forms.append(alt)
    return forms


def reference_candidates(ref_dir: str | os.PathLike, lang: str, src: str, tgt: str,
                         split: str | None = None) -> list[Path]:
    """Paths where the ``lang`` side of direction ``src-tgt`` may be, in the order they are tried."""
    root = Path(ref_dir)
    out: list[Path] = []
    for sp in [split] if split else ["test"]:
        for s in _forms(src):
            for t in _forms(tgt):
                for lf in _forms(lang):
                    for a, b in ((s, t), (t, s)):
                        cand = root / f"{sp}.{a}-{b}.{lf}"
                        if cand not in out:
                            out.append(cand)
    flores = to_flores(lang)
    for sp in [split] if split else ["devtest"]:
        out += [root / sp / f"{flores}.{sp}", root / f"{flores}.{sp}"]
    return out


def find_reference(ref_dir: str | os.PathLike, lang: str, src: str, tgt: str,
                   split: str | None = None, required: bool = True) -> Path | None:
    cands = reference_candidates(ref_dir, lang, src, tgt, split)
    for c in cands:
        if c.is_file():
            return c
    if required:
        shown = ", ".join(str(c.relative_to(ref_dir)) for c in cands[:4] + cands[-2:])
        raise InputError(f"no {lang} file for {src}-{tgt} in {ref_dir} (tried {shown}; see --split)")
    return None


def read_resource_classes(path: str | os.PathLike) -> dict[str, str]:
    """A user file of ``CODE CLASS`` lines (``#`` comments) -> Flores code -> class."""
    from mtkit.evaluation.inputs import read_lines

    classes: dict[str, str] = {}
    for lineno, line in enumerate(read_lines(path), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{path}: line {lineno}: expected 'CODE CLASS' (e.g. 'si_LK low'), got {line!r}")
        try:
            classes[to_flores(parts[0])] = parts[1]
        except UnknownLanguageError as e:
            raise UnknownLanguageError(f"{path}: line {lineno}: {e}") from None
    return classes


def count_training_lines(train_dir: str | os.PathLike) -> dict[str, int]:
    """Lines of parallel training data per language (ML50 ``train.{a}-{b}.{lang}`` files; each pair
    counted once, on its ``a`` side), summed over the pairs the language is in."""
    counts: dict[str, int] = {}
    for p, a, b, lang in training_files(train_dir):
        if lang != a:
            continue
        n = count_lines(p)
        for code in (a, b):
            key = to_flores(code)
            counts[key] = counts.get(key, 0) + n
    return counts


def training_files(train_dir: str | os.PathLike) -> list[tuple[Path, str, str, str]]:
    """The ML50-style ``train.{a}-{b}.{lang}`` files of a folder as ``(path, a, b, lang)``."""
    root = Path(train_dir)
    if not root.is_dir():
        raise InputError(f"--train-dir {root}: not a folder")
    found = [(p, m["a"], m["b"], m["lang"]) for p in sorted(root.iterdir())
             if (m := _TRAIN_FILE.match(p.name))]
    if not found:
        raise InputError(f"--train-dir {root}: no train.{{src}}-{{tgt}}.{{lang}} files found")
    return found


def classes_from_counts(counts: Mapping[str, int],
                        thresholds: Sequence[tuple[str, int]] = DEFAULT_THRESHOLDS) -> dict[str, str]:
    """Class of each language: the first ``(name, minimum)`` whose minimum its count reaches."""
    ordered = sorted(thresholds, key=lambda t: -t[1])
    return {lang: next((name for name, low in ordered if n >= low), ordered[-1][0])
            for lang, n in counts.items()}


def parse_thresholds(text: str) -> list[tuple[str, int]]:
    """``"high=1000000,medium=100000,low=0"`` -> [(name, minimum lines)]."""
    out = []
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise MtkitError(f"bad --resource-thresholds item {part!r}; write e.g. high=1000000,medium=100000,low=0")
        out.append((name.strip(), int(value)))
    return out


def _display(codes: list[str]) -> dict[str, str]:
    """Codes as the file names write them when they agree on one form; a mix is shown in mBART form
    if every language has one, else in Flores form."""
    if all(is_flores(c) for c in codes):
        return {c: c for c in codes}
    if all(is_ml50(c) or c in FLORES_TO_MBART for c in codes):
        return {c: to_mbart(c) for c in codes}
    return {c: to_flores(c) for c in codes}


def evaluate_folder(
    hyp_dir: str | os.PathLike,
    ref_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None,
    metrics: str | Sequence[str] | None = None,
    *,
    split: str | None = None,
    resource_classes: str | os.PathLike | Mapping[str, str] | None = None,
    train_dir: str | os.PathLike | None = None,
    thresholds: Sequence[tuple[str, int]] = DEFAULT_THRESHOLDS,
    width: int | None = 1,
    plot_metric: str = "chrf++",
    missing_as_empty: bool = False,
    **score_kwargs: Any,
) -> dict[str, Any]:
    """Score every direction found in ``hyp_dir`` and write the report into ``out_dir``.

    Writes ``scores.json``, ``scores.csv``, ``scores.md``, ``heatmap_{metric}.png`` and
    ``languages_{metric}.png`` (``metric`` = ``chrfpp`` for chrF++). Scores in the files are
    rounded to ``width`` decimals (sacrebleu's default is 1; None keeps full precision); the returned
    dict keeps full precision and has the keys ``directions`` (name -> :func:`score_direction`
    result), ``aggregates``, ``signatures``, ``resource_classes``, ``settings`` and ``files``.
    Nothing is written if any direction fails. ``score_kwargs`` go to :func:`score_direction`.
    """
    wanted = parse_metrics(metrics, score_kwargs.get("spm_model"), score_kwargs.get("toxicity_lists"))
    settings = {k: str(v) if isinstance(v, (os.PathLike, ToxicityLists)) else v
                for k, v in score_kwargs.items() if k != "toxicity_password"}
    if "toxicity" in wanted and score_kwargs.get("toxicity_lists") is not None \
            and not isinstance(score_kwargs["toxicity_lists"], ToxicityLists):
        # read (and decrypt) each list once for all directions
        score_kwargs["toxicity_lists"] = ToxicityLists(score_kwargs["toxicity_lists"],
                                                       score_kwargs.pop("toxicity_password", None))
    hyp_files = find_hypotheses(hyp_dir, split)
    show = _display(sorted({h.src for h in hyp_files} | {h.tgt for h in hyp_files}))
    classes, class_order, counts = _resource_classes(resource_classes, train_dir, thresholds)
    results = _score_directions(hyp_files, ref_dir, show, wanted, split, missing_as_empty, score_kwargs)
    aggs = report.aggregates(results, classes, class_order)
    by_flores = {to_flores(c): shown for c, shown in show.items()}
    summary: dict[str, Any] = {
        "directions": results,
        "aggregates": aggs,
        "signatures": report.collect_signatures(results),
        "resource_classes": ({by_flores.get(k, k): v for k, v in classes.items()} if classes else None),
        "training_lines": counts,
        "settings": {
            "metrics": wanted, "split": split, "hyp_dir": str(hyp_dir), "ref_dir": str(ref_dir),
            "width": width, "missing_as_empty": missing_as_empty, **settings,
        },
    }
    if out_dir is not None:
        files = _report_files(summary, classes, wanted, width, plot_metric)
        summary["files"] = [str(p) for p in report.write_outputs(out_dir, files)]
    return summary


def _resource_classes(resource_classes: str | os.PathLike | Mapping[str, str] | None,
                      train_dir: str | os.PathLike | None, thresholds: Sequence[tuple[str, int]]
                      ) -> tuple[dict[str, str] | None, list[str] | None, dict[str, int] | None]:
    """(Flores code -> class, class order, training lines per language) from a class file/mapping
    or from the training folder's line counts; all None when neither is given."""
    if resource_classes is not None:
        classes = ({to_flores(k): v for k, v in resource_classes.items()}
                   if isinstance(resource_classes, Mapping) else read_resource_classes(resource_classes))
        return classes, list(dict.fromkeys(classes.values())), None
    if train_dir is not None:
        counts = count_training_lines(train_dir)
        order = [name for name, _ in sorted(thresholds, key=lambda t: -t[1])]
        return classes_from_counts(counts, thresholds), order, counts
    return None, None, None


def _score_directions(hyp_files: list[HypFile], ref_dir: str | os.PathLike, show: dict[str, str],
                      wanted: list[str], split: str | None, missing_as_empty: bool,
                      score_kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for h in tqdm(sorted(hyp_files, key=lambda h: (show[h.src], show[h.tgt])),
                  desc="evaluate", unit="direction", disable=None):
        name = f"{show[h.src]}-{show[h.tgt]}"
        ref = find_reference(ref_dir, h.tgt, h.src, h.tgt, split)
        src = find_reference(ref_dir, h.src, h.src, h.tgt, split, required="toxicity" in wanted)
        r = score_files(h.path, ref, show[h.tgt], src, wanted, hyp_format=h.fmt,
                        missing_as_empty=missing_as_empty, src_lang=show[h.src], **score_kwargs)
        results[name] = r
        log.info("%s: %s", name, ", ".join(f"{m} {r[m]:.1f}" for m in report.SCORE_METRICS if m in r))
    return results


def _report_files(summary: dict[str, Any], classes: dict[str, str] | None, wanted: list[str],
                  width: int | None, plot_metric: str) -> dict[str, bytes]:
    """scores.json/.csv/.md and the plots, as bytes to be written together."""
    results, aggs = summary["directions"], summary["aggregates"]
    digits = width if width is not None else 4
    files = {
        "scores.json": report.json_bytes(report.round_scores(summary, width)),
        "scores.csv": report.direction_csv(results, classes, digits),
        "scores.md": report.markdown_report(results, aggs, classes, digits),
    }
    if plot_metric in wanted:
        tag = plot_metric.replace("++", "pp")
        files[f"heatmap_{tag}.png"] = report.heatmap_png(results, plot_metric)
        files[f"languages_{tag}.png"] = report.language_bars_png(results, plot_metric)
    else:
        log.warning("metric %s not computed: no plots", plot_metric)
    return files
