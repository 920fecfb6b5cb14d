"""``compare.html``: the comparison as one self-contained page.

Inline CSS and script (``templates/``), charts as inline SVG, every number as text (the browser's
find works), an anchor per section (links and the back button work), tables sortable by a small
inline script, nothing loaded from the network and no server needed.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from mtkit.evaluation.compare_markdown import method_lines, signatures
from mtkit.evaluation.compare_tables import (
    LABELS,
    Cell,
    Table,
    anchor,
    averages_table,
    direction_scores_table,
    length_table,
    mark,
    ngram_tables,
    num,
    overview_table,
    sentence_bucket_table,
    word_rows,
    word_table,
)

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f")
STYLE_COLOURS = {"better": "#1a7f37", "worse": "#c4322b", "": "#5d6b7a", "small": "#b9a35a"}


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _asset(name: str) -> str:
    return resources.files("mtkit.evaluation").joinpath("templates", name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ tables


def _cell(c: Cell, numeric: bool) -> str:
    classes = " ".join(x for x in ("num" if numeric else "", c.style) if x)
    attrs = f' class="{classes}"' if classes else ""
    if c.sort is not None:
        attrs += f' data-sort="{esc(c.sort)}"'
    if c.title:
        attrs += f' title="{esc(c.title)}"'
    text = esc(c.text)
    if c.href:
        text = f'<a href="{esc(c.href)}">{text}</a>'
    return f"<td{attrs}>{text}</td>"


def table_html(t: Table) -> str:
    numeric = t.numeric or [False] * len(t.header)
    num_attr = ' data-type="num"'
    head = "".join(f'<th scope="col"{num_attr if n else ""}>{esc(h)}</th>' for h, n in zip(t.header, numeric))
    body = "\n".join("<tr>" + "".join(_cell(c, n) for c, n in zip(row, numeric)) + "</tr>" for row in t.rows)
    return (f'<div class="scroll"><table class="sortable" id="{esc(t.id)}"><caption>{esc(t.caption)}</caption>'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>")


# ------------------------------------------------------------------------------ charts (inline SVG)


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) between ``lo`` and ``hi``."""
    import math

    raw = (hi - lo) / max(1, target)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 10) for k in range(int((hi - first) / step) + 1)]


def _legend(names: Sequence[str]) -> str:
    items = "".join(f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{esc(n)}</span>'
                    for i, n in enumerate(names))
    return f'<div class="legend">{items}</div>'


def bar_chart(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]],
              ymax: float | None = None, ylabel: str = "") -> str:
    """Grouped vertical bars: one group per category, one bar per series (system)."""
    names = list(series)
    ticks = nice_ticks(0.0, ymax or max([v for vals in series.values() for v in vals] + [1e-9]), 4)
    if ymax is None and ticks[-1] < max([v for vals in series.values() for v in vals] + [0.0]):
        ticks.append(ticks[-1] + (ticks[1] - ticks[0] if len(ticks) > 1 else 1.0))
    top = ymax or ticks[-1] or 1.0
    width, height, left, bottom = max(300, 64 * len(categories) + 60), 220, 46, 36
    plot_w, plot_h = width - left - 10, height - bottom - 24
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(names))
    parts = [f'<svg role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}"><title>{esc(title)}</title>']
    for v in ticks:
        y = 12 + plot_h * (1 - v / top)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    for ci, cat in enumerate(categories):
        x0 = left + ci * group_w + group_w * 0.1
        for si, name in enumerate(names):
            v = series[name][ci]
            h = plot_h * max(0.0, v) / top
            parts.append(f'<rect x="{x0 + si * bar_w:.1f}" y="{12 + plot_h - h:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}" fill="{PALETTE[si % len(PALETTE)]}"><title>{esc(name)} '
                         f'{esc(cat)}: {v:.3g}</title></rect>')
        parts.append(f'<text x="{left + (ci + 0.5) * group_w:.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{esc(cat)}</text>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="12" y2="{12 + plot_h}"/>'
                 f'<text x="{left}" y="{height - 4}">{esc(ylabel)}</text></svg>')
    return f'<figure>{_legend(names)}{"".join(parts)}</figure>'


def forest_chart(title: str, rows: Sequence[tuple[str, float, float, float, str]]) -> str:
    """Differences with their 95 % intervals, one line per (label, delta, low, high, style)."""
    if not rows:
        return ""
    lo = min(min(r[2] for r in rows), 0.0)
    hi = max(max(r[3] for r in rows), 0.0)
    span = (hi - lo) or 1.0
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    label_w, plot_w, row_h = 170, 520, 18
    height = row_h * len(rows) + 34
    x = lambda v: label_w + plot_w * (v - lo) / (hi - lo)  # noqa: E731
    parts = [f'<svg role="img" aria-label="{esc(title)}" viewBox="0 0 {label_w + plot_w + 20} {height}" '
             f'width="{label_w + plot_w + 20}" height="{height}"><title>{esc(title)}</title>',
             f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="4" y2="{height - 26}"/>']
    for i, (label, delta, low, high, style) in enumerate(rows):
        y = 12 + i * row_h
        colour = STYLE_COLOURS.get(style, STYLE_COLOURS[""])
        parts.append(f'<text x="{label_w - 6}" y="{y + 4}" text-anchor="end">{esc(label)}</text>'
                     f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" stroke="{colour}" '
                     f'stroke-width="2"/><circle cx="{x(delta):.1f}" cy="{y}" r="3.5" fill="{colour}">'
                     f'<title>{esc(label)}: {delta:+.2f} [{low:+.2f}, {high:+.2f}]</title></circle>')
    for v in nice_ticks(lo, hi):
        parts.append(f'<line class="grid" x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{height - 26}" y2="{height - 22}"/>'
                     f'<text x="{x(v):.1f}" y="{height - 10}" text-anchor="middle">{v:+g}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------ sections


def _primary_metric(result: Mapping[str, Any]) -> str:
    metrics = result["settings"]["metrics"]
    return "chrf++" if "chrf++" in metrics else metrics[0]


def _forest_rows(items: Mapping[str, Any], metric: str, system: str, alpha: float,
                 small: Sequence[str] = ()) -> list[tuple[str, float, float, float, str]]:
    rows = []
    for name, r in items.items():
        d = r["differences"][metric][system]
        style = mark(d, alpha)[1]
        rows.append((name + (" \u2020" if name in small else ""), d["delta"], d["low"], d["high"],
                     style or ("small" if name in small else "")))
    return rows


def overview_section(result: Mapping[str, Any]) -> str:
    metric = _primary_metric(result)
    systems = [s["name"] for s in result["systems"]]
    charts = "".join(
        f"<h3>{esc(LABELS[metric])} \u0394 {esc(s)} \u2212 {esc(systems[0])} per direction (95% intervals)</h3>"
        + forest_chart(f"{LABELS[metric]} difference per direction",
                       _forest_rows(result["directions"], metric, s, result["settings"]["alpha"],
                                    result["below_min_lines"]))
        for s in systems[1:])
    return (f'<section id="overview"><h2>Overview</h2>{table_html(overview_table(result))}{charts}</section>')


def averages_section(result: Mapping[str, Any]) -> str:
    s = result["settings"]
    if not result["groups"]:
        body = (f"<p class=\"note\">No direction has {esc(s['min_lines'])} test lines or more, so no average "
                "is computed (see --min-lines).</p>")
    else:
        metric = _primary_metric(result)
        systems = [x["name"] for x in result["systems"]]
        body = table_html(averages_table(result)) + "".join(
            f"<h3>{esc(LABELS[metric])} \u0394 {esc(x)} \u2212 {esc(systems[0])} per group (95% intervals)</h3>"
            + forest_chart("difference per group", _forest_rows(result["groups"], metric, x, s["alpha"]))
            for x in systems[1:])
    return f'<section id="averages"><h2>Averages</h2>{body}</section>'


def left_out_section(result: Mapping[str, Any]) -> str:
    items = []
    for d, systems in result["left_out"].items():
        items.append(f"<li>{esc(d)}: only in {esc(', '.join(systems))}</li>")
    notes = [f"<li>{esc(d)}: {esc(n)}</li>" for d, r in result["directions"].items() for n in r["notes"]]
    if not items and not notes:
        return ""
    out = '<section id="inputs"><h2>Inputs left out or changed</h2>'
    if items:
        out += f"<h3>Not compared: not every system has these directions</h3><ul>{''.join(items)}</ul>"
    if notes:
        out += f"<h3>Notes on the compared directions</h3><ul>{''.join(notes)}</ul>"
    return out + "</section>"


def pair(*blocks: str) -> str:
    """Blocks side by side where the window is wide enough."""
    return '<div class="pair">' + "".join(blocks) + "</div>"


def _chrf_block(name: str, a: Mapping[str, Any]) -> str:
    chart = bar_chart(f"{name}: sentences per chrF++ bucket", a["buckets"],
                      {s: [float(v) for v in c] for s, c in a["counts"].items()}, ylabel="sentences")
    return (f'<h3 id="{anchor(name)}-chrf-h">Sentence-level chrF++</h3><p class="note">How many sentences of '
            "each system score in each band of sentence chrF++ (more mass on the right is better).</p>"
            + pair(chart, table_html(sentence_bucket_table(name, a))))


def _length_block(name: str, a: Mapping[str, Any], metric: str, metrics: Sequence[str],
                  systems: Sequence[str]) -> str:
    rows = [r for r in a["rows"] if r["n_lines"]]
    chart = bar_chart(f"{name}: {LABELS[metric]} by {a['side']} length", [r["bucket"] for r in rows],
                      {s: [r["scores"][metric][s] for r in rows] for s in systems}, ylabel=LABELS[metric])
    return (f'<h3 id="{anchor(name)}-length-h">Scores by {esc(a["side"])} length</h3><p class="note">Corpus '
            f"scores on the sentences whose {esc(a['side'])} has that many words (sacrebleu's tokeniser).</p>"
            + pair(chart, table_html(length_table(name, a, metrics, systems))))


def _word_block(name: str, a: Mapping[str, Any], systems: Sequence[str]) -> str:
    head = f'<h3 id="{anchor(name)}-words-h">Target words by training frequency</h3>'
    if "skipped" in a:
        return head + f'<p class="note">Not computed: {esc(a["skipped"])}.</p>'
    rows = word_rows(a)
    chart = bar_chart(f"{name}: word F-measure by training frequency", [r["bucket"] for r in rows],
                      {s: [r["fmeasure"][s] for r in rows] for s in systems}, ymax=1.0,
                      ylabel="F-measure")
    return (head + '<p class="note">F-measure of the reference words, grouped by how often each word occurs in '
            "the training data of the target language (compare-mt's word accuracy analysis; &lt;1 = unseen)."
            "</p>" + pair(chart, table_html(word_table(name, a, systems))))


def _ngram_block(name: str, baseline: str, ngrams: Mapping[str, Any]) -> str:
    out = (f'<h3 id="{anchor(name)}-ngrams-h">N-grams matched by one system and missed by the other</h3>'
           '<p class="note">Score (compare-mt): (baseline matches + 1) / (baseline matches + system matches + 2); '
           "near 0 the system gets the n-gram right where the baseline does not, near 1 the other way.</p>")
    for system, a in ngrams.items():
        out += pair(*(table_html(t) for t in ngram_tables(name, system, baseline, a)))
    return out


def _example(e: Mapping[str, Any]) -> str:
    rows = []
    if e["source"] is not None:
        rows.append(f'<tr><td>source</td><td class="text">{esc(e["source"])}</td><td></td></tr>')
    rows.append(f'<tr><td>reference</td><td class="text">{esc(e["reference"])}</td><td></td></tr>')
    for s, hyp in e["hypotheses"].items():
        rows.append(f'<tr><td>{esc(s)}</td><td class="text">{esc(hyp)}</td>'
                    f'<td class="num">{num(e["chrf++"][s], 1)}</td></tr>')
    return (f'<table class="example"><caption>line {e["line"]}: \u0394 chrF++ {e["difference"]:+.1f}</caption>'
            f"<thead><tr><th>side</th><th>text</th><th>chrF++</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")


def _examples_block(name: str, baseline: str, examples: Mapping[str, Any]) -> str:
    out = f'<h3 id="{anchor(name)}-examples-h">Sentences where the systems differ most (sentence chrF++)</h3>'
    for system, ex in examples.items():
        for key, title in (("system_better", f"{system} better than {baseline}"),
                           ("baseline_better", f"{baseline} better than {system}")):
            out += f"<h4>{esc(title)}</h4>" + ("".join(_example(e) for e in ex[key])
                                                or '<p class="note">none</p>')
    return out


def direction_section(name: str, r: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    s = result["settings"]
    systems = [x["name"] for x in result["systems"]]
    a = r["analyses"]
    small = "" if r["in_averages"] else (f" \u2020 fewer than {s['min_lines']} lines: left out of the "
                                        "averages.")
    meta = (f"{esc(r['kind'])}, resource class {esc(r['class'] or '-')}, {r['n_lines']} test lines.{esc(small)} "
            f"Reference: <code>{esc(r['files']['reference'])}</code>"
            + (f"; source: <code>{esc(r['files']['source'])}</code>" if r["files"].get("source") else ""))
    notes = "".join(f'<p class="note">Note: {esc(n)}</p>' for n in r["notes"])
    return (f'<section class="direction" id="{anchor(name)}"><h2>{esc(name)} '
            f'<a class="back" href="#overview">back to the overview</a></h2><p class="meta">{meta}</p>{notes}'
            + table_html(direction_scores_table(name, r, result))
            + _chrf_block(name, a["sentence_chrf"])
            + _length_block(name, a["length"], _primary_metric(result), s["metrics"], systems)
            + _word_block(name, a["word_accuracy"], systems)
            + _ngram_block(name, systems[0], a["ngrams"])
            + _examples_block(name, systems[0], a["examples"]) + "</section>")


def settings_section(result: Mapping[str, Any]) -> str:
    items = [("systems", "; ".join(f"{s['name']} = {s['path']}" for s in result["systems"]))]
    items += [(k, v) for k, v in result["settings"].items()]
    items += [("versions", ", ".join(f"{k} {v}" for k, v in result["versions"].items()))]
    items += [(f"signature {LABELS[m]}", sig + (f" ({', '.join(ds)})" if len(sigs) > 1 else ""))
              for m, sigs in signatures(result).items() for sig, ds in sigs.items()]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f'<section id="settings"><h2>Settings and signatures</h2><dl class="settings">{body}</dl></section>'


def contents(result: Mapping[str, Any]) -> str:
    dirs = " ".join(f'<a href="#{anchor(d)}">{esc(d)}</a>' for d in result["directions"])
    extra = '<li><a href="#inputs">Inputs left out or changed</a></li>' if (
        result["left_out"] or any(r["notes"] for r in result["directions"].values())) else ""
    return ('<nav id="contents"><h2>Contents</h2><ul><li><a href="#overview">Overview</a></li>'
            f'<li><a href="#averages">Averages</a></li>{extra}<li class="dirs">Directions: {dirs}</li>'
            '<li><a href="#settings">Settings and signatures</a></li></ul></nav>')


def render_html(result: Mapping[str, Any]) -> str:
    names = [s["name"] for s in result["systems"]]
    title = f"mtkit compare: {' vs '.join(names)}"
    method = "".join(f'<p class="method">{esc(line).replace("**", "")}</p>' for line in method_lines(result))
    body = (f"<header><h1>{esc(title)}</h1>{method}</header>" + contents(result) + overview_section(result)
            + averages_section(result) + left_out_section(result)
            + "".join(direction_section(n, r, result) for n, r in result["directions"].items())
            + settings_section(result))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>\n{_asset('compare.css')}</style></head>\n<body>\n{body}\n"
            f"<script>\n{_asset('compare.js')}</script>\n</body></html>\n")
