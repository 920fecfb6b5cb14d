"""NLLB claim: a sparsely gated MoE beats a dense model of equal active compute, and Expert Output
Masking (EOM) regularises the low-resource directions, which the MoE otherwise overfits.

Three systems of equal active compute (dense FFN F; MoE: every 2nd FFN is E experts of width F/2,
top-2), the MoE with and without EOM 0.2, each trained from scratch for the same number of updates
with 3 seeds on 14 directions (en<->x, 2 high-, 2 mid-, 3 low-resource languages; temperature
sampling T=5, so the low-resource directions are seen many times). Valid nll of every direction
every ``interval`` updates (``--valid-per-direction``) gives the overfitting curves; the test sets are
translated (beam 4) and compared with ``mtkit compare`` (paired bootstrap per seed).

    python benchmarks/seed_claims/moe_vs_dense/run.py                 # CPU scale, mtkit tune (Ray)
    python benchmarks/seed_claims/moe_vs_dense/run.py --scale gpu --runner local --phases train,translate
    python benchmarks/seed_claims/moe_vs_dense/run.py --scale gpu --phases analyse --work DIR

Phases: ``train`` (fairseq-train per system and seed), ``translate`` (test sets of every direction
with each run's checkpoint at the evaluated budget), ``analyse`` (mtkit compare, curves, FLOPs,
results.json, report.md, plots). Environment: SEED_CLAIMS_DATA (the corpus of ../data.sh).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from mtkit.io import git_commit  # noqa: E402

HERE = Path(__file__).resolve().parent
SYSTEMS = ("dense", "moe", "moe_eom")
SEEDS = (1, 2, 3)

#: model and budget per scale. cpu: 2 trials at a time, 1 thread each (the measured wall time is in
#: ../README.md); gpu: all 9 runs at once on one GPU.
SCALES: dict[str, dict[str, Any]] = {
    "cpu": {"dim": 128, "layers": 2, "heads": 4, "ffn": 512, "experts": 8, "max_tokens": 2048,
            "updates": 2400, "interval": 400, "lr": 0.002, "warmup": 300, "device": "cpu"},
    "gpu": {"dim": 256, "layers": 4, "heads": 4, "ffn": 1024, "experts": 8, "max_tokens": 8192,
            "updates": 5000, "interval": 250, "lr": 0.0015, "warmup": 400, "device": "cuda"},
}
EOM = 0.2  # NLLB-200's value
DROPOUT = 0.1
TEMPERATURE = 5.0


def model_args(s: dict[str, Any]) -> list[str]:
    d, L, h = s["dim"], s["layers"], s["heads"]
    return ["--encoder-layers", str(L), "--decoder-layers", str(L), "--encoder-embed-dim", str(d),
            "--decoder-embed-dim", str(d), "--encoder-ffn-embed-dim", str(s["ffn"]), "--decoder-ffn-embed-dim",
            str(s["ffn"]), "--encoder-attention-heads", str(h), "--decoder-attention-heads", str(h),
            "--share-all-embeddings", "--encoder-normalize-before", "--decoder-normalize-before",
            "--max-source-positions", "128", "--max-target-positions", "128"]


def system_args(system: str, s: dict[str, Any]) -> list[str]:
    """Equal active compute: the MoE's top-2 experts of width F/2 replace an FFN of width F."""
    if system == "dense":
        return ["--arch", "transformer", "--criterion", "label_smoothed_cross_entropy"]
    moe = ["--arch", "transformer_moe", "--moe-expert-count", str(s["experts"]), "--moe-freq", "2",
           "--moe-expert-ffn-dim", str(s["ffn"] // 2), "--moe-second-expert-policy", "all",
           "--criterion", "moe_label_smoothed_cross_entropy", "--moe-gate-loss-wt", "0.01"]
    return moe + (["--moe-eom", str(EOM)] if system == "moe_eom" else [])


def train_args(corpus: common.Corpus, system: str, seed: int, s: dict[str, Any]) -> list[str]:
    device = ["--cpu"] if s["device"] == "cpu" else []
    return [*common.task_args(corpus, temperature=TEMPERATURE), *device, *model_args(s), *system_args(system, s),
            "--seed", str(seed), "--dropout", str(DROPOUT), "--label-smoothing", "0.1",
            "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", str(s["lr"]),
            "--lr-scheduler", "inverse_sqrt", "--warmup-updates", str(s["warmup"]),
            "--max-tokens", str(s["max_tokens"]), "--num-workers", "0", "--log-interval", "50",
            "--max-update", str(s["updates"]), "--validate-interval-updates", str(s["interval"]),
            "--save-interval-updates", str(s["interval"]), "--keep-interval-updates", "-1",
            "--no-epoch-checkpoints", "--ddp-backend", "legacy_ddp"]


def run_name(system: str, seed: int) -> str:
    return f"{system}_s{seed}"


# ---- phases -------------------------------------------------------------------------------------------
def train(corpus: common.Corpus, work: Path, s: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    # one continuous run each with the local runner: keep every validated checkpoint (weights only), so
    # that runs stopped by a deadline can all be evaluated at the same update count
    extra = ["--no-save-optimizer-state"] if args.runner == "local" else []
    jobs = [common.Job(run_name(sys_, seed), train_args(corpus, sys_, seed, s) + extra,
                       work / "runs" / run_name(sys_, seed), threads=args.threads) for seed in SEEDS for sys_ in SYSTEMS]
    t0 = time.monotonic()
    if args.runner == "tune":
        res = common.run_tune(jobs, work / "tune", interval=s["interval"], budget=s["updates"], cpus_per_trial=1)
        status = {"runner": "mtkit tune", "trials": len(res.final), "errors": res.errors}
    else:
        status = {"runner": "local", "jobs": common.run_local(jobs, cores=args.cores, deadline_s=args.deadline)}
    status["wall_s"] = round(time.monotonic() - t0, 1)
    common.write_results(work / "train_status.json", status)
    return status


def run_dirs(work: Path) -> dict[str, Path]:
    return common.run_dirs(work, [run_name(sys_, seed) for sys_ in SYSTEMS for seed in SEEDS])


def _translate_one(name: str, ckpt: str, corpus_root: str, out_dir: str, beam: int, device: str,
                   threads: int) -> tuple[str, dict[str, Any], float]:
    t0 = time.monotonic()
    corpus = common.Corpus(Path(corpus_root))
    info = common.translate_test(Path(ckpt), corpus, corpus.directions(), Path(out_dir), beam=beam, device=device,
                                 threads=threads)
    return name, info, round(time.monotonic() - t0, 1)


def _done_file(work: Path, name: str) -> Path:
    return work / "hyp" / f"{name}.done.json"


def _hyp_stamp(ckpt: Path, corpus: common.Corpus, beam: int) -> dict[str, Any]:
    """What a run's translations depend on: the checkpoint's bytes (an MoE checkpoint's shared file and
    every expert file), beam, directions. By content, not mtime: Ray re-uploads finished trials' folders
    when a sweep resumes, which changes the files' mtimes but not their bytes."""
    from mtkit.io import file_digest
    from mtkit.tune.trial import checkpoint_set

    name = ckpt.name[: -len("-shared.pt")] if ckpt.name.endswith("-shared.pt") else ckpt.stem
    files = checkpoint_set(ckpt.parent, name) or [ckpt]
    return {"checkpoint": str(ckpt), "digests": {f.name: file_digest(f) for f in files}, "beam": beam,
            "directions": sorted(corpus.directions())}


def translate(corpus: common.Corpus, work: Path, s: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Every run's checkpoint at the evaluated budget translates every test set (``--jobs`` runs at once).
    A run already translated with the same checkpoint file and settings (``hyp/NAME.done.json``) is
    kept, so a stopped phase resumes and the runs that finished first can be translated early."""
    import concurrent.futures as cf
    import multiprocessing as mp

    dirs = run_dirs(work)
    budget, excluded = common.evaluated_budget(dirs, s["updates"])
    if budget == 0:
        raise SystemExit("no run has a validated checkpoint: nothing to translate")
    info: dict[str, Any] = {"budget": budget, "excluded": excluded, "runs": {}}
    todo = []
    for name, d in dirs.items():
        if name in excluded:
            continue
        ckpt = common.checkpoint_at(d, budget, s["updates"])
        stamp = _hyp_stamp(ckpt, corpus, args.beam)
        done = _done_file(work, name)
        if done.exists() and (prev := json.loads(done.read_text(encoding="utf-8")))["stamp"] == stamp:
            info["runs"][name] = prev["run"]  # translated earlier with this very checkpoint and settings
            common.logger.info("test sets of %s translated earlier with the same checkpoint: kept", name)
            continue
        todo.append((name, str(ckpt), str(corpus.root), str(work / "hyp" / name), args.beam, s["device"],
                     args.threads))
    with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for name, directions, seconds in pool.map(_translate_one, *zip(*todo)) if todo else ():
            ckpt = next(t[1] for t in todo if t[0] == name)
            info["runs"][name] = {"checkpoint": ckpt, "directions": directions, "seconds": seconds}
            common.write_results(_done_file(work, name), {"stamp": _hyp_stamp(Path(ckpt), corpus, args.beam),
                                                          "run": info["runs"][name]})
            common.logger.info("translated the test sets with %s (%.0f s)", name, seconds)
    common.write_results(work / "translate_status.json", info)
    return info


def analyse(corpus: common.Corpus, work: Path, s: dict[str, Any], scale: str) -> dict[str, Any]:
    import report

    from mtkit.flops import ModelShape, flops_per_token, parameters

    status = json.loads((work / "translate_status.json").read_text())
    budget = status["budget"]
    dirs = run_dirs(work)
    curves = {name: common.valid_curve(d / "train.log") for name, d in dirs.items()}
    classes = {d: corpus.class_of(d) for d in corpus.directions()}
    compares = {}
    seeds = [seed for seed in SEEDS if all(run_name(x, seed) in status["runs"] for x in SYSTEMS)]
    for seed in seeds:
        hyp = {sys_: work / "hyp" / run_name(sys_, seed) for sys_ in SYSTEMS}
        compares[f"s{seed}"] = common.compare(hyp, corpus, work / "compare" / f"s{seed}")
        compares[f"s{seed}_eom"] = common.compare({"moe": hyp["moe"], "moe_eom": hyp["moe_eom"]}, corpus,
                                                  work / "compare" / f"s{seed}_eom")
    src_len, tgt_len = corpus.mean_lengths("valid")
    compute = {}
    for sys_ in SYSTEMS:
        fs_args, vocab = common.parse_train_args(train_args(corpus, sys_, 1, s))
        shape = ModelShape.from_args(fs_args, vocab=vocab)
        compute[sys_] = {"flops_per_token": flops_per_token(shape, src_len, tgt_len), "parameters": parameters(shape)}
    train_status = json.loads((work / "train_status.json").read_text()) if (work / "train_status.json").exists() else {}
    results = {
        "claim": "NLLB: MoE beats dense at equal active compute; EOM regularises the low-resource directions",
        "command": " ".join([sys.executable, *sys.argv]), "scale": scale, "settings": s,
        "systems": {sys_: " ".join(system_args(sys_, s)) for sys_ in SYSTEMS}, "seeds": seeds,
        "runs_not_evaluated": status.get("excluded", []),
        "eom": EOM, "dropout": DROPOUT, "temperature": TEMPERATURE,
        "budget_updates_planned": s["updates"], "budget_updates_evaluated": budget,
        "train_command_example": "fairseq-train " + " ".join(train_args(corpus, "moe_eom", 1, s)),
        "environment": common.environment(), "commit": git_commit(common.REPO),
        "data": {"root": str(corpus.root), "resource_classes": corpus.resource_classes(),
                 "training_pairs": corpus.training_pairs(),
                 "test_lines": {d: corpus.lines("test", d) for d in corpus.directions()},
                 "valid_lines": {d: corpus.lines("valid", d) for d in corpus.directions()},
                 "mean_valid_length": {"src": round(src_len, 2), "tgt": round(tgt_len, 2)}},
        "compute": compute, "wall": _walls(train_status, work),
        "curves": curves, "classes": classes,
        "compare": {k: report.compare_summary(v) for k, v in compares.items()},
    }
    results["overfitting"] = report.overfitting(curves, classes, SYSTEMS, seeds)
    results["flattening"] = report.flattening(curves, SYSTEMS, seeds)
    results["summary"] = report.summary(results, SYSTEMS, seeds)
    out = Path(os.environ.get("RESULTS_DIR", HERE / f"results_{scale}"))
    common.write_results(out / "results.json", results)
    report.plots(results, out, SYSTEMS, seeds)
    report.write_report(results, out / "report.md", SYSTEMS, seeds)
    return results


def _walls(status: dict[str, Any], work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"train_total_s": status.get("wall_s"), "runner": status.get("runner")}
    for name, job in (status.get("jobs") or {}).items():
        out[name] = {"wall_s": round(job.get("wall_s", 0), 1), "rc": job.get("rc"),
                     "stopped_at_deadline": job.get("stopped_at_deadline", False)}
    tuned = common.tune_run_seconds(run_dirs(work))
    if tuned:  # a resumed sweep's wall_s covers only its last start; the trials' intervals cover them all
        out["tune_runs"] = tuned
        out["tune_runs_seconds_total"] = round(sum(v["seconds"] for v in tuned.values()), 1)
    tr = work / "translate_status.json"
    if tr.exists():
        out["translate_s"] = {k: v["seconds"] for k, v in json.loads(tr.read_text())["runs"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    ap.add_argument("--runner", choices=("tune", "local"), default="tune",
                    help="tune: mtkit tune's sweep engine (Ray); local: processes on this machine")
    ap.add_argument("--phases", default="train,translate,analyse")
    ap.add_argument("--work", default=None, help="work folder (default work/seed_claims/moe_vs_dense_SCALE)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="local runner: threads at once")
    ap.add_argument("--threads", type=int, default=1, help="threads per fairseq process")
    ap.add_argument("--deadline", type=float, default=None,
                    help="local runner: stop runs after this many seconds (the budget evaluated is then the "
                         "largest update count every run validated)")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=1, help="translate phase: runs translated at once")
    ap.add_argument("--updates", type=int, default=None, help="override the scale's update budget")
    ap.add_argument("--interval", type=int, default=None, help="override the validation interval")
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None, help="override the scale's device")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default 1,2,3)")
    args = ap.parse_args(argv)
    common.setup_logging()
    s, seeds, corpus, work, phases = common.prepare_run(args, SCALES, ("updates", "interval", "device"), "moe_vs_dense")
    if seeds:
        global SEEDS
        SEEDS = seeds
    if "train" in phases:
        train(corpus, work, s, args)
    if "translate" in phases:
        translate(corpus, work, s, args)
    if "analyse" in phases:
        analyse(corpus, work, s, args.scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
