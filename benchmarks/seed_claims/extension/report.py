"""Summary, verdicts, plot and report of the extension experiment (from run.py's results)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import common

METRICS = ("chrf++", "bleu")


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


def _pair(results: dict[str, Any], part: str, system: str, metric: str) -> dict[str, Any]:
    """``system`` minus the part's baseline over the part's directions, per seed and averaged over seeds."""
    per_seed = []
    for seed, c in results[part].items():
        d = c["all"]["differences"][metric][system]
        per_seed.append({"seed": seed, **{k: _r(d.get(k)) for k in ("delta", "low", "high")}, "p_bs": d.get("p_bs")})
    deltas = [p["delta"] for p in per_seed]
    return {"mean_delta": _r(common.mean(deltas)), "seed_sd": _r(common.stdev(deltas)), "per_seed": per_seed,
            "seeds_significantly_lower": sum(1 for p in per_seed if p["high"] < 0),
            "seeds_significantly_higher": sum(1 for p in per_seed if p["low"] > 0)}


def _verdict_old(p: dict[str, Any], n: int) -> str:
    if p["seeds_significantly_lower"] == 0:
        return "held"
    if p["seeds_significantly_lower"] == n and p["mean_delta"] <= -1.0:
        return "did not hold"
    return "partly"


def _verdict_new(p: dict[str, Any], n: int) -> str:
    if p["seeds_significantly_higher"] == n:
        return "held"
    if p["seeds_significantly_lower"] == n:
        return "did not hold (random initialisation was better)"
    return "could not tell at this scale"


def summary(results: dict[str, Any]) -> dict[str, Any]:
    n = len(results["seeds"])
    out: dict[str, Any] = {"old": {}, "new": {}, "base_vs_cont": {}}
    for m in METRICS:
        out["old"][m] = {"ext_init_minus_cont": _pair(results, "old", "ext_init", m),
                         "ext_rand_minus_cont": _pair(results, "old", "ext_rand", m)}
        out["base_vs_cont"][m] = _pair(results, "old", "base", m)
        out["new"][m] = {"ext_init_minus_ext_rand": _pair(results, "new", "ext_init", m)}
    old, new = out["old"]["chrf++"]["ext_init_minus_cont"], out["new"]["chrf++"]["ext_init_minus_ext_rand"]
    out["verdict_old_kept"] = _verdict_old(old, n)
    out["verdict_init_from"] = _verdict_new(new, n)
    scores = {s: common.mean(c["all"]["scores"]["chrf++"][s] for c in results["new"].values())
              for s in ("ext_init", "ext_rand")}
    out["sentence"] = (
        f"Old languages kept: {out['verdict_old_kept']} (extended minus not extended, old directions, chrF++ "
        f"{old['mean_delta']:+.2f} averaged over {n} seeds, per-seed 95 % intervals "
        + ", ".join(f"[{p['low']:+.2f}, {p['high']:+.2f}]" for p in old["per_seed"])
        + f"). --init-from {results['new_language']}={results['init_from']} vs random: "
        f"{out['verdict_init_from']} (new directions chrF++ {scores['ext_init']:.2f} vs {scores['ext_rand']:.2f}, "
        f"difference {new['mean_delta']:+.2f}, per-seed intervals "
        + ", ".join(f"[{p['low']:+.2f}, {p['high']:+.2f}]" for p in new["per_seed"]) + ")."
    )
    return out


def _mean_nll(entry: dict[str, Any], dirs: list[str]) -> float | None:
    vals = [entry["directions"].get(d) for d in dirs]
    return sum(vals) / len(vals) if vals and all(v is not None for v in vals) else None


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    new_lang = results["new_language"]
    test_dirs = list(results["data"]["test_lines"])
    old_dirs = [d for d in test_dirs if new_lang not in d]
    new_dirs = [d for d in test_dirs if new_lang in d]
    base_updates = results["settings"]["base_updates"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = {"cont": "tab:blue", "ext_init": "tab:green", "ext_rand": "tab:orange"}
    for ax, dirs, title in ((axes[0], old_dirs, "old directions"), (axes[1], new_dirs, f"new ({new_lang}) directions")):
        base = [(c["updates"], _mean_nll(c, dirs)) for c in results["curves"]["base"]]
        base = [(u, v) for u, v in base if v is not None]
        if base:
            ax.plot(*zip(*base), color="black", label="base")
        for name, curve in results["curves"].items():
            if name == "base":
                continue
            arm = name.rsplit("_s", 1)[0]
            pts = [(base_updates + c["updates"], _mean_nll(c, dirs)) for c in curve]
            pts = [(u, v) for u, v in pts if v is not None]
            if pts:
                ax.plot(*zip(*pts), color=colours[arm], alpha=0.7, marker=".",
                        label=arm if name.endswith(f"_s{results['seeds'][0]}") else None)
        ax.axvline(base_updates, color="grey", linestyle=":")
        ax.set_title(f"valid nll (base 2), mean over {title}")
        ax.set_xlabel("updates (base, then further training)")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict[str, Any], path: Path) -> None:
    s = results["summary"]
    lines = ["# Extension claim: old languages kept, --init-from vs random", "", s["sentence"], "",
             f"Command: `{results['command']}`; commit {results['commit']}; {results['environment']['date']}; "
             f"seeds {results['seeds']} (further training; one shared base).", "",
             f"Settings: {results['settings']}", "", "## Old directions (baseline: cont = no extension)", "",
             "| metric | comparison | mean over seeds | seed sd | per seed: delta [95 % interval] p |",
             "|---|---|---:|---:|---|"]
    for m in METRICS:
        for name, p in (*s["old"][m].items(), ("base_minus_cont", s["base_vs_cont"][m])):
            cells = "; ".join(f"{q['seed']}: {q['delta']:+.2f} [{q['low']:+.2f}, {q['high']:+.2f}] p {q['p_bs']}"
                              for q in p["per_seed"])
            lines.append(f"| {m} | {name} | {p['mean_delta']:+.2f} | {p['seed_sd']} | {cells} |")
    lines += ["", f"## New directions ({results['new_language']}, baseline: ext_rand)", "",
              "| metric | comparison | mean over seeds | seed sd | per seed: delta [95 % interval] p |",
              "|---|---|---:|---:|---|"]
    for m in METRICS:
        p = s["new"][m]["ext_init_minus_ext_rand"]
        cells = "; ".join(f"{q['seed']}: {q['delta']:+.2f} [{q['low']:+.2f}, {q['high']:+.2f}] p {q['p_bs']}"
                          for q in p["per_seed"])
        lines.append(f"| {m} | ext_init_minus_ext_rand | {p['mean_delta']:+.2f} | {p['seed_sd']} | {cells} |")
    lines += ["", f"## Per direction (seed {results['seeds'][0]}, chrF++)", "",
              "| direction | class | test lines | base | cont | ext_init | ext_rand |", "|---|---|---:|---:|---:|---:|---:|"]
    first = f"s{results['seeds'][0]}"
    old_dirs, new_dirs = results["old"][first]["directions"], results["new"][first]["directions"]
    for d, v in {**old_dirs, **new_dirs}.items():
        sc = v["scores"]["chrf++"]
        cell = [f"{sc[k]:.2f}" if k in sc else "" for k in ("base", "cont", "ext_init", "ext_rand")]
        mark = "" if v["in_averages"] else " (under 100 lines: not averaged)"
        lines.append(f"| {d}{mark} | {v['class']} | {v['n_lines']} | " + " | ".join(cell) + " |")
    lines += ["", "Plot: valid_curves.png (valid nll of the old and the new directions over updates).", "",
              f"Wall time: {results['wall']}"]
    from mtkit.io import write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")  # temp file + rename, as the other reports
