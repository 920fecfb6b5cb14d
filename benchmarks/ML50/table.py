"""Print the ML50 per-language table (x->en and en->x, grouped by resource class) from the
scores.json that `mtkit evaluate --hyp-dir ... --out DIR` wrote, next to the published averages.

Only the averages in the abstract of Tang et al. (2020, arXiv 2008.00401) are known as text:
multilingual finetuning is +9.3 BLEU on average over bilingual models trained from scratch and +1 BLEU
over the strongest baselines. The per-direction tables of the paper are images; no number of theirs
is printed here except those two averages, and they are printed as what they are (differences).

    python benchmarks/ML50/table.py --scores OUT/report/scores.json [--baseline BILINGUAL/scores.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

PUBLISHED = {
    "source": "Tang et al. 2020, arXiv 2008.00401, abstract",
    "ml_ft_vs_bilingual_scratch_bleu": 9.3,
    "ml_ft_vs_strongest_baseline_bleu": 1.0,
}
EN = "en_XX"
CLASS_ORDER = ("high", "medium", "mid", "low", "very low")


def load(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"error: {p}: no such file (run mtkit evaluate --out first)")
    return json.loads(p.read_text(encoding="utf-8"))


def per_language(scores: dict) -> dict[str, dict[str, dict]]:
    """lang -> {'x-en': {...}, 'en-x': {...}} from the direction names of mtkit evaluate."""
    out: dict[str, dict[str, dict]] = {}
    for name, r in scores["directions"].items():
        src, _, tgt = name.partition("-")
        if tgt == EN:
            out.setdefault(src, {})["x-en"] = r
        elif src == EN:
            out.setdefault(tgt, {})["en-x"] = r
    return out


def _fmt(r: dict | None, metric: str) -> str:
    return f"{r[metric]:.1f}" if r and metric in r else "–"


def _mean(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def build_table(scores: dict, name: str, baseline: dict | None = None) -> str:
    langs = per_language(scores)
    classes = scores.get("resource_classes") or {}
    lines_by_lang = scores.get("training_lines") or {}
    base = per_language(baseline) if baseline else {}

    def cls(lang: str) -> str:
        return classes.get(lang, "unknown")

    order = sorted(langs, key=lambda lg: (CLASS_ORDER.index(cls(lg)) if cls(lg) in CLASS_ORDER else 99,
                                          -int(lines_by_lang.get(lg, 0) or 0), lg))
    head = ["| class | lang | x→en BLEU | x→en chrF++ | en→x BLEU | en→x chrF++ |"]
    sep = ["|---|---|---:|---:|---:|---:|"]
    if base:
        head[0] += " x→en Δ vs baseline | en→x Δ vs baseline |"
        sep[0] += "---:|---:|"
    rows = []
    for lg in order:
        d = langs[lg]
        row = f"| {cls(lg)} | {lg} | {_fmt(d.get('x-en'), 'bleu')} | {_fmt(d.get('x-en'), 'chrf++')} | " \
              f"{_fmt(d.get('en-x'), 'bleu')} | {_fmt(d.get('en-x'), 'chrf++')} |"
        if base:
            deltas = []
            for side in ("x-en", "en-x"):
                a, b = d.get(side), base.get(lg, {}).get(side)
                deltas.append(f"{a['bleu'] - b['bleu']:+.1f}" if a and b else "–")
            row += f" {deltas[0]} | {deltas[1]} |"
        rows.append(row)

    avg = ["", "| class | directions | x→en BLEU | en→x BLEU | all BLEU |", "|---|---:|---:|---:|---:|"]
    groups = sorted({cls(lg) for lg in langs}, key=lambda c: CLASS_ORDER.index(c) if c in CLASS_ORDER else 99)
    for g in [*groups, "all"]:
        members = [lg for lg in langs if g == "all" or cls(lg) == g]
        xe = [langs[lg]["x-en"]["bleu"] for lg in members if "x-en" in langs[lg]]
        ex = [langs[lg]["en-x"]["bleu"] for lg in members if "en-x" in langs[lg]]
        a, b, c = _mean(xe), _mean(ex), _mean(xe + ex)
        avg.append(f"| {g} | {len(xe) + len(ex)} | {'–' if a is None else f'{a:.1f}'} | "
                   f"{'–' if b is None else f'{b:.1f}'} | {'–' if c is None else f'{c:.1f}'} |")

    pub = ["", "Published (only the abstract's averages are available as text; the paper's per-direction "
               "tables are images and are not reproduced here):",
           f"- multilingual finetuning vs bilingual from scratch: +{PUBLISHED['ml_ft_vs_bilingual_scratch_bleu']} "
           "BLEU on average",
           f"- multilingual finetuning vs the strongest baselines: +{PUBLISHED['ml_ft_vs_strongest_baseline_bleu']} "
           "BLEU on average"]
    if base:
        shared = [(langs[lg][s]["bleu"], base[lg][s]["bleu"]) for lg in langs for s in ("x-en", "en-x")
                  if s in langs[lg] and s in base.get(lg, {})]
        if shared:
            delta = _mean([a - b for a, b in shared])
            pub.append(f"- this run: {name} vs the given baseline: {delta:+.1f} BLEU on average over "
                       f"{len(shared)} shared directions")
    sig = scores.get("signatures") or {}
    tail = ["", "Signatures: " + "; ".join(f"{k}: {' / '.join(v) if isinstance(v, dict) else v}"
                                          for k, v in sig.items())] if sig else []
    note = ["", "Resource classes: mtkit evaluate's grouping by counted training lines with English "
                "(the paper's exact thresholds are not available as text)."]
    return "\n".join([f"# ML50: {name}", "", *head, *sep, *rows, *avg, *pub, *note, *tail, ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", required=True, help="scores.json written by mtkit evaluate --out")
    ap.add_argument("--name", default="model")
    ap.add_argument("--baseline", help="scores.json of bilingual-from-scratch systems, for the +9.3 comparison")
    ap.add_argument("--out", help="also write the table here (Markdown)")
    args = ap.parse_args(argv)
    text = build_table(load(args.scores), args.name, load(args.baseline) if args.baseline else None)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
