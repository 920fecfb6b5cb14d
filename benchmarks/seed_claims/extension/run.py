"""Extension claim (mBART-25 -> mBART-50, Tang et al.): extending a trained multilingual model to a new
language keeps what it knew (old-language quality unchanged while the new language is learned), and
initialising the new language's token from a related language (``mtkit extend-langs --init-from``)
helps the new language more than a random row.

Runs, all from one base model (a translation model trained on the old languages' directions):
- ``cont_sS``: the base trained further on the old directions only (no extension): the control;
- ``ext_init_sS``: ``mtkit extend-langs`` adds the new language with its token copied from a related
  old language, then the same further training on the old directions plus the new ones;
- ``ext_rand_sS``: the same, the new token drawn as fairseq does (normal(0, d^-0.5)).
Every further training run has the same updates, batch size and schedule, 3 seeds (the seed of the
further training; the base is shared). Old-language quality: ``ext_init`` vs ``cont`` on the old
directions' test sets (paired bootstrap per seed, ``mtkit compare``); the base is scored too. New
language: ``ext_init`` vs ``ext_rand`` on the new directions. The corpus (``../data.sh`` with
``LANGS``) has the new language's data from the start, so the SentencePiece model covers it, as
mBART-25's did for most of mBART-50's new languages; the base model never sees a sentence of it.

    LANGS=en_XX,fr_XX,de_DE,es_XX,ro_RO,gl_ES benchmarks/seed_claims/data.sh work/seed_claims/data_ext
    SEED_CLAIMS_DATA=work/seed_claims/data_ext python benchmarks/seed_claims/extension/run.py

Phases: ``base``, ``extend``, ``train``, ``translate``, ``analyse`` (results.json, report.md, plot).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from mtkit.io import git_commit, write_lines  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = (1, 2, 3)
ARMS = ("cont", "ext_init", "ext_rand")
NEW_LANG = "gl_ES"
INIT_FROM = "es_XX"  # Galician's closest relative among the old languages

#: cpu: about 50 minutes on a quiet 2-core machine (the base on 1 thread: 2 threads crawl when another
#: process holds a core; then 2 runs at a time,
#: then the test sets); gpu: the same at base size, for a lent GPU (not run yet).
SCALES: dict[str, dict[str, Any]] = {
    "cpu": {"dim": 128, "layers": 2, "heads": 4, "ffn": 512, "max_tokens": 2048, "base_updates": 1200,
            "updates": 400, "interval": 100, "lr": 0.002, "warmup": 300, "ft_lr": 0.001, "ft_warmup": 100,
            "base_threads": 1, "device": "cpu"},
    "gpu": {"dim": 512, "layers": 6, "heads": 8, "ffn": 2048, "max_tokens": 8192, "base_updates": 10000,
            "updates": 4000, "interval": 500, "lr": 0.001, "warmup": 1000, "ft_lr": 0.0005, "ft_warmup": 200,
            "base_threads": 4, "device": "cuda"},
}
TEMPERATURE = 5.0


def old_langs(corpus: common.Corpus) -> list[str]:
    return [x for x in corpus.langs if x != NEW_LANG]


def directions(langs: list[str]) -> list[str]:
    return [d for x in langs if x != "en_XX" for d in (f"en_XX-{x}", f"{x}-en_XX")]


def new_directions() -> list[str]:
    return [f"en_XX-{NEW_LANG}", f"{NEW_LANG}-en_XX"]


def train_args(corpus: common.Corpus, langs_file: Path, pairs: list[str], s: dict[str, Any], seed: int,
               updates: int, lr: float, warmup: int) -> list[str]:
    d, L, h = s["dim"], s["layers"], s["heads"]
    device = ["--cpu"] if s["device"] == "cpu" else []
    return [str(corpus.databin), "--task", "translation_multi_simple_epoch_mtkit", "--lang-dict", str(langs_file),
            "--lang-pairs", ",".join(pairs), "--encoder-langtok", "src", "--decoder-langtok",
            "--sampling-method", "temperature", "--sampling-temperature", str(TEMPERATURE), "--valid-per-direction",
            *device, "--arch", "transformer", "--encoder-layers", str(L), "--decoder-layers", str(L),
            "--encoder-embed-dim", str(d), "--decoder-embed-dim", str(d), "--encoder-ffn-embed-dim", str(s["ffn"]),
            "--decoder-ffn-embed-dim", str(s["ffn"]), "--encoder-attention-heads", str(h),
            "--decoder-attention-heads", str(h), "--share-all-embeddings", "--encoder-normalize-before",
            "--decoder-normalize-before", "--max-source-positions", "128", "--max-target-positions", "128",
            "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--dropout", "0.1",
            "--seed", str(seed), "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", str(lr),
            "--lr-scheduler", "inverse_sqrt", "--warmup-updates", str(warmup), "--max-tokens", str(s["max_tokens"]),
            "--num-workers", "0", "--log-interval", "50", "--max-update", str(updates),
            "--validate-interval-updates", str(s["interval"]), "--save-interval-updates", str(s["interval"]),
            "--keep-interval-updates", "1", "--no-epoch-checkpoints", "--ddp-backend", "legacy_ddp"]


def run_name(arm: str, seed: int) -> str:
    return f"{arm}_s{seed}"


def files(work: Path) -> dict[str, Path]:
    return {"old_langs": work / "langs.old.txt", "base": work / "runs" / "base",
            "ext_init": work / "extended" / "init", "ext_rand": work / "extended" / "rand"}


# ---- phases -------------------------------------------------------------------------------------------
def base(corpus: common.Corpus, work: Path, s: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    f = files(work)
    write_lines(f["old_langs"], old_langs(corpus))
    curve = common.valid_curve(f["base"] / "train.log")
    if (f["base"] / "checkpoint_last.pt").exists() and curve and curve[-1]["updates"] == s["base_updates"]:
        common.logger.info("base model already trained (%s)", f["base"])
        return {}
    job = common.Job("base", train_args(corpus, f["old_langs"], directions(old_langs(corpus)), s, 1,
                                        s["base_updates"], s["lr"], s["warmup"]), f["base"], threads=s["base_threads"])
    res = common.run_local([job], cores=s["base_threads"])
    if res["base"]["rc"] != 0:
        raise SystemExit(f"base training failed: see {job.log}")
    common.write_results(work / "base_status.json", res)
    return res


def extend(corpus: common.Corpus, work: Path, s: dict[str, Any]) -> None:
    f = files(work)
    for arm, init in (("ext_init", ["--init-from", f"{NEW_LANG}={INIT_FROM}"]), ("ext_rand", ["--seed", "1"])):
        if (f[arm] / "model.pt").exists():
            continue
        cmd = [sys.executable, "-m", "mtkit.cli", "extend-langs", "--checkpoint", str(f["base"] / "checkpoint_last.pt"),
               "--dict", str(corpus.dictionary), "--langs", str(f["old_langs"]),
               "--new-langs", ",".join([*old_langs(corpus), NEW_LANG]), "--spm-model", str(corpus.spm),
               "--out", str(f[arm]), *init]
        common.logger.info("%s", " ".join(cmd))
        res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(common.REPO)))
        if res.returncode != 0:
            raise SystemExit(f"mtkit extend-langs failed:\n{res.stderr[-3000:]}")


def jobs(corpus: common.Corpus, work: Path, s: dict[str, Any], seeds: tuple[int, ...]) -> list[common.Job]:
    f = files(work)
    out = []
    for seed in seeds:
        for arm in ARMS:
            if arm == "cont":
                langs_file, pairs, model = f["old_langs"], directions(old_langs(corpus)), f["base"] / "checkpoint_last.pt"
            else:
                langs_file, pairs = f[arm] / "langs.txt", directions([*old_langs(corpus), NEW_LANG])
                model = f[arm] / "model.pt"
            a = train_args(corpus, langs_file, pairs, s, seed, s["updates"], s["ft_lr"], s["ft_warmup"])
            out.append(common.Job(run_name(arm, seed), [*a, "--finetune-from-model", str(model)],
                                  work / "runs" / run_name(arm, seed)))
    return out


def train(corpus: common.Corpus, work: Path, s: dict[str, Any], args: argparse.Namespace,
          seeds: tuple[int, ...]) -> dict[str, Any]:
    js = jobs(corpus, work, s, seeds)
    t0 = time.monotonic()
    if args.runner == "tune":
        res = common.run_tune(js, work / "tune", interval=s["interval"], budget=s["updates"], cpus_per_trial=1)
        status = {"runner": "mtkit tune", "trials": len(res.final), "errors": res.errors}
    else:
        status = {"runner": "local", "jobs": common.run_local(js, cores=args.cores)}
    status["wall_s"] = round(time.monotonic() - t0, 1)
    common.write_results(work / "train_status.json", status)
    return status


def run_dirs(work: Path, seeds: tuple[int, ...]) -> dict[str, Path]:
    return common.run_dirs(work, [run_name(a, seed) for seed in seeds for a in ARMS])


def _translate_one(name: str, ckpt: str, corpus_root: str, out_dir: str, langs_file: str, dirs: list[str],
                   beam: int, device: str) -> tuple[str, dict[str, Any], float]:
    t0 = time.monotonic()
    corpus = common.Corpus(Path(corpus_root))
    old = [d for d in dirs if NEW_LANG not in d]
    info = common.translate_test(Path(ckpt), corpus, old, Path(out_dir) / "old", beam=beam, device=device,
                                 langs_file=Path(langs_file))
    new = [d for d in dirs if NEW_LANG in d]
    if new:
        info.update(common.translate_test(Path(ckpt), corpus, new, Path(out_dir) / "new", beam=beam, device=device,
                                          langs_file=Path(langs_file)))
    return name, info, round(time.monotonic() - t0, 1)


def translate(corpus: common.Corpus, work: Path, s: dict[str, Any], args: argparse.Namespace,
              seeds: tuple[int, ...]) -> dict[str, Any]:
    import concurrent.futures as cf
    import multiprocessing as mp

    f = files(work)
    old_dirs, all_dirs = directions(old_langs(corpus)), directions([*old_langs(corpus), NEW_LANG])
    todo = [("base", str(f["base"] / "checkpoint_last.pt"), str(corpus.root), str(work / "hyp" / "base"),
             str(f["old_langs"]), old_dirs, args.beam, s["device"])]
    for name, d in run_dirs(work, seeds).items():
        ckpt = common.checkpoint_at(d, s["updates"], s["updates"])
        if ckpt is None:
            raise SystemExit(f"{name}: no checkpoint at {s['updates']} updates in {d}; run the train phase")
        arm = name.rsplit("_s", 1)[0]
        langs_file = f["old_langs"] if arm == "cont" else f[arm] / "langs.txt"
        todo.append((name, str(ckpt), str(corpus.root), str(work / "hyp" / name), str(langs_file),
                     old_dirs if arm == "cont" else all_dirs, args.beam, s["device"]))
    info: dict[str, Any] = {"runs": {}}
    with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for name, dirs, seconds in pool.map(_translate_one, *zip(*todo)):
            info["runs"][name] = {"checkpoint": next(t[1] for t in todo if t[0] == name), "directions": dirs,
                                  "seconds": seconds}
            common.logger.info("translated the test sets with %s (%.0f s)", name, seconds)
    common.write_results(work / "translate_status.json", info)
    return info


def _group(c: dict[str, Any], group: str = "all") -> dict[str, Any]:
    g = c["groups"][group]
    return {"directions": g["directions"],
            "scores": {m: {k: r["score"] for k, r in v.items()} for m, v in g["scores"].items()},
            "differences": {m: {k: {x: r[x] for x in ("delta", "low", "high", "p_bs") if x in r} for k, r in v.items()}
                            for m, v in g["differences"].items()}}


def _directions(c: dict[str, Any]) -> dict[str, Any]:
    return {d: {"class": v.get("class"), "n_lines": v["n_lines"], "in_averages": v["in_averages"],
                "scores": {m: {k: r["score"] for k, r in v["scores"][m].items()} for m in v["scores"]}}
            for d, v in c["directions"].items()}


def analyse(corpus: common.Corpus, work: Path, s: dict[str, Any], scale: str, seeds: tuple[int, ...]) -> dict[str, Any]:
    import report

    hyp = work / "hyp"
    old_cmp, new_cmp = {}, {}
    for seed in seeds:
        old_cmp[seed] = common.compare({"cont": hyp / run_name("cont", seed) / "old",
                                        "ext_init": hyp / run_name("ext_init", seed) / "old",
                                        "ext_rand": hyp / run_name("ext_rand", seed) / "old", "base": hyp / "base" / "old"},
                                       corpus, work / "compare" / f"old_s{seed}")
        new_cmp[seed] = common.compare({"ext_rand": hyp / run_name("ext_rand", seed) / "new",
                                        "ext_init": hyp / run_name("ext_init", seed) / "new"},
                                       corpus, work / "compare" / f"new_s{seed}")
    dirs = run_dirs(work, seeds)
    curves = {"base": common.valid_curve(files(work)["base"] / "train.log"),
              **{name: common.valid_curve(d / "train.log") for name, d in dirs.items()}}
    ext_json = json.loads((files(work)["ext_init"] / "extend_langs.json").read_text(encoding="utf-8"))
    all_dirs = directions([*old_langs(corpus), NEW_LANG])
    results = {
        "claim": "extending a trained multilingual model to a new language keeps old-language quality; "
                 "--init-from a related language helps the new language",
        "command": " ".join([sys.executable, *sys.argv]), "scale": scale, "settings": s, "seeds": list(seeds),
        "new_language": NEW_LANG, "init_from": INIT_FROM, "old_languages": old_langs(corpus),
        "arms": {"cont": "base trained further on the old directions (no extension)",
                 "ext_init": f"extend-langs --init-from {NEW_LANG}={INIT_FROM}, trained further on old + new directions",
                 "ext_rand": "extend-langs, new token normal(0, d^-0.5), trained further on old + new directions"},
        "train_command_example": "fairseq-train " + " ".join(jobs(corpus, work, s, seeds[:1])[1].args),
        "extend_langs": ext_json,
        "environment": common.environment(), "commit": git_commit(common.REPO),
        "data": {"root": str(corpus.root), "resource_classes": corpus.resource_classes(),
                 "training_pairs": corpus.training_pairs(),
                 "test_lines": {d: corpus.lines("test", d) for d in all_dirs},
                 "valid_lines": {d: corpus.lines("valid", d) for d in all_dirs}},
        "wall": _walls(work),
        "old": {f"s{k}": {"all": _group(v), "directions": _directions(v)} for k, v in old_cmp.items()},
        "new": {f"s{k}": {"all": _group(v), "directions": _directions(v)} for k, v in new_cmp.items()},
        "curves": curves,
    }
    results["summary"] = report.summary(results)
    out = Path(os.environ.get("RESULTS_DIR", HERE / f"results_{scale}"))
    common.write_results(out / "results.json", results)
    report.plot(results, out / "valid_curves.png")
    report.write_report(results, out / "report.md")
    return results


def _walls(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("base_status", "train_status", "translate_status"):
        p = work / f"{name}.json"
        if p.exists():
            doc = json.loads(p.read_text(encoding="utf-8"))
            if name == "base_status":
                out["base_s"] = round(doc.get("base", {}).get("wall_s", 0), 1)
            elif name == "train_status":
                out["train_s"], out["runner"] = doc.get("wall_s"), doc.get("runner")
            else:
                out["translate_s"] = {k: v["seconds"] for k, v in doc["runs"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    ap.add_argument("--runner", choices=("tune", "local"), default="tune",
                    help="further training: mtkit tune's sweep engine (Ray) or processes on this machine")
    ap.add_argument("--phases", default="base,extend,train,translate,analyse")
    ap.add_argument("--work", default=None, help="work folder (default work/seed_claims/extension_SCALE)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="local runner: threads at once")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2, help="translate phase: runs translated at once")
    ap.add_argument("--updates", type=int, default=None, help="override the further training's updates")
    ap.add_argument("--base-updates", type=int, default=None, help="override the base model's updates")
    ap.add_argument("--interval", type=int, default=None, help="override the validation interval")
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None, help="override the scale's device")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds of the further training (default 1,2,3)")
    args = ap.parse_args(argv)
    common.setup_logging()
    s, seeds, corpus, work, phases = common.prepare_run(args, SCALES, ("updates", "base_updates", "interval", "device"),
                                                        "extension")
    seeds = seeds or SEEDS
    if NEW_LANG not in corpus.langs or INIT_FROM not in corpus.langs:
        raise SystemExit(f"the corpus in {corpus.root} must hold {NEW_LANG} and {INIT_FROM}: build it with "
                         "LANGS=en_XX,fr_XX,de_DE,es_XX,ro_RO,gl_ES benchmarks/seed_claims/data.sh DIR")
    if "base" in phases:
        base(corpus, work, s, args)
    if "extend" in phases:
        extend(corpus, work, s)
    if "train" in phases:
        train(corpus, work, s, args, seeds)
    if "translate" in phases:
        translate(corpus, work, s, args, seeds)
    if "analyse" in phases:
        analyse(corpus, work, s, args.scale, seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
