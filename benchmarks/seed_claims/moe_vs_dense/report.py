"""Tables, plots and summary numbers of the MoE-vs-dense experiment (from run.py's results)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common

GROUPS = ("all", "high", "mid", "low")
METRICS = ("chrf++", "bleu")
PAIRS = (("moe", "dense"), ("moe_eom", "dense"), ("moe_eom", "moe"))


def compare_summary(c: dict[str, Any]) -> dict[str, Any]:
    """The parts of mtkit compare's compare.json the report uses."""
    groups = {}
    for g, v in c["groups"].items():
        groups[g] = {"directions": v["directions"],
                     "scores": {m: {s: r["score"] for s, r in v["scores"][m].items()} for m in v["scores"]},
                     "differences": {m: {s: {k: r[k] for k in ("delta", "low", "high", "p_bs", "p_ar") if k in r}
                                         for s, r in v["differences"][m].items()} for m in v["differences"]}}
    dirs = {d: {"class": v.get("class"), "n_lines": v["n_lines"], "in_averages": v["in_averages"],
                "scores": {m: {s: r["score"] for s, r in v["scores"][m].items()} for m in v["scores"]}}
            for d, v in c["directions"].items()}
    return {"baseline": c["baseline"], "systems": c["systems"], "groups": groups, "directions": dirs,
            "below_min_lines": c.get("below_min_lines", []), "settings": c.get("settings", {})}


def class_curve(curve: list[dict[str, Any]], directions: Sequence[str]) -> list[tuple[int, float]]:
    """(updates, mean valid nll over ``directions``) at every validation that has them all."""
    out = []
    for c in curve:
        vals = [c["directions"].get(d) for d in directions]
        if vals and all(v is not None for v in vals):
            out.append((c["updates"], sum(vals) / len(vals)))
    return out


def _by_class(classes: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d, k in classes.items():
        out.setdefault(k, []).append(d)
    return out


def overfitting(curves: dict[str, list], classes: dict[str, str], systems: Sequence[str],
                seeds: Sequence[int]) -> dict[str, Any]:
    """Per system, class and seed: the update of the lowest class-mean valid nll, that nll, the nll
    at the last validation, and the rise from the lowest to the last (> 0: overfitting)."""
    out: dict[str, Any] = {}
    for sys_ in systems:
        out[sys_] = {}
        for cls, dirs in sorted(_by_class(classes).items()):
            rows = []
            for seed in seeds:
                cc = class_curve(curves.get(f"{sys_}_s{seed}", []), dirs)
                if not cc:
                    continue
                best_u, best = min(cc, key=lambda x: x[1])
                rows.append({"seed": seed, "best_update": best_u, "best_nll": round(best, 4),
                             "last_update": cc[-1][0], "last_nll": round(cc[-1][1], 4),
                             "rise": round(cc[-1][1] - best, 4)})
            out[sys_][cls] = {"seeds": rows, "mean_rise": _r(common.mean(r["rise"] for r in rows)),
                              "mean_best_update": _r(common.mean(r["best_update"] for r in rows)),
                              "mean_last_nll": _r(common.mean(r["last_nll"] for r in rows))}
    return out


def flattening(curves: dict[str, list], systems: Sequence[str], seeds: Sequence[int], tol: float = 0.02) -> dict[str, Any]:
    """Per run: the first validation whose overall valid nll is within ``tol`` (bits) of the run's
    lowest, and how much it still fell in the last quarter of the budget."""
    out: dict[str, Any] = {"tolerance_bits": tol}
    for sys_ in systems:
        rows = []
        for seed in seeds:
            cc = [(c["updates"], c["nll"]) for c in curves.get(f"{sys_}_s{seed}", []) if c.get("nll") is not None]
            if not cc:
                continue
            low = min(v for _, v in cc)
            flat = next(u for u, v in cc if v <= low + tol)
            last_u = cc[-1][0]
            q = [v for u, v in cc if u >= 0.75 * last_u]
            fall = round(q[0] - q[-1], 4) if q else None
            rows.append({"seed": seed, "flat_at": flat, "lowest": round(low, 4), "last": round(cc[-1][1], 4),
                         "fall_last_quarter": fall,
                         # flat only if the last quarter no longer lowered the loss by more than tol
                         "flattened": fall is not None and fall <= tol})
        out[sys_] = {"seeds": rows, "mean_flat_at": _r(common.mean(r["flat_at"] for r in rows)),
                     "flattened_seeds": sum(r["flattened"] for r in rows), "budget": max(
                         (c["updates"] for k, v in curves.items() if k.startswith(f"{sys_}_s") for c in v), default=None)}
    return out


def _train_time_line(wall: dict[str, Any]) -> str:
    """Training compute: the summed interval times of a mtkit tune sweep (a resumed sweep's own wall
    time covers only its last start), else the local runner's wall time."""
    runs = wall.get("tune_runs") or {}
    if runs:
        secs = [v["seconds"] for v in runs.values()]
        med = sorted(v["median_interval_s"] * v["intervals"] for v in runs.values() if v.get("median_interval_s"))
        typical = f"; median interval x intervals: {med[0]:,.0f}-{med[-1]:,.0f} s per run" if med else ""
        return (f"Training: {len(runs)} runs under mtkit tune, {sum(secs):,.0f} s of trial time summed over the runs "
                f"(per run {min(secs):,.0f}-{max(secs):,.0f} s{typical}; fairseq start-up and validation included; "
                "runs shared the machine's 2 cores two at a time, so per-run times include that load, and an "
                "interval during which the machine's other work paused the run counts whole).")
    return f"Training: {wall.get('train_total_s')} s in all ({wall.get('runner')})."


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def summary(results: dict[str, Any], systems: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    """Mean over seeds of each system's score per group, and each pair's difference: mean over
    seeds, the per-seed paired-bootstrap intervals, how many seeds' intervals exclude 0."""
    comp = results["compare"]
    out: dict[str, Any] = {}
    for g in GROUPS:
        out[g] = {}
        for m in METRICS:
            scores = {s: _r(common.mean(comp[f"s{seed}"]["groups"][g]["scores"][m][s] for seed in seeds
                                        if g in comp[f"s{seed}"]["groups"]), 2) for s in systems}
            diffs = {}
            for a, b in PAIRS:
                per_seed = []
                for seed in seeds:
                    key = f"s{seed}" if b == "dense" else f"s{seed}_eom"
                    grp = comp[key]["groups"].get(g)
                    if grp:
                        per_seed.append(grp["differences"][m][a])
                if not per_seed:
                    continue
                deltas = [d["delta"] for d in per_seed]
                diffs[f"{a}-{b}"] = {
                    "mean_delta": _r(common.mean(deltas), 3), "seed_sd": _r(common.stdev(deltas), 3),
                    "per_seed": [{k: _r(d[k], 3) for k in ("delta", "low", "high")} | {"p_bs": d.get("p_bs")}
                                 for d in per_seed],
                    "seeds_significant": sum(1 for d in per_seed if d["low"] > 0 or d["high"] < 0),
                    "seeds_positive": sum(1 for d in per_seed if d["delta"] > 0)}
            out[g][m] = {"scores": scores, "differences": diffs}
    return out


# ---- plots ---------------------------------------------------------------------------------------------
COLORS = {"dense": "#4c72b0", "moe": "#dd8452", "moe_eom": "#55a868"}


def plots(results: dict[str, Any], out: Path, systems: Sequence[str], seeds: Sequence[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves, classes = results["curves"], results["classes"]
    by_class = _by_class(classes)
    panels = [("all directions", list(classes))] + [(f"{k}-resource", by_class[k]) for k in ("high", "mid", "low")
                                                     if k in by_class]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharex=True)
    for ax, (title, dirs) in zip(axes, panels):
        for sys_ in systems:
            series = [dict(class_curve(curves.get(f"{sys_}_s{seed}", []), dirs)) for seed in seeds]
            series = [s for s in series if s]
            if not series:
                continue
            us = sorted(set.intersection(*[set(s) for s in series]))
            m = [sum(s[u] for s in series) / len(series) for u in us]
            ax.plot(us, m, color=COLORS.get(sys_), label=sys_, lw=1.8)
            ax.fill_between(us, [min(s[u] for s in series) for u in us], [max(s[u] for s in series) for u in us],
                            color=COLORS.get(sys_), alpha=0.18, lw=0)
        ax.set_title(title)
        ax.set_xlabel("updates")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("valid nll (bits/token), mean over directions")
    axes[0].legend()
    fig.suptitle(f"valid nll over updates ({len(seeds)} seeds: mean, band = min-max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(METRICS), figsize=(10, 3.8))
    for ax, m in zip(axes, METRICS):
        x = 0
        ticks, labels = [], []
        for g in GROUPS:
            for pair in ("moe-dense", "moe_eom-dense", "moe_eom-moe"):
                d = results["summary"].get(g, {}).get(m, {}).get("differences", {}).get(pair)
                if not d:
                    continue
                for i, ps in enumerate(d["per_seed"]):
                    ax.errorbar(x + 0.12 * (i - 1), ps["delta"], yerr=[[ps["delta"] - ps["low"]], [ps["high"] - ps["delta"]]],
                                fmt="o", ms=3, color=COLORS["moe_eom" if pair.startswith("moe_eom") else "moe"],
                                alpha=1.0 if pair != "moe_eom-moe" else 0.6)
                ticks.append(x)
                labels.append(f"{g}\n{pair}")
                x += 1
            x += 0.5
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_ylabel(f"{m} difference (95% paired bootstrap, per seed)")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out / "differences.png", dpi=110)
    plt.close(fig)


# ---- report.md -----------------------------------------------------------------------------------------
def write_report(results: dict[str, Any], path: Path, systems: Sequence[str], seeds: Sequence[int]) -> None:
    from mtkit.io import write_text

    s = results["settings"]
    lines = [f"# MoE vs dense at equal active compute, with and without EOM ({results['scale']} scale)", "",
             f"Written by `{results['command']}` on {results['environment']['date']}"
             f" (commit {results.get('commit') or '?'}).", "",
             "## Setup", "",
             f"- Data: {len(results['classes'])} directions en<->x; training pairs per language: "
             + ", ".join(f"{k} {v} ({results['data']['resource_classes'][k]})"
                         for k, v in results["data"]["training_pairs"].items()) + f"; temperature sampling T={results['temperature']}.",
             f"- Model: d={s['dim']}, {s['layers']}+{s['layers']} layers, FFN {s['ffn']}; MoE: every 2nd FFN is "
             f"{s['experts']} experts of width {s['ffn'] // 2}, top-2 (second expert always kept), gate loss 0.01; "
             f"EOM {results['eom']}; dropout {results['dropout']} for all.",
             f"- Budget: {results['budget_updates_planned']} updates planned, **{results['budget_updates_evaluated']} "
             f"evaluated** (the same for every run), max-tokens {s['max_tokens']} per update, lr {s['lr']}, "
             f"valid nll of every direction every {s['interval']} updates; seeds {', '.join(map(str, seeds))}; "
             "test sets translated with beam 4.", "",
             "| system | forward GFLOPs/token (active) | per sentence pair | parameters total | active |",
             "|---|---|---|---|---|"]
    for sys_ in systems:
        c = results["compute"][sys_]
        lines.append(f"| {sys_} | {c['flops_per_token']['per_token'] / 1e9:.4f} | "
                     f"{c['flops_per_token']['per_sentence_pair'] / 1e9:.3f} | {c['parameters']['total']:,} | "
                     f"{c['parameters']['active']:,} |")
    ml = results["data"]["mean_valid_length"]
    lines += ["", f"(FLOPs from `mtkit.flops` at the valid set's mean lengths, {ml['src']} source / {ml['tgt']} "
              "target tokens; training costs about 3x the forward.)", "",
              "## Test scores (mean over seeds) and differences", "",
              "Differences: mean over seeds; in brackets each seed's 95 % paired-bootstrap interval "
              "(`mtkit compare`, 1000 resamples; class averages by stratified bootstrap). Directions under 100 "
              "test lines are left out of the averages.", ""]
    for m in METRICS:
        lines += [f"### {m}", "", "| group | " + " | ".join(systems) + " | moe - dense | moe_eom - dense | moe_eom - moe |",
                  "|---|" + "---|" * (len(systems) + 3)]
        for g in GROUPS:
            row = results["summary"].get(g, {}).get(m)
            if not row:
                continue
            cells = [f"{row['scores'][x]:.2f}" if row["scores"][x] is not None else "–" for x in systems]
            for pair in ("moe-dense", "moe_eom-dense", "moe_eom-moe"):
                d = row["differences"].get(pair)
                cells.append("–" if not d else f"{d['mean_delta']:+.2f} (" + "; ".join(
                    f"[{p['low']:+.2f}, {p['high']:+.2f}]" for p in d["per_seed"]) + ")")
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Per direction (chrF++, mean over seeds; test lines; † = under 100 lines, not averaged)", "",
              "| direction | class | test lines | " + " | ".join(systems) + " |", "|---|---|---|" + "---|" * len(systems)]
    first = results["compare"][f"s{seeds[0]}"]["directions"]
    for d in sorted(first, key=lambda d: (results["classes"].get(d, ""), d)):
        vals = []
        for x in systems:
            v = common.mean(results["compare"][f"s{seed}"]["directions"][d]["scores"]["chrf++"][x] for seed in seeds)
            vals.append(f"{v:.2f}" if v is not None else "–")
        mark = "" if first[d]["in_averages"] else " †"
        lines.append(f"| {d}{mark} | {first[d]['class']} | {first[d]['n_lines']} | " + " | ".join(vals) + " |")
    lines += ["", "## Valid loss over updates: where it flattens, where the low-resource directions overfit", "",
              "![valid nll curves](curves.png)", "",
              f"Flattening: first validation within {results['flattening']['tolerance_bits']} bits of the run's lowest "
              "overall valid nll (mean over seeds), and how much the overall nll still fell over the last quarter. "
              "A run counts as flat only if that last-quarter fall is at most the same tolerance; otherwise its "
              "loss was still falling when the budget ended.", "",
              "| system | flat at (updates) | lowest overall nll | fall in last quarter |", "|---|---|---|---|"]
    for sys_ in systems:
        f = results["flattening"][sys_]
        n = len(f["seeds"])
        flat = (f"{f['mean_flat_at']:.0f}" if f.get("flattened_seeds") == n else
                f"not flat in {n - f.get('flattened_seeds', 0)} of {n} seeds (still falling at {f.get('budget')})")
        lines.append(f"| {sys_} | {flat} | "
                     f"{common.mean(r['lowest'] for r in f['seeds']):.3f} | "
                     f"{common.mean(r['fall_last_quarter'] for r in f['seeds'] if r['fall_last_quarter'] is not None):.3f} |")
    lines += ["", "Overfitting per resource class: class-mean valid nll at its lowest point and at the end "
              "(rise > 0: the class's valid loss went up again).", "",
              "| system | class | lowest at (updates, per seed) | lowest nll | last nll | rise (mean) |", "|---|---|---|---|---|---|"]
    for sys_ in systems:
        for cls, v in results["overfitting"][sys_].items():
            lines.append(f"| {sys_} | {cls} | {', '.join(str(r['best_update']) for r in v['seeds'])} | "
                         f"{common.mean(r['best_nll'] for r in v['seeds']):.3f} | {v['mean_last_nll']:.3f} | "
                         f"{v['mean_rise']:+.3f} |")
    lines += ["", "![test differences](differences.png)", "",
              "## Wall time", "", _train_time_line(results["wall"]) +
              f" Per run and translation times in results.json (`wall`). Load average at the start of the analysis: "
              f"{results['environment']['load_average_1min']}.", ""]
    write_text(path, "\n".join(lines) + "\n")
