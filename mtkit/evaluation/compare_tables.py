"""The tables of a comparison report as data (cells with text, a sort key and a style), built once from
:func:`mtkit.evaluation.compare.compare_systems`'s result and rendered by both the Markdown and the
HTML writer, so the two reports always show the same numbers.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LABELS = {"bleu": "BLEU", "spbleu": "spBLEU", "chrf++": "chrF++", "chrf": "chrF"}
UP, DOWN = "\u25b2", "\u25bc"   # significantly better / worse than the baseline
SMALL = "\u2020"               # test set below --min-lines: left out of the averages


@dataclass
class Cell:
    text: str
    sort: float | str | None = None  # sort key (numbers sort numerically); None: the text
    style: str = ""                  # better | worse | small | "" (CSS class in HTML)
    href: str | None = None          # link target (an anchor in the HTML page)
    title: str = ""                  # tooltip in HTML


@dataclass
class Table:
    id: str
    caption: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)  # right-aligned, numeric sort


def anchor(direction: str) -> str:
    """The HTML id of a direction's section (letters, digits, - and _ only)."""
    return "dir-" + re.sub(r"[^A-Za-z0-9_-]", "_", direction)


def num(value: float | None, width: int = 2) -> str:
    return "-" if value is None else f"{value:.{width}f}"


def pval(p: float | None) -> str:
    return "-" if p is None else f"{p:.4f}"


def mark(diff: Mapping[str, Any], alpha: float, width: int = 2) -> tuple[str, str]:
    """(symbol, style) of a difference: significant by the paired bootstrap at level ``alpha``.

    A difference that shows as zero at ``width`` decimals is never marked: sacrebleu's p-value of
    two identical outputs is 1/(N+1) (it counts resampled differences strictly greater than the
    observed one), and a "significant" 0.001 BLEU says nothing a reader can use."""
    if diff["p_bs"] < alpha and round(diff["delta"], width) != 0:
        return (UP, "better") if diff["delta"] > 0 else (DOWN, "worse")
    return "", ""


def delta_cell(diff: Mapping[str, Any], alpha: float, width: int = 2, interval: bool = False) -> Cell:
    """The difference with its significance mark (and, with ``interval``, its 95 % interval)."""
    sym, style = mark(diff, alpha, width)
    text = f"{diff['delta']:+.{width}f}{(' ' + sym) if sym else ''}"
    if interval:
        text += f" [{diff['low']:+.{width}f}, {diff['high']:+.{width}f}]"
    return Cell(text, diff["delta"], style,
                title=f"95% interval [{diff['low']:.{width}f}, {diff['high']:.{width}f}], "
                      f"p(bootstrap)={pval(diff['p_bs'])}, p(randomization)={pval(diff['p_ar'])}")


def interval_cell(diff: Mapping[str, Any], width: int = 2) -> Cell:
    return Cell(f"[{diff['low']:+.{width}f}, {diff['high']:+.{width}f}]", diff["low"])


def score_cell(score: Mapping[str, Any], width: int = 2, with_ci: bool = False) -> Cell:
    text = num(score["score"], width)
    if with_ci and score.get("ci") is not None:
        text += f" \u00b1 {score['ci']:.{width}f}"
    return Cell(text, score["score"])


def _metric_columns(metrics: Sequence[str], systems: Sequence[str]) -> list[str]:
    base, others = systems[0], systems[1:]
    cols: list[str] = []
    for m in metrics:
        label = LABELS[m]
        cols += [f"{label} {base}"]
        for s in others:
            cols += [f"{label} {s}", f"{label} \u0394 {s} [95%]", f"{label} p (bs)", f"{label} p (ar)"]
    return cols


def _metric_cells(scores: Mapping[str, Any], diffs: Mapping[str, Any], metrics: Sequence[str],
                  systems: Sequence[str], alpha: float, with_ci: bool = False) -> list[Cell]:
    cells: list[Cell] = []
    for m in metrics:
        cells.append(score_cell(scores[m][systems[0]], with_ci=with_ci))
        for s in systems[1:]:
            d = diffs[m][s]
            cells += [score_cell(scores[m][s], with_ci=with_ci), delta_cell(d, alpha, interval=True),
                      Cell(pval(d["p_bs"]), d["p_bs"]),
                      Cell(pval(d["p_ar"]), d["p_ar"] if d["p_ar"] is not None else -1)]
    return cells


def overview_table(result: Mapping[str, Any]) -> Table:
    """One row per direction: each metric's scores, differences, intervals and p-values."""
    s = result["settings"]
    systems = [x["name"] for x in result["systems"]]
    t = Table("overview", "All directions (click a direction for its analyses; click a header to sort)",
              ["direction", "class", "kind", "lines", *_metric_columns(s["metrics"], systems)])
    t.numeric = [False, False, False, True] + [True] * (len(t.header) - 4)
    for name, r in result["directions"].items():
        small = not r["in_averages"]
        lines = Cell(f"{r['n_lines']}{(' ' + SMALL) if small else ''}", r["n_lines"], "small" if small else "",
                     title=f"fewer than {s['min_lines']} lines: left out of the averages" if small else "")
        t.rows.append([Cell(name, href="#" + anchor(name)), Cell(r["class"] or "-"), Cell(r["kind"]), lines,
                       *_metric_cells(r["scores"], r["differences"], s["metrics"], systems, s["alpha"])])
    return t


def averages_table(result: Mapping[str, Any]) -> Table:
    """One row per group of directions: macro averages with stratified bootstrap statistics."""
    s = result["settings"]
    systems = [x["name"] for x in result["systems"]]
    t = Table("averages", f"Averages over directions with at least {s['min_lines']} test lines",
              ["group", "directions", *_metric_columns(s["metrics"], systems)])
    t.numeric = [False, True] + [True] * (len(t.header) - 2)
    for group, g in result["groups"].items():
        t.rows.append([Cell(group), Cell(str(len(g["directions"])), len(g["directions"]),
                                         title=", ".join(g["directions"])),
                       *_metric_cells(g["scores"], g["differences"], s["metrics"], systems, s["alpha"],
                                      with_ci=True)])
    return t


def direction_scores_table(name: str, r: Mapping[str, Any], result: Mapping[str, Any]) -> Table:
    """A direction's scores: each metric and system, bootstrap interval, difference, p-values."""
    s = result["settings"]
    systems = [x["name"] for x in result["systems"]]
    t = Table(anchor(name) + "-scores", f"{name}: scores ({r['n_lines']} lines)",
              ["metric", "system", "score", "bootstrap mean \u00b1 95%", "\u0394 to " + systems[0],
               "95% interval of \u0394", "p (bs)", "p (ar)"],
              numeric=[False, False, True, True, True, True, True, True])
    for m in s["metrics"]:
        for sys_name in systems:
            sc = r["scores"][m][sys_name]
            row = [Cell(LABELS[m]), Cell(sys_name), Cell(num(sc["score"]), sc["score"]),
                   Cell(f"{num(sc['mean'])} \u00b1 {num(sc['ci'])}", sc["mean"])]
            if sys_name == systems[0]:
                row += [Cell("baseline"), Cell("-"), Cell("-"), Cell("-")]
            else:
                d = r["differences"][m][sys_name]
                row += [delta_cell(d, s["alpha"]), interval_cell(d), Cell(pval(d["p_bs"]), d["p_bs"]),
                        Cell(pval(d["p_ar"]), d["p_ar"] if d["p_ar"] is not None else -1)]
            t.rows.append(row)
    return t


def sentence_bucket_table(name: str, a: Mapping[str, Any]) -> Table:
    systems = list(a["counts"])
    t = Table(anchor(name) + "-chrf", f"{name}: sentences per sentence-level chrF++ bucket",
              ["chrF++ bucket", *systems], numeric=[False] + [True] * len(systems))
    for i, label in enumerate(a["buckets"]):
        t.rows.append([Cell(label, i), *[Cell(str(a["counts"][s][i]), a["counts"][s][i]) for s in systems]])
    return t


def length_table(name: str, a: Mapping[str, Any], metrics: Sequence[str], systems: Sequence[str]) -> Table:
    t = Table(anchor(name) + "-length", f"{name}: scores by {a['side']} length (words)",
              [f"{a['side']} length", "lines", *[f"{LABELS[m]} {s}" for m in metrics for s in systems]],
              numeric=[False, True] + [True] * (len(metrics) * len(systems)))
    for i, row in enumerate(a["rows"]):
        if not row["n_lines"]:
            continue
        cells = [Cell(row["bucket"], i), Cell(str(row["n_lines"]), row["n_lines"])]
        for m in metrics:
            for s in systems:
                v = row.get("scores", {}).get(m, {}).get(s)
                cells.append(Cell(num(v), v if v is not None else -1))
        t.rows.append(cells)
    return t


def word_rows(a: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The frequency buckets with words in the reference or in some output."""
    return [r for r in a["rows"] if r["ref_words"] or any(r["out_words"].values())]


def word_table(name: str, a: Mapping[str, Any], systems: Sequence[str]) -> Table:
    t = Table(anchor(name) + "-words", f"{name}: target word F-measure by frequency in the training data",
              ["training frequency", "reference words", *[f"F {s}" for s in systems],
               *[f"P / R {s}" for s in systems]],
              numeric=[False, True] + [True] * (2 * len(systems)))
    for i, row in enumerate(word_rows(a)):
        t.rows.append([Cell(row["bucket"], i), Cell(str(row["ref_words"]), row["ref_words"]),
                       *[Cell(f"{row['fmeasure'][s]:.3f}", row["fmeasure"][s]) for s in systems],
                       *[Cell(f"{row['precision'][s]:.3f} / {row['recall'][s]:.3f}", row["precision"][s])
                         for s in systems]])
    return t


def ngram_tables(name: str, system: str, baseline: str, a: Mapping[str, Any]) -> list[Table]:
    out = []
    for key, who in (("system_better", system), ("baseline_better", baseline)):
        t = Table(f"{anchor(name)}-ngrams-{key}-{re.sub(r'[^A-Za-z0-9_-]', '_', system)}",
                  f"{name}: n-grams {who} matches in the reference more often",
                  ["n-gram", "score", f"matches {baseline}", f"matches {system}"],
                  numeric=[False, True, True, True])
        for row in a[key]:
            t.rows.append([Cell(row["ngram"]), Cell(f"{row['score']:.3f}", row["score"]),
                           Cell(str(row["baseline_matches"]), row["baseline_matches"]),
                           Cell(str(row["system_matches"]), row["system_matches"])])
        out.append(t)
    return out
