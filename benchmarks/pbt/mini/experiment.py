"""PBT vs random search vs the recipe's fixed hyperparameters on ML50-mini, at equal total updates.

    python benchmarks/pbt/mini/experiment.py --work work/pbt-mini [--gpu] [--dry]

Three systems, each 4 members x BUDGET updates (so each spends 4 x BUDGET updates):
  pbt     mtkit tune PBT (paper defaults: bottom/top 20 %, x0.8/x1.2, resample 0.25), population 4,
          fitness valid_nll, a perturbation every INTERVAL updates
  random  random search: the same 4 starting configurations (same seed), no exploitation
  fixed   the recipe's fixed hyperparameters (recipes/mini/run.sh finetuning: lr 1e-3, dropout 0.1,
          attention dropout 0.0), seeds 1-4
From each system the member with the best final valid_nll is translated on the test split (beam 4,
at most TEST_CAP lines per direction) and scored with mtkit's scorer (BLEU / chrF++ per direction,
mean); paired bootstrap (sacrebleu, 1000 resamples) compares pbt and random with fixed on the
concatenation of all directions. Writes results.json, the plots and report.md to --out.

--gpu: the same comparison sized for one GPU (more updates, chrF++ fitness on 100 valid lines per
direction, one GPU per trial shared by four trials). --dry: a few updates, to check the pipeline.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from mtkit.io import versions, write_json, write_lines, write_text
from mtkit.tune import SchedulerOptions, TuneSpec, run, run_configs
from mtkit.tune.fitness import TranslationFitness

logger = logging.getLogger("pbt-mini")
REPO = Path(__file__).resolve().parents[3]
LANGS = ["de_DE", "en_XX", "es_XX", "fr_XX", "ro_RO", "si_LK", "sw_KE", "gl_ES"]
ALL_PAIRS = [p for lang in LANGS if lang != "en_XX" for p in (f"en_XX-{lang}", f"{lang}-en_XX")]
EN_FR = ["en_XX-fr_XX", "fr_XX-en_XX"]
SPACE = {
    "lr": {"loguniform": [2.0e-4, 5.0e-3]},
    "dropout": {"uniform": [0.0, 0.3]},
    "attention-dropout": {"uniform": [0.0, 0.2]},
}
FIXED = {"lr": 1e-3, "dropout": 0.1, "attention-dropout": 0.0}  # recipes/mini/run.sh ft_env
# directions, budget (updates per member), interval, test lines per direction (0: all), fitness, tokens per
# batch, warm-up. The CPU size trains en<->fr only (the biggest ML50-mini pair): with 14 directions the
# budget of a shared 2-core machine leaves every direction near 0 BLEU, and the comparison would
# measure noise. 1024-token batches (the recipe's 4096 cost ~4x per update) and 25k-example virtual
# epochs (fairseq batches 25k examples when it starts, not the whole corpus: a quicker start-up for
# every interval) are the same for every system.
SIZES = {
    "cpu": {"pairs": EN_FR, "budget": 800, "interval": 100, "test_cap": 0, "fitness": "valid_nll",
            "max_tokens": 1024, "warmup": 200},
    "gpu": {"pairs": ALL_PAIRS, "budget": 6000, "interval": 500, "test_cap": 0, "fitness": "chrf++",
            "max_tokens": 4096, "warmup": 200},
    "dry": {"pairs": EN_FR, "budget": 20, "interval": 10, "test_cap": 5, "fitness": "valid_nll",
            "max_tokens": 1024, "warmup": 5},
}


def train_args(work: Path, device: str, pairs: list[str], max_tokens: int, warmup: int) -> list[str]:
    """The recipe's many-to-many finetuning command (recipes/mbart50/finetune.sh, mini arch), from scratch."""
    return [
        str(work / "bin" / "databin"), *(["--cpu"] if device == "cpu" else ["--fp16"]),
        "--task", "translation_multi_simple_epoch", "--lang-dict", str(work / "langs.txt"),
        "--lang-pairs", ",".join(pairs), "--lang-tok-style", "mbart", "--encoder-langtok", "src",
        "--decoder-langtok", "--sampling-method", "temperature", "--sampling-temperature", "1.5",
        "--arch", "mbart_base", "--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "128",
        "--decoder-embed-dim", "128", "--encoder-ffn-embed-dim", "512", "--decoder-ffn-embed-dim", "512",
        "--encoder-attention-heads", "4", "--decoder-attention-heads", "4", "--max-source-positions", "256",
        "--max-target-positions", "256", "--encoder-normalize-before", "--decoder-normalize-before",
        "--layernorm-embedding", "--share-all-embeddings", "--criterion", "label_smoothed_cross_entropy",
        "--label-smoothing", "0.1", "--optimizer", "adam", "--adam-eps", "1e-06", "--adam-betas", "(0.9, 0.98)",
        "--lr-scheduler", "inverse_sqrt", "--lr", str(FIXED["lr"]), "--warmup-updates", str(warmup),
        "--dropout", str(FIXED["dropout"]), "--attention-dropout", str(FIXED["attention-dropout"]),
        "--weight-decay", "0.0", "--max-tokens", str(max_tokens), "--update-freq", "1", "--seed", "1",
        "--num-workers", "0", "--log-interval", "10", "--data-buffer-size", "0", "--virtual-epoch-size", "25000",
    ]


def test_set(work: Path, pairs: list[str], cap: int | None) -> TranslationFitness:
    return TranslationFitness(raw_dir=str(work / "data" / "raw"), spm=str(work / "bin" / "spm.model"),
                              dictionary=str(work / "bin" / "databin" / "dict.en_XX.txt"),
                              langs=str(work / "langs.txt"), directions=[tuple(p.split("-")) for p in pairs],
                              max_sentences=cap or None, beam=4, max_len=64, split="test")


def score_system(name: str, checkpoint: str, tests: TranslationFitness, out: Path, device: str) -> dict[str, Any]:
    """Translate the test split with ``checkpoint``; BLEU / chrF++ per direction (mtkit's scorer).
    Hypotheses go to OUT/hyp/NAME/SRC-TGT.hyp (the layout mtkit evaluate / mtkit compare read)."""
    from mtkit.evaluation.scoring import score_direction

    t0 = time.monotonic()
    hyps = tests.translate(checkpoint, device=device)
    per = {}
    for direction, lines in hyps.items():
        write_lines(out / "hyp" / name / f"{direction}.hyp", lines)
        refs = tests.sets()[direction][1]
        r = score_direction(lines, refs, direction.split("-")[1], metrics=("bleu", "chrf++"))
        per[direction] = {"bleu": r["bleu"], "chrf++": r["chrf++"], "n": len(refs), "signatures": r["signatures"]}
    mean = {m: sum(d[m] for d in per.values()) / len(per) for m in ("bleu", "chrf++")}
    return {"checkpoint": checkpoint, "directions": per, "mean": mean, "hyps": hyps,
            "translate_s": time.monotonic() - t0}


def paired_bootstrap(named: list[tuple[str, list[str]]], refs: list[str], n: int) -> dict[str, Any]:
    """sacrebleu's paired bootstrap (BLEU 13a, chrF++); the first system is the baseline. Per system and
    metric: the score, the mean of the resampled scores with the half width of their 95 % interval, and
    the p-value of the difference to the baseline."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    test = PairedTest(named, {"BLEU": BLEU(), "chrF++": CHRF(word_order=2)}, [refs], test_type="bs", n_samples=n)
    sigs, scores = test()
    out: dict[str, Any] = {"signatures": {k: str(v) for k, v in sigs.items()}, "systems": {}}
    for i, (name, _) in enumerate(named):
        out["systems"][name] = {}
        for metric, results in scores.items():
            if metric == "System":  # the names, in the order of `named`
                continue
            res = results[i]
            # sacrebleu gives numpy float32 for chrF's bootstrap statistics: plain floats for JSON
            out["systems"][name][metric] = {k: None if v is None else float(v) for k, v in
                                            (("score", res.score), ("mean", res.mean), ("ci95", res.ci),
                                             ("p_value", res.p_value))}
    return out


def bootstraps(systems: dict[str, dict[str, Any]], tests: TranslationFitness, baseline: str,
               n: int = 1000) -> dict[str, Any]:
    """Paired bootstrap of every system against ``baseline``: per direction and on all lines pooled."""
    dirs = list(tests.sets())
    order = [baseline, *(k for k in systems if k != baseline)]
    out: dict[str, Any] = {"baseline": baseline, "n_samples": n, "directions": {}}
    for d in dirs:
        named = [(k, systems[k]["hyps"][d]) for k in order]
        out["directions"][d] = {"n_lines": len(tests.sets()[d][1]),
                                **paired_bootstrap(named, tests.sets()[d][1], n)}
    refs = [r for d in dirs for r in tests.sets()[d][1]]
    named = [(k, [h for d in dirs for h in systems[k]["hyps"][d]]) for k in order]
    out["pooled"] = {"n_lines": len(refs), **paired_bootstrap(named, refs, n)}
    return out


def members_summary(res: Any) -> list[dict[str, Any]]:
    return [{"trial": r["trial"], "hp": r["hp"], "valid_nll": r.get("valid_nll"), "updates": r["updates"]}
            for r in res.final]


def train_system(name: str, size: dict[str, Any], fargs: list[str], folder: Path, common: dict[str, Any]) -> Any:
    """One system's 4 members x budget updates with mtkit tune (resumed when its folder exists)."""
    resume = (folder / "tune_spec.json").exists()
    if name in ("pbt", "random"):
        spec = TuneSpec(train_args=fargs, out=str(folder), budget=size["budget"],
                        interval=size["interval"] if name == "pbt" else size["budget"], space=SPACE,
                        population=4, scheduler=SchedulerOptions(name=name), **common)
        return run(spec, resume=resume)
    return run_configs(fargs, {"seed": [1, 2, 3, 4]}, size["budget"], folder, resume=resume, progress=True, **common)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="work/pbt-mini", help="ML50-mini folder (data/raw, bin/, langs.txt)")
    ap.add_argument("--out", default=None, help="results folder (default: benchmarks/pbt/mini/SIZE, or WORK/dry)")
    ap.add_argument("--gpu", action="store_true", help="the GPU-sized variant")
    ap.add_argument("--dry", action="store_true", help="a few updates: check the pipeline end to end")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs Ray may use")
    ap.add_argument("--systems", default="pbt,random,fixed")
    ap.add_argument("--train-only", action="store_true", help="train the systems, score nothing")
    ap.add_argument("--report-only", action="store_true", help="rewrite report.md from OUT/results.json")
    args = ap.parse_args()
    size_name = "dry" if args.dry else ("gpu" if args.gpu else "cpu")
    if args.report_only:
        out = Path(args.out or REPO / "benchmarks" / "pbt" / "mini" / size_name)
        write_text(out / "report.md", report_md(json.loads((out / "results.json").read_text(encoding="utf-8"))))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    size = SIZES[size_name]
    work = Path(args.work).resolve()
    out = Path(args.out or (work / "dry" if args.dry else REPO / "benchmarks" / "pbt" / "mini" / size_name)).resolve()
    runs = work / f"runs-{size_name}"
    device = "cuda" if args.gpu else "cpu"
    fitness_set = None
    if size["fitness"] != "valid_nll":
        fitness_set = {"raw_dir": str(work / "data" / "raw"), "spm": str(work / "bin" / "spm.model"),
                       "dictionary": str(work / "bin" / "databin" / "dict.en_XX.txt"),
                       "langs": str(work / "langs.txt"), "max_sentences": 100, "beam": 4}
    common = dict(fitness=size["fitness"], translation=fitness_set, cpus_per_trial=1.0,
                  gpus_per_trial=0.25 if args.gpu else 0.0, num_cpus=args.cpus, seed=1)
    fargs = train_args(work, device, size["pairs"], size["max_tokens"], size["warmup"])
    load = os.getloadavg()[0]
    t0 = time.time()
    results: dict[str, Any] = {}
    for name in args.systems.split(","):
        ts = time.time()
        res = train_system(name, size, fargs, runs / name, common)
        results[name] = {"res": res, "wall_s": time.time() - ts}
        logger.info("%s done in %.0f s: best %s", name, time.time() - ts, res.best.get("fitness"))
    if args.train_only:
        return 0
    tests = test_set(work, size["pairs"], size["test_cap"])
    systems = {name: score_system(name, r["res"].best["checkpoint"], tests, out, device)
               for name, r in results.items()}
    boot = bootstraps(systems, tests, "fixed") if "fixed" in systems and len(systems) > 1 else None
    doc: dict[str, Any] = {
        "command": "bash benchmarks/pbt/mini/run.sh" + (" --gpu" if args.gpu else "") + (" --dry" if args.dry else ""),
        "size": size_name, **size, "members": 4, "total_updates_per_system": 4 * size["budget"],
        "space": SPACE, "fixed": FIXED, "pbt": {"quantile_fraction": 0.2, "perturbation_factors": [1.2, 0.8],
                                                  "resample_probability": 0.25,
                                                  "perturbation_interval": size["interval"]},
        "load_average_1min_at_start": load, "wall_s": time.time() - t0,
        "versions": versions(("mtkit", "torch", "fairseq", "ray", "sacrebleu")),
        "systems": {}, "paired_bootstrap": boot,
    }
    for name, r in results.items():
        res, sc = r["res"], systems[name]
        doc["systems"][name] = {
            "best": {k: res.best.get(k) for k in ("trial", "config", "fitness", "fitness_name", "updates")},
            "members": members_summary(res), "events": res.events, "wall_s": r["wall_s"],
            "timing": res.best.get("timing"), "test": {"mean": sc["mean"], "directions": sc["directions"]},
            "translate_s": sc["translate_s"],
        }
        for f in ("fitness.png", "schedules.png", "trials.csv", "events.csv"):
            shutil.copyfile(res.out / f, out / f"{name}-{f}")
    write_json(out / "results.json", doc, indent=1)
    write_text(out / "report.md", report_md(doc))
    logger.info("wrote %s", out / "results.json")
    return 0


def _cfg(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={x:.4g}" if isinstance(x, float) else f"{k}={x}" for k, x in config.items())


def _ci(x: dict[str, Any]) -> str:
    p = "" if x["p_value"] is None else f", p = {x['p_value']:.3f}"
    return f"{x['score']:.2f} ({x['mean']:.2f} ± {x['ci95']:.2f}{p})"


def report_md(doc: dict[str, Any]) -> str:
    systems = doc["systems"]
    first = next(iter(systems.values()))
    dirs = list(first["test"]["directions"])
    lines = [f"# PBT vs random search vs fixed hyperparameters (ML50-mini, {doc['size']})", "",
             f"`{doc['command']}`: 4 members x {doc['budget']} updates per system ({doc['total_updates_per_system']} "
             f"updates each), directions {', '.join(doc['pairs'])}, fitness {doc['fitness']}, PBT perturbation every "
             f"{doc['interval']} updates; test: beam 4, {doc['test_cap'] or 'all'} lines per direction. "
             f"Load average at start {doc['load_average_1min_at_start']:.1f}.", "",
             "## Test split (the best member of each system by final valid_nll)", "",
             "| direction | lines | " + " | ".join(f"{s} BLEU | {s} chrF++" for s in systems) + " |",
             "|---|---:|" + "---:|---:|" * len(systems)]
    for d in dirs:
        n = first["test"]["directions"][d]["n"]
        lines.append(f"| {d} | {n} | " + " | ".join(
            f"{v['test']['directions'][d]['bleu']:.2f} | {v['test']['directions'][d]['chrf++']:.2f}"
            for v in systems.values()) + " |")
    lines.append("| **mean** | | " + " | ".join(
        f"**{v['test']['mean']['bleu']:.2f}** | **{v['test']['mean']['chrf++']:.2f}**" for v in systems.values()) + " |")
    b = doc.get("paired_bootstrap")
    if b:
        lines += ["", f"Paired bootstrap (sacrebleu, {b['n_samples']} resamples) against `{b['baseline']}`: "
                  "score (mean of the resamples ± half width of their 95 % interval, p-value of the difference)", "",
                  "| test set | lines | system | BLEU | chrF++ |", "|---|---:|---|---|---|"]
        for label, part in [*b["directions"].items(), ("all directions pooled", b["pooled"])]:
            for s, m in part["systems"].items():
                lines.append(f"| {label} | {part['n_lines']} | {s} | {_ci(m['BLEU'])} | {_ci(m['chrF2++'])} |")
    lines += ["", "## Members", "", "| system | best member | final valid_nll | hyperparameters at the end | exploits "
              "| every member's final valid_nll |", "|---|---|---:|---|---:|---|"]
    for s, v in systems.items():
        finals = ", ".join(f"{m['valid_nll']:.3f}" for m in v["members"] if m.get("valid_nll") is not None)
        lines.append(f"| {s} | {v['best']['trial']} | {v['best']['fitness']:.4f} | {_cfg(v['best']['config'])} | "
                     f"{len(v['events'])} | {finals} |")
    for s, v in systems.items():
        if not v["events"]:
            continue
        lines += ["", f"## Exploit events ({s})", "", "| update | recipient | donor | recipient / donor fitness | "
                  "before | after |", "|---:|---|---|---|---|---|"]
        for e in v["events"]:
            lines.append(f"| {e['update']} | {e['recipient']} | {e['donor']} | {e['recipient_fitness']:.3f} / "
                         f"{e['donor_fitness']:.3f} | {_cfg(e['before'])} | {_cfg(e['after'])} |")
    lines += ["", "## Wall time per interval", "", "| system | intervals | interval (mean, min-max) | fairseq start-up "
              "(mean) | start-up share | system wall time |", "|---|---:|---|---:|---:|---:|"]
    for s, v in systems.items():
        t = v.get("timing") or {}
        iv, su = t.get("interval_s"), t.get("startup_s")
        if not iv:
            continue
        lines.append(f"| {s} | {t['intervals']} | {iv['mean']:.0f} s ({iv['min']:.0f}-{iv['max']:.0f}) | "
                     f"{su['mean']:.0f} s | {100 * (t.get('startup_share') or 0):.0f} % | {v['wall_s'] / 60:.0f} min |")
    lines += ["", "Plots: " + ", ".join(f"{s}-fitness.png, {s}-schedules.png" for s in systems), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
