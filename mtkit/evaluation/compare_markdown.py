"""``report.md`` of ``mtkit compare``: the overview and averages tables, what was left out, the
settings and signatures (the analyses are in ``compare.html`` and ``compare.json``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtkit.evaluation.compare_tables import DOWN, SMALL, UP, Table, averages_table, overview_table


def markdown_table(t: Table) -> list[str]:
    lines = [f"**{t.caption}**", "", "| " + " | ".join(t.header) + " |",
             "|" + "|".join("---:" if n else "---" for n in t.numeric) + "|"]
    for row in t.rows:
        lines.append("| " + " | ".join(c.text.replace("|", "\\|") for c in row) + " |")
    return lines + [""]


def method_lines(result: Mapping[str, Any]) -> list[str]:
    """What the marks and numbers mean, with the resamples and the seed (shared with the HTML)."""
    s = result["settings"]
    return [
        f"Baseline: **{result['baseline']}**. \u0394 = system \u2212 baseline. {UP} / {DOWN}: significantly "
        f"better / worse (paired bootstrap p < {s['alpha']}). {SMALL}: fewer than {s['min_lines']} test lines, "
        "shown but left out of the averages.",
        f"Paired bootstrap: {s['n_bootstrap']} resamples; approximate randomization: {s['n_trials']} trials; "
        f"seed {s['seed']}. Per direction: sacrebleu's PairedTest. Averages: stratified paired bootstrap "
        "(each direction's sentences resampled on their own, the same indices for every system) and "
        "stratified approximate randomization, with sacrebleu's interval and p-value formulas.",
    ]


def render_markdown(result: Mapping[str, Any]) -> str:
    names = [s["name"] for s in result["systems"]]
    lines = [f"# Comparison: {' vs '.join(names)}", "", *method_lines(result), ""]
    lines += ["## Directions", "", *markdown_table(overview_table(result))]
    lines += ["## Averages", ""]
    if result["groups"]:
        lines += markdown_table(averages_table(result))
    else:
        lines += [f"No direction has {result['settings']['min_lines']} test lines or more: no averages "
                  "(see --min-lines).", ""]
    lines += _left_out(result)
    lines += ["## Systems", ""] + [f"- {s['name']}: `{s['path']}`" for s in result["systems"]] + [""]
    lines += ["## Settings", ""]
    lines += [f"- {k}: {v}" for k, v in result["settings"].items() if k != "bootstrap_method"]
    lines += [f"- versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}", ""]
    lines += ["## Signatures (paired bootstrap)", ""] + [
        f"- {m}: `{sig}`" + (f" ({', '.join(ds)})" if len(sigs) > 1 else "")
        for m, sigs in signatures(result).items() for sig, ds in sigs.items()] + [""]
    return "\n".join(lines)


def _left_out(result: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if result["left_out"]:
        lines += ["## Not compared (not every system has them)", ""]
        lines += [f"- {d}: only {', '.join(s)}" for d, s in result["left_out"].items()] + [""]
    notes = [(d, n) for d, r in result["directions"].items() for n in r["notes"]]
    if notes:
        lines += ["## Notes on the inputs", ""] + [f"- {d}: {n}" for d, n in notes] + [""]
    return lines


def signatures(result: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """metric -> signature -> directions (signatures differ where the BLEU tokeniser does)."""
    out: dict[str, dict[str, list[str]]] = {}
    for d, r in result["directions"].items():
        for m, sig in r["signatures"].items():
            out.setdefault(m, {}).setdefault(sig, []).append(d)
    return out
