"""results.json, report.md and plots of the global-balance experiment (from run.py's work folder)."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common

from mtkit.io import git_commit

HERE = Path(__file__).resolve().parent


def _layer_stats(summary: dict[str, Any]) -> dict[str, Any]:
    """Per layer: mean over languages of experts above 0.2 / above 3.2x uniform, the largest
    frequency, the language specialisation."""
    out = {}
    for name, layer in summary.items():
        langs = layer["languages"].values()
        out[name] = {"side": layer["side"], "lang_specialisation": layer["lang_specialisation"],
                     "mean_above_threshold": round(common.mean(v["above_threshold"] for v in langs), 3),
                     "mean_above_relative": round(common.mean(v["above_relative"] for v in langs), 3),
                     "max_frequency": max(v["max"] for v in langs),
                     "languages_with_an_expert_above_threshold": sum(1 for v in langs if v["above_threshold"] > 0)}
    return out


def _at(curve: list[dict[str, Any]], updates: int) -> dict[str, Any] | None:
    return next((c for c in curve if c["updates"] == updates), None)


def analyse(corpus: common.Corpus, work: Path, s: dict[str, int], scale: str, runs: Sequence[tuple[str, str, bool, int]],
            example_args: Sequence[str]) -> dict[str, Any]:
    usage = json.loads((work / "usage.json").read_text(encoding="utf-8"))
    budget = usage["budget"]
    dirs = common.run_dirs(work, [r[0] for r in runs])
    train_status = json.loads((work / "train_status.json").read_text()) if (work / "train_status.json").exists() else {}
    per_run: dict[str, Any] = {}
    for name, balance, homogeneous, seed in runs:
        curve = common.valid_curve(dirs[name] / "train.log")
        at = _at(curve, budget) or {}
        job = (train_status.get("jobs") or {}).get(name, {})
        per_run[name] = {
            "balance": balance, "homogeneous": homogeneous, "seed": seed, "valid_nll": at.get("nll"),
            "valid_nll_per_direction": at.get("directions"), "moe_lang_specialisation": at.get("moe_lang_specialisation"),
            "layers": _layer_stats(usage["runs"][name]["summary"]) if name in usage["runs"] else None,
            "step": common.step_seconds(dirs[name] / "train.log", skip_first=2),
            "train_tokens_per_update": _tokens_per_update(dirs[name] / "train.log"),
            "wall_s": job.get("wall_s"), "load_average_at_start": job.get("load_average_at_start"),
            "curve": [{k: c.get(k) for k in ("updates", "nll", "moe_lang_specialisation")} for c in curve],
        }
    groups = {"homogeneous micro": [r[0] for r in runs if r[2] and r[1] == "micro"],
              "homogeneous global": [r[0] for r in runs if r[2] and r[1] == "global"],
              "mixed micro": [r[0] for r in runs if not r[2] and r[1] == "micro"],
              "mixed global": [r[0] for r in runs if not r[2] and r[1] == "global"]}
    agg: dict[str, Any] = {}
    for g, names in groups.items():
        rs = [per_run[n] for n in names if per_run[n]["layers"]]
        if not rs:
            continue
        layers = sorted(rs[0]["layers"])
        agg[g] = {"runs": names, "valid_nll": _ms([r["valid_nll"] for r in rs]),
                  "moe_lang_specialisation": _ms([r["moe_lang_specialisation"] for r in rs]),
                  "layers": {la: {k: _ms([r["layers"][la][k] for r in rs]) for k in
                                  ("lang_specialisation", "mean_above_threshold", "mean_above_relative", "max_frequency")}
                             for la in layers},
                  "max_frequency_any_layer": max(max(r["layers"][la]["max_frequency"] for la in layers) for r in rs)}
    paired = []
    for seed in sorted({r[3] for r in runs if r[2]}):
        m, g = per_run.get(f"micro_s{seed}"), per_run.get(f"global_s{seed}")
        if not (m and g):
            continue
        row = {"seed": seed}
        if m["valid_nll"] is not None and g["valid_nll"] is not None:
            row["valid_nll_global_minus_micro"] = round(g["valid_nll"] - m["valid_nll"], 4)
        if m["step"] and g["step"]:
            row["step_ratio_global_over_micro"] = round(g["step"]["seconds_per_update"] / m["step"]["seconds_per_update"], 4)
            row["load_average_at_start"] = {"micro": m["load_average_at_start"], "global": g["load_average_at_start"]}
        paired.append(row)
    speed = json.loads((work / "speed.json").read_text()) if (work / "speed.json").exists() else None
    results = {
        "claim": "Qiu et al. 2025: global-batch balance lets experts specialise by language and lowers the loss",
        "command": " ".join([sys.executable, *sys.argv]), "scale": scale, "settings": s,
        "conditions": {"micro_batch_max_tokens": 256, "update_freq": 4, "ranks": 2, "backend": "gloo",
                       "homogeneous_micro_batches": True, "experts": 16, "top_k": 2, "moe_layers": 4,
                       "dropless": True, "balance_loss_weight": 0.01},
        "threshold": 0.2, "relative_threshold": "3.2 x uniform (2/16) = 0.4",
        "seeds": sorted({r[3] for r in runs}), "budget_updates_planned": s["updates"], "budget_updates_evaluated": budget,
        "train_command_example": "fairseq-train " + " ".join(example_args),
        "environment": common.environment(), "commit": git_commit(common.REPO),
        "data": {"root": str(corpus.root), "resource_classes": corpus.resource_classes(),
                 "training_pairs": corpus.training_pairs(),
                 "valid_lines": {d: corpus.lines("valid", d) for d in corpus.directions()},
                 "test_lines": {d: corpus.lines("test", d) for d in corpus.directions()}},
        "train_runner": train_status.get("runner"), "train_wall_s": train_status.get("wall_s"),
        "runs": per_run, "runs_not_evaluated": usage.get("excluded", []), "groups": agg, "paired": paired,
        "speed_pairs": speed,
    }
    out = Path(os.environ.get("RESULTS_DIR", HERE / f"results_{scale}"))
    common.write_results(out / "results.json", results)
    plots(results, usage, out)
    write_report(results, out / "report.md")
    return results


def _tokens_per_update(log: Path) -> float | None:
    """Mean target tokens per update over fairseq's train_inner records (``wpb``): one-direction and
    mixed micro-batches are compared at equal updates, and this says whether also at equal tokens."""
    wpb = [r["wpb"] for t, r in common.log_records(log) if t == "train_inner" and "wpb" in r]
    return round(common.mean(wpb), 1) if wpb else None


def _ms(xs: Sequence[float | None]) -> dict[str, float | None]:
    xs = [x for x in xs if x is not None]
    m, sd = common.mean(xs), common.stdev(xs)
    return {"mean": None if m is None else round(m, 4), "sd": None if sd is None else round(sd, 4), "n": len(xs)}


def plots(results: dict[str, Any], usage: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = usage["langs"]
    shown = [n for n in ("micro_s1", "global_s1") if n in usage["runs"]]
    if shown:
        layers = sorted(usage["runs"][shown[0]]["counts"])
        fig, axes = plt.subplots(len(shown), len(layers), figsize=(3.3 * len(layers), 3.3 * len(shown)), squeeze=False)
        fig.subplots_adjust(hspace=0.5, wspace=0.35)  # room for each row's expert axis above the next row's titles
        for i, name in enumerate(shown):
            for j, la in enumerate(layers):
                c = usage["runs"][name]["counts"][la]
                tok = np.maximum(np.array(c["tokens"])[:, None], 1)
                freq = np.array(c["topk"]) / tok
                keep = np.array(c["tokens"]) > 0
                ax = axes[i][j]
                im = ax.imshow(freq[keep], vmin=0, vmax=1, cmap="viridis", aspect="auto")
                ax.set_yticks(range(int(keep.sum())))
                ax.set_yticklabels([x for x, k in zip(langs, keep) if k], fontsize=6)
                ax.set_xlabel("expert", fontsize=7)
                ax.set_title(f"{name}\n{la.replace('.moe_layer', '')}", fontsize=7)
        fig.colorbar(im, ax=axes, shrink=0.6, label="top-2 selection frequency")
        fig.savefig(out / "expert_frequency.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = {"micro": "#4c72b0", "global": "#dd8452"}
    for name, r in results["runs"].items():
        us = [c["updates"] for c in r["curve"]]
        style = "-" if r["homogeneous"] else ":"
        axes[0].plot(us, [c["nll"] for c in r["curve"]], style, color=colors[r["balance"]], lw=1.2,
                     label=name)
        axes[1].plot(us, [c["moe_lang_specialisation"] for c in r["curve"]], style, color=colors[r["balance"]], lw=1.2)
    axes[0].set_ylabel("valid nll (bits/token)")
    axes[1].set_ylabel("moe_lang_specialisation (valid)")
    for ax in axes:
        ax.set_xlabel("updates")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.suptitle("solid: homogeneous micro-batches, dotted: mixed; blue micro, orange global balance", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)


def write_report(results: dict[str, Any], path: Path) -> None:
    from mtkit.io import write_text

    c = results["conditions"]
    lines = [f"# Global vs micro-batch load balancing ({results['scale']} scale)", "",
             f"Written by `{results['command']}` on {results['environment']['date']} (commit {results.get('commit') or '?'}).", "",
             f"Conditions (Qiu et al. 2025, where micro-batch balance should hurt): micro-batches of {c['micro_batch_max_tokens']} "
             f"tokens, `--update-freq {c['update_freq']}`, {c['ranks']} ranks ({c['backend']}), every micro-batch one direction "
             f"(`--homogeneous-batches`); {c['moe_layers']} MoE layers of {c['experts']} experts, top-{c['top_k']}, dropless, "
             f"balance loss weight {c['balance_loss_weight']}. Budget: {results['budget_updates_planned']} updates planned, "
             f"**{results['budget_updates_evaluated']} evaluated** for every run; seeds {results['seeds']}. Valid sets: "
             + ", ".join(f"{d} {n}" for d, n in results["data"]["valid_lines"].items()) + " lines.", "",
             "Top-k frequency of an expert for a language = share of the language's valid tokens (source language in the "
             "encoder, target language in the decoder) that have the expert among their 2 gate choices; uniform = 2/16 = 0.125.", "",
             "| group | valid nll | moe_lang_specialisation | layer | experts > 0.2 per language | experts > 0.4 per language | max frequency | layer I(lang;expert)/H(lang) |",
             "|---|---|---|---|---|---|---|---|"]
    for g, a in results["groups"].items():
        first = True
        for la, v in a["layers"].items():
            head = (f"| {g} (n={a['valid_nll']['n']}) | {_fmt(a['valid_nll'])} | {_fmt(a['moe_lang_specialisation'])} "
                    if first else "| | | ")
            lines.append(head + f"| {la.replace('.moe_layer', '')} | {_fmt(v['mean_above_threshold'], 2)} | "
                         f"{_fmt(v['mean_above_relative'], 2)} | {_fmt(v['max_frequency'], 3)} | {_fmt(v['lang_specialisation'])} |")
            first = False
    lines += ["", "(mean ± sd over seeds.)", "", "Paired by seed (global run vs the micro run of the same seed):", "",
              "| seed | valid nll global − micro | time per update global / micro | load average at start (micro, global) |",
              "|---|---|---|---|"]
    for p in results["paired"]:
        la = p.get("load_average_at_start") or {}
        lines.append(f"| {p['seed']} | {p.get('valid_nll_global_minus_micro', '–')} | {p.get('step_ratio_global_over_micro', '–')} | "
                     f"{la.get('micro', '–')}, {la.get('global', '–')} |")
    sp = results.get("speed_pairs")
    if sp:
        ratios = [p["ratio_global_over_micro"] for p in sp["pairs"]]
        lines += ["", f"Speed pairs (short runs of {sp['updates_per_run']} updates, micro then global, 2 ranks): ratios "
                  + ", ".join(f"{r:.3f}" for r in ratios) + f"; median {sorted(ratios)[len(ratios) // 2]:.3f}; load average "
                  + ", ".join(str(p["micro"].get("load_average_at_start")) for p in sp["pairs"]) + "."]
    lines += ["", "![expert frequencies](expert_frequency.png)", "", "![curves](curves.png)", "",
              f"Training wall time: {results['train_wall_s']} s ({results['train_runner']}); per run in results.json.", ""]
    write_text(path, "\n".join(lines) + "\n")


def _fmt(v: Any, nd: int = 3) -> str:
    if isinstance(v, dict):
        if v.get("mean") is None:
            return "–"
        return f"{v['mean']:.{nd}f}" + (f" ± {v['sd']:.{nd}f}" if v.get("sd") is not None else "")
    return "–" if v is None else f"{v:.{nd}f}"
