"""Tables, aggregates and plots for many directions.

Everything is rendered to bytes in memory first; :func:`write_outputs` then puts the files in place,
so a failing run leaves nothing behind. Plots use matplotlib's object API with the Agg canvas (no
pyplot, no global backend switch), so they work headless and inside other programs.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtkit.io import atomic_write
from mtkit.langs import to_flores

SCORE_METRICS = ("bleu", "spbleu", "chrf++", "chrf")
LABELS = {"bleu": "BLEU", "spbleu": "spBLEU", "chrf++": "chrF++", "chrf": "chrF",
          "added_toxicity_percent": "added tox. %"}
ENGLISH = "eng_Latn"
KINDS = ("x->en", "en->x", "x->y")


def is_english(code: str) -> bool:
    return to_flores(code) == ENGLISH


def direction_kind(src: str, tgt: str) -> str:
    """``x->en``, ``en->x`` or ``x->y`` (no English side)."""
    if is_english(tgt):
        return "x->en"
    if is_english(src):
        return "en->x"
    return "x->y"


def row_values(result: Mapping[str, Any]) -> dict[str, float | None]:
    """The numbers of one direction that tables and averages use."""
    values: dict[str, float | None] = {m: result.get(m) for m in SCORE_METRICS if m in result}
    tox = result.get("toxicity")
    if tox is not None:
        values["added_toxicity_percent"] = tox.get("added_percent")
    return values


def aggregates(results: Mapping[str, Mapping[str, Any]],
               classes: Mapping[str, str] | None = None,
               class_order: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Mean of every metric over groups of directions.

    Groups, in this order: ``all``, ``x->en``, ``en->x``, ``x->y`` and, with resource classes
    (Flores code -> class), ``{class}``, ``{class} x->en``, ``{class} en->x`` for each class in
    ``class_order`` (default: sorted). A direction's class is the class of its non-English language;
    directions without English are not put in a class.
    """
    groups: dict[str, list[str]] = {k: [] for k in ("all", *KINDS)}
    order = list(class_order) if class_order else sorted(set((classes or {}).values()))
    for cls in order:
        for k in ("", " x->en", " en->x"):
            groups[cls + k] = []
    for name, r in results.items():
        kind = direction_kind(r["src_lang"], r["tgt_lang"])
        keys = ["all", kind]
        cls = _class_of(r, classes)
        if cls is not None:
            keys += [cls, f"{cls} {kind}"]
        for k in keys:
            groups.setdefault(k, []).append(name)
    out: dict[str, dict[str, Any]] = {}
    for group, names in groups.items():
        if not names:
            continue
        entry: dict[str, Any] = {"n_directions": len(names), "directions": names}
        rows = [row_values(results[n]) for n in names]
        for metric in list(SCORE_METRICS) + ["added_toxicity_percent"]:
            vals = [row[metric] for row in rows if row.get(metric) is not None]
            if vals and len(vals) == len(rows):
                entry[metric] = sum(vals) / len(vals)
        out[group] = entry
    return out


def _fmt(value: Any, width: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{width}f}"
    return str(value)


def _columns(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    present = {k for r in results.values() for k, v in row_values(r).items() if v is not None}
    return [m for m in list(SCORE_METRICS) + ["added_toxicity_percent"] if m in present]


def direction_csv(results: Mapping[str, Mapping[str, Any]], classes: Mapping[str, str] | None,
                  width: int) -> bytes:
    cols = _columns(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["direction", "src_lang", "tgt_lang", "kind", "resource_class", "n_lines", *cols])
    for name, r in results.items():
        vals = row_values(r)
        w.writerow([name, r["src_lang"], r["tgt_lang"], direction_kind(r["src_lang"], r["tgt_lang"]),
                    _class_of(r, classes) or "", r["n_lines"],
                    *[_fmt(vals.get(c), width) if vals.get(c) is not None else "" for c in cols]])
    return buf.getvalue().encode("utf-8")


def class_of(src: str, tgt: str, classes: Mapping[str, str] | None) -> str | None:
    """Resource class of a direction: the class (Flores code -> class) of its non-English language;
    None for directions without English or without classes."""
    if not classes:
        return None
    kind = direction_kind(src, tgt)
    if kind == "x->y":
        return None
    return classes.get(to_flores(src if kind == "x->en" else tgt))


def _class_of(r: Mapping[str, Any], classes: Mapping[str, str] | None) -> str | None:
    return class_of(r["src_lang"], r["tgt_lang"], classes)


def markdown_report(results: Mapping[str, Mapping[str, Any]], aggs: Mapping[str, Mapping[str, Any]],
                    classes: Mapping[str, str] | None, width: int) -> bytes:
    cols = _columns(results)
    head = ["direction", "lines", *[LABELS[c] for c in cols]] + (["class"] if classes else [])
    align = ["---"] + ["---:"] * (1 + len(cols)) + (["---"] if classes else [])
    lines = ["# Evaluation", "", "## Per direction", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for name, r in results.items():
        vals = row_values(r)
        row = [name, str(r["n_lines"]), *[_fmt(vals.get(c), width) for c in cols]]
        if classes:
            row.append(_class_of(r, classes) or "-")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Averages", "", "| group | directions | " + " | ".join(LABELS[c] for c in cols) + " |",
              "|---|---:|" + "---:|" * len(cols)]
    for group, a in aggs.items():
        lines.append(f"| {group} | {a['n_directions']} | "
                     + " | ".join(_fmt(a.get(c), width) for c in cols) + " |")
    lines += ["", "## Signatures", ""]
    for metric, sigs in collect_signatures(results).items():
        for sig, names in sigs.items():
            where = "" if len(sigs) == 1 else f" ({', '.join(names)})"
            lines.append(f"- {LABELS.get(metric, metric)}: `{sig}`{where}")
    tox_lines = [(n, r["toxicity"]) for n, r in results.items() if r.get("toxicity")]
    if tox_lines:
        lines += ["", "## Added toxicity", ""]
        for name, t in tox_lines:
            if t.get("added_lines") is None:
                lines.append(f"- {name}: no source, hypothesis matches on lines {t['hyp_matched_lines']}")
                continue
            items = ", ".join(f"{k} ×{v}" for k, v in t["added_items"].items()) or "none"
            lines.append(f"- {name}: {len(t['added_lines'])} of {t['n_lines']} lines "
                         f"({_fmt(t['added_percent'], width)}%); lines {t['added_lines']}; items: {items}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def collect_signatures(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """metric -> signature -> directions that used it (signatures differ when tokenisers do)."""
    out: dict[str, dict[str, list[str]]] = {}
    for name, r in results.items():
        for metric, sig in r.get("signatures", {}).items():
            out.setdefault(metric, {}).setdefault(sig, []).append(name)
    return out


def _languages(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted({r["src_lang"] for r in results.values()} | {r["tgt_lang"] for r in results.values()})


def figure_png(fig: Any) -> bytes:
    """A matplotlib Figure (object API, no pyplot) as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def heatmap_png(results: Mapping[str, Mapping[str, Any]], metric: str = "chrf++") -> bytes:
    """Source (rows) x target (columns) heat-map of one metric; empty cells are directions not scored."""
    import numpy as np
    from matplotlib.figure import Figure

    srcs = tgts = _languages(results)
    grid = np.full((len(srcs), len(tgts)), np.nan)
    for r in results.values():
        if r.get(metric) is not None:
            grid[srcs.index(r["src_lang"]), tgts.index(r["tgt_lang"])] = r[metric]
    size = max(4.0, 0.6 * max(len(srcs), len(tgts)) + 2.0)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.add_subplot()
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(tgts)), labels=tgts, rotation=60, ha="right")
    ax.set_yticks(range(len(srcs)), labels=srcs)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    ax.set_title(f"{LABELS.get(metric, metric)} by direction")
    if len(srcs) * len(tgts) <= 400:
        for i in range(len(srcs)):
            for j in range(len(tgts)):
                if not math.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center",
                            color="white" if grid[i, j] < 60 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label=LABELS.get(metric, metric))
    return figure_png(fig)


def language_bars_png(results: Mapping[str, Mapping[str, Any]], metric: str = "chrf++") -> bytes:
    """Per language: mean ``metric`` of directions into it and out of it."""
    from matplotlib.figure import Figure

    langs = _languages(results)
    into, out = [], []
    for lang in langs:
        i = [r[metric] for r in results.values() if r["tgt_lang"] == lang and r.get(metric) is not None]
        o = [r[metric] for r in results.values() if r["src_lang"] == lang and r.get(metric) is not None]
        into.append(sum(i) / len(i) if i else 0.0)
        out.append(sum(o) / len(o) if o else 0.0)
    fig = Figure(figsize=(max(5.0, 0.7 * len(langs) + 2.0), 4.0))
    ax = fig.add_subplot()
    x = list(range(len(langs)))
    ax.bar([v - 0.2 for v in x], into, width=0.4, label="into the language (x->lang)")
    ax.bar([v + 0.2 for v in x], out, width=0.4, label="out of the language (lang->x)")
    ax.set_xticks(x, labels=langs, rotation=60, ha="right")
    ax.set_ylabel(f"mean {LABELS.get(metric, metric)}")
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(f"{LABELS.get(metric, metric)} per language")
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    return figure_png(fig)


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def round_scores(obj: Any, width: int | None) -> Any:
    """Round the metric scores (``bleu``, ``spbleu``, ``chrf++``, ``chrf`` keys) in a nested
    structure to ``width`` decimals, as sacrebleu's ``-w`` does; other numbers are left alone."""
    if width is None:
        return obj
    if isinstance(obj, dict):
        return {k: round(v, width) if k in SCORE_METRICS and isinstance(v, float)
                else round_scores(v, width) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_scores(v, width) for v in obj]
    return obj


def write_outputs(out_dir: str | os.PathLike, files: Mapping[str, bytes]) -> list[Path]:
    """Put rendered files into ``out_dir`` with nothing half-written.

    A new folder is filled under a temporary name and renamed into place; into an existing folder
    each file is written to a temporary name and renamed over its target.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir()  # unlike mkdtemp, honours the umask
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return [out / n for n in files]
    paths = []
    for name, data in files.items():
        with atomic_write(out / name, "wb") as f:
            f.write(data)
        paths.append(out / name)
    return paths
