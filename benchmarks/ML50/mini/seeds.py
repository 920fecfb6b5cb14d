#!/usr/bin/env python
"""The mBART-50 claim over seeds: multilingual finetuning minus bilingual-from-scratch, per direction
and per resource class, from the `mtkit compare` result of each seed's ML50-mini run.

Each seed's run is `recipes/mini/run.sh` with its own MINI_SEED, published with MINI_PUBLISH=1 (seed 1
into benchmarks/ML50/mini/, the others with MINI_PUBLISH_DIR=benchmarks/ML50/mini/seedN). This reads
their compare/compare.json and writes seeds.json and seeds.md:

    python benchmarks/ML50/mini/seeds.py benchmarks/ML50/mini benchmarks/ML50/mini/seed2 \
        --out benchmarks/ML50/mini/seeds

Per group (resource class, and every direction): each seed's difference with its paired-bootstrap 95%
interval (sacrebleu's, through mtkit compare), the mean and standard deviation over seeds, and a
verdict: "held" when every seed's interval lies above 0, "did not hold" when every seed's lies below
0, else "could not tell". The test sets must be the same in every run (they are: the data stage does
not depend on MINI_SEED); a run whose test sizes differ is refused.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from mtkit.io import write_json, write_text  # noqa: E402

SYSTEM, BASELINE = "multilingual_ft", "bilingual_scratch"
METRICS = ("bleu", "chrf++")


def load(folder: Path) -> tuple[int, dict]:
    """(seed, compare.json) of one published run folder."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    cmp = json.loads((folder / "compare/compare.json").read_text(encoding="utf-8"))
    if cmp.get("baseline") != BASELINE or SYSTEM not in [s["name"] for s in cmp["systems"]]:
        raise SystemExit(f"{folder}: compare.json does not compare {SYSTEM} with {BASELINE}")
    return int(results["settings"]["SEED"]), cmp


def verdict(cis: list[tuple[float, float]]) -> str:
    if all(lo > 0 for lo, _ in cis):
        return "held"
    if all(hi < 0 for _, hi in cis):
        return "did not hold"
    return "could not tell"


def summarise(runs: list[tuple[int, dict]]) -> dict:
    runs = sorted(runs, key=lambda r: r[0])
    seeds = [s for s, _ in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"two runs with the same seed: {seeds}")
    first = runs[0][1]
    for seed, cmp in runs[1:]:
        for d, info in first["directions"].items():
            other = cmp["directions"].get(d)
            if other is None or other["n_lines"] != info["n_lines"]:
                raise SystemExit(f"seed {seed}: direction {d} is missing or has other test sizes; "
                                 "the seeds must share the test sets")
    # groups: resource classes (with their directions) and single directions
    groups: dict[str, dict] = {}
    for name, g in first["groups"].items():
        if " " in name or name in ("x->en", "en->x"):
            continue  # keep the plain resource classes and 'all'
        groups[name] = {"directions": g["directions"], "source": ("groups", name)}
    for d in first["directions"]:
        groups[d] = {"directions": [d], "source": ("directions", d),
                     "class": first["directions"][d]["class"], "test_lines": first["directions"][d]["n_lines"],
                     "in_averages": first["directions"][d]["in_averages"]}
    out = {}
    for name, g in groups.items():
        kind, key = g["source"]
        row = {k: v for k, v in g.items() if k != "source"}
        for metric in METRICS:
            per_seed = []
            for seed, cmp in runs:
                diff = cmp[kind][key]["differences"][metric][SYSTEM]
                per_seed.append({"seed": seed, "delta": diff["delta"], "ci95": [diff["low"], diff["high"]],
                                 "p_bootstrap": diff["p_bs"]})
            deltas = [p["delta"] for p in per_seed]
            row[metric] = {
                "per_seed": per_seed,
                "mean": statistics.fmean(deltas),
                "sd": statistics.stdev(deltas) if len(deltas) > 1 else None,
                "verdict": verdict([tuple(p["ci95"]) for p in per_seed]),
            }
        out[name] = row
    return {"claim": "mBART-50: multilingual finetuning of a denoising-pretrained model beats bilingual "
                     "models from scratch, most on low-resource directions",
            "difference": f"{SYSTEM} - {BASELINE}", "seeds": seeds,
            "n_bootstrap": first["settings"]["n_bootstrap"], "min_lines": first["settings"]["min_lines"],
            "groups": out}


def markdown(s: dict) -> str:
    lines = [f"# ML50-mini over seeds: {s['difference']}", "",
             f"Seeds {', '.join(map(str, s['seeds']))}; paired bootstrap ({s['n_bootstrap']} resamples) "
             f"95% intervals per seed; verdict 'held' when every seed's interval is above 0, 'did not hold' "
             f"when every seed's is below 0. Groups average the directions with at least {s['min_lines']} "
             "test lines.", "",
             "| group | class | test lines | BLEU per seed [95% CI] | BLEU mean (sd) | verdict | chrF++ per seed [95% CI] | chrF++ mean (sd) | verdict |",
             "|---|---|---:|---|---:|---|---|---:|---|"]
    for name, g in s["groups"].items():
        cells = [name, g.get("class", ""),
                 str(g["test_lines"]) + ("" if g.get("in_averages", True) else " (not averaged)")
                 if "test_lines" in g else ""]
        for metric in METRICS:
            m = g[metric]
            cells.append("; ".join(f"{p['delta']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]"
                                   for p in m["per_seed"]))
            cells.append(f"{m['mean']:+.2f}" + (f" ({m['sd']:.2f})" if m["sd"] is not None else ""))
            cells.append(m["verdict"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="published run folders (results.json, compare/compare.json)")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    s = summarise([load(f) for f in args.runs])
    s["command"] = "python benchmarks/ML50/mini/seeds.py " + " ".join(
        str(p.resolve().relative_to(REPO)) if p.resolve().is_relative_to(REPO) else str(p) for p in args.runs) \
        + f" --out {args.out}"
    write_json(args.out.with_suffix(".json"), s)
    write_text(args.out.with_suffix(".md"), markdown(s))
    print(markdown(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
