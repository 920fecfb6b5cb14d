"""`mtkit tune`: PBT, PB2 and grid / random sweeps of fairseq runs on Ray Tune (see docs/tune.md)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

DESCRIPTION = """\
Train a population of fairseq runs as Ray Tune trials. Each trial runs fairseq-train (with mtkit's
--user-dir) for --interval updates at a time from its own checkpoint, measures the fitness and
reports it; PBT copies the best members' checkpoints into the worst and perturbs their
hyperparameters. Everything after `--` is passed to fairseq-train unchanged (data folder first),
so any recipe's command works:

  mtkit tune --space space.yaml --budget 4000 --interval 500 --out runs/pbt -- \\
      data-bin --arch transformer --optimizer adam --lr 5e-4 --lr-scheduler inverse_sqrt ...

Search space (YAML or JSON; keys are fairseq options without dashes):
  lr: {loguniform: [1.0e-4, 3.0e-3]}
  dropout: {uniform: [0.0, 0.3]}
  attention-dropout: {choice: [0.0, 0.1, 0.2]}
  seed: {grid: [1, 2, 3]}

Outputs in --out: trials.csv, events.csv, best.json, fitness.png, schedules.png, summary.md.
A killed run continues with `mtkit tune --resume --out DIR`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("fairseq_args", nargs=argparse.REMAINDER,
                        help="-- then the fairseq-train arguments (data folder first)")
    parser.add_argument("--out", required=True, help="run folder (created; must be new unless --resume)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the experiment in --out (its settings are read from there)")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the outputs of --out from what its trials reported so far "
                             "(also for a run that was killed)")
    parser.add_argument("--space", help="search-space file (.yaml/.yml/.json)")
    parser.add_argument("--scheduler", choices=("pbt", "pb2", "grid", "random"), default="pbt",
                        help="pbt (default), pb2 (GP-bandit explore; continuous ranges), grid or random search")
    parser.add_argument("--budget", type=int, help="updates per trial (required unless --resume)")
    parser.add_argument("--interval", type=int,
                        help="updates per fairseq-train run / report (default: the perturbation interval, "
                             "or the budget for grid/random without ASHA)")
    parser.add_argument("--population", type=int,
                        help="members (pbt/pb2/random; default 4) or samples per grid point (grid; default 1)")
    parser.add_argument("--fitness", choices=("valid_nll", "valid_loss", "bleu", "chrf++"), default="valid_nll",
                        help="valid_nll/valid_loss from fairseq's validation (lower is better), or BLEU / chrF++ "
                             "of beam search on the valid split (higher is better)")
    pbt = parser.add_argument_group("PBT / PB2 (defaults: Jaderberg et al. 2017)")
    pbt.add_argument("--perturbation-interval", type=int,
                     help="updates between exploit/explore steps (a multiple of --interval; default --interval)")
    pbt.add_argument("--quantile-fraction", type=float, default=0.2,
                     help="bottom / top fraction for truncation selection (default 0.2)")
    pbt.add_argument("--resample-probability", type=float, default=0.25,
                     help="probability to resample a hyperparameter instead of perturbing it (default 0.25)")
    pbt.add_argument("--perturbation-factors", type=float, nargs=2, default=(1.2, 0.8), metavar=("UP", "DOWN"),
                     help="factors of the perturbation (default 1.2 0.8)")
    pbt.add_argument("--burn-in", type=int, default=0, help="updates before the first perturbation (default 0)")
    pbt.add_argument("--synch", action="store_true",
                     help="synchronous PBT: all members reach each interval before exploiting")
    asha = parser.add_argument_group("ASHA early stopping (grid / random)")
    asha.add_argument("--asha", action="store_true", help="stop bad trials early (ASHA)")
    asha.add_argument("--grace-period", type=int, help="updates before ASHA may stop a trial (default: --interval)")
    asha.add_argument("--reduction-factor", type=float, default=3.0, help="ASHA reduction factor (default 3)")
    fit = parser.add_argument_group("bleu / chrf++ fitness")
    fit.add_argument("--fitness-raw", help="folder with the valid text (valid.SRC-TGT.LANG, as mtkit data writes)")
    fit.add_argument("--fitness-spm", help="the model's SentencePiece model")
    fit.add_argument("--fitness-dict", help="the model's fairseq dictionary (dict.txt)")
    fit.add_argument("--fitness-langs", help="the language list (multilingual models)")
    fit.add_argument("--fitness-sentences", type=int, default=100, help="valid lines per direction (default 100)")
    fit.add_argument("--fitness-beam", type=int, default=4, help="beam size (default 4)")
    fit.add_argument("--directions", help="SRC-TGT,... to score (default: fairseq's --lang-pairs)")
    res = parser.add_argument_group("resources")
    res.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves per trial (default 1)")
    res.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, may be fractional (default 0)")
    res.add_argument("--threads", type=int,
                     help="OMP/MKL threads of each fairseq process (default: --cpus-per-trial, at least 1)")
    res.add_argument("--max-concurrent", type=int, help="trials running at once at most (default: as resources allow)")
    res.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    res.add_argument("--address", help="join a running Ray cluster (e.g. auto or HEAD:6379) instead of starting one")
    res.add_argument("--object-store-mb", type=int, default=256,
                     help="local Ray object store size in MiB (default 256: checkpoints travel as files)")
    res.add_argument("--ray-temp-dir", help="Ray's session folder (default /tmp/ray)")
    res.add_argument("--keep-checkpoints", type=int, default=3,
                     help="checkpoints kept per trial (default 3; 0 keeps all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting configurations and of PBT (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")


def _spec(args: argparse.Namespace):
    from mtkit.errors import InputError
    from mtkit.tune import SchedulerOptions, TuneSpec, load_space

    fargs = list(args.fairseq_args)
    if fargs and fargs[0] == "--":
        fargs = fargs[1:]
    if args.budget is None or not fargs:
        raise InputError("give --budget and, after --, the fairseq-train arguments (or --resume --out DIR)")
    space = load_space(args.space).to_dict() if args.space else {}
    if not space:
        raise InputError("give --space FILE (the hyperparameters to search)")
    sched = SchedulerOptions(
        name=args.scheduler, perturbation_interval=args.perturbation_interval,
        quantile_fraction=args.quantile_fraction, resample_probability=args.resample_probability,
        perturbation_factors=tuple(args.perturbation_factors), burn_in=args.burn_in, synch=args.synch,
        asha=args.asha, grace_period=args.grace_period, reduction_factor=args.reduction_factor)
    interval = args.interval or args.perturbation_interval or (
        args.budget if args.scheduler in ("grid", "random") and not args.asha else None)
    if interval is None:
        raise InputError(f"--scheduler {args.scheduler} needs --interval (updates between reports)")
    translation = None
    if args.fitness in ("bleu", "chrf++") or args.fitness_raw:
        translation = {k: v for k, v in {
            "raw_dir": args.fitness_raw, "spm": args.fitness_spm, "dictionary": args.fitness_dict,
            "langs": args.fitness_langs, "max_sentences": args.fitness_sentences, "beam": args.fitness_beam,
            "directions": args.directions}.items() if v is not None}
    return TuneSpec(train_args=fargs, out=args.out, budget=args.budget, interval=interval, space=space,
                    scheduler=sched, population=args.population, fitness=args.fitness, seed=args.seed,
                    cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, threads=args.threads,
                    max_concurrent=args.max_concurrent, translation=translation,
                    keep_checkpoints=args.keep_checkpoints or None, address=args.address, num_cpus=args.num_cpus,
                    object_store_mb=args.object_store_mb, ray_temp_dir=args.ray_temp_dir)


def run(args: argparse.Namespace) -> int:
    from mtkit.errors import MtkitError

    try:
        from mtkit.tune import TuneSpec
        from mtkit.tune import run as run_tune
    except ImportError as e:
        raise MtkitError(f"mtkit tune needs Ray Tune: pip install 'mtkit[tune]' ({e})") from None
    if args.report:
        from mtkit.tune import load_spec, write_results

        spec = load_spec(args.out)
        result = write_results(dataclasses.replace(spec, out=str(Path(args.out).resolve())))
        print(json.dumps({"out": str(result.out), "intervals": len(result.rows), "exploits": len(result.events),
                          "best": result.best.get("config"), "fitness": result.best.get("fitness")}, indent=1))
        return 0
    if args.resume:
        spec = TuneSpec(train_args=[], out=args.out, budget=1, interval=1, address=args.address,
                        ray_temp_dir=args.ray_temp_dir)
    else:
        spec = _spec(args)
    result = run_tune(spec, resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"out": str(result.out), "best": result.best.get("config"),
                      "fitness": result.best.get("fitness"), "exploits": len(result.events),
                      "failed_trials": result.errors}, indent=1))
    if result.errors:
        print(f"mtkit tune: {len(result.errors)} trial(s) failed; see {result.out}/ray/*/fairseq/train.log",
              file=sys.stderr)
        return 1
    return 0
