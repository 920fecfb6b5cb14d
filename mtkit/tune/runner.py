"""Run a tune experiment on Ray: local by default, or on a cluster given its address; resumable.

The run folder ``OUT`` holds ``tune_spec.json`` (everything needed to resume), Ray's experiment
folder ``OUT/ray`` (one sub-folder per trial: result.json, checkpoints, the fairseq log) and the
outputs of :mod:`mtkit.tune.outputs`, rewritten from the trials' result.json files at the end.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import Callback

from mtkit.errors import InputError, MtkitError
from mtkit.io import clean_stale_tmp, write_json
from mtkit.tune.fairseq_run import check_train_args
from mtkit.tune.fitness import (
    TranslationFitness,
    directions_from_args,
    fitness_mode,
    parse_directions,
)
from mtkit.tune.schedulers import SchedulerOptions, make_scheduler
from mtkit.tune.space import SearchSpace, parse_space
from mtkit.tune.storage import atomic_local_fs, check_ray_state
from mtkit.tune.trial import POINT, TrialSpec

logger = logging.getLogger(__name__)

SPEC_FILE = "tune_spec.json"
RAY_DIR = "ray"
INIT_ATTEMPTS = 4
STATE_SAVE_S = 5


@dataclass
class TuneSpec:
    """One experiment. ``space`` is the search-space file's mapping; ``points`` an explicit list of
    configurations (fairseq option -> value) that are each run once (see :func:`run_configs`)."""

    train_args: list[str]
    out: str
    budget: int
    interval: int
    space: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] | None = None
    initial: list[dict[str, Any]] | None = None  # starting members (pbt/pb2/random); default: sampled
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    population: int | None = None  # members (pbt/pb2/random) or samples per grid point; default 4 / 1
    fitness: str = "valid_nll"
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    threads: int | None = None  # threads of each fairseq process; default: cpus_per_trial (>= 1)
    max_concurrent: int | None = None
    translation: dict[str, Any] | None = None  # TranslationFitness fields for bleu / chrf++
    keep_checkpoints: int | None = 3
    address: str | None = None
    num_cpus: int | None = None
    object_store_mb: int = 256
    ray_temp_dir: str | None = None
    cwd: str = field(default_factory=os.getcwd)

    @property
    def mode(self) -> str:
        return fitness_mode(self.fitness)

    @property
    def members(self) -> int:
        if self.population is not None:
            return self.population
        return 1 if self.scheduler.name == "grid" or self.points else 4

    def search_space(self) -> SearchSpace:
        return parse_space(self.space, f"{self.out}/{SPEC_FILE}") if self.space else SearchSpace()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TuneSpec:
        data = dict(data)
        sched = dict(data.pop("scheduler", {}))
        sched["perturbation_factors"] = tuple(sched.get("perturbation_factors", (1.2, 0.8)))
        return cls(scheduler=SchedulerOptions(**sched), **data)


@dataclass
class TuneResult:
    out: Path
    rows: list[dict[str, Any]]  # every interval of every trial (trials.csv)
    final: list[dict[str, Any]]  # the last interval of each trial
    best: dict[str, Any]  # best.json
    events: list[dict[str, Any]]  # events.csv
    errors: dict[str, str]  # trial -> error message


def _translation(spec: TuneSpec) -> TranslationFitness | None:
    if spec.fitness not in ("bleu", "chrf++") and not spec.translation:
        return None
    t = dict(spec.translation or {})
    if "raw_dir" not in t:
        raise InputError(f"--fitness {spec.fitness} needs --fitness-raw DIR (the text of the valid split, "
                         "valid.SRC-TGT.LANG, as mtkit data writes it) and the model's --fitness-spm/--fitness-dict")
    dirs = t.pop("directions", None)
    directions = parse_directions(dirs) if isinstance(dirs, str) else (
        [tuple(d) for d in dirs] if dirs else directions_from_args(spec.train_args))
    for key in ("raw_dir", "spm", "dictionary", "langs"):
        if t.get(key):
            t[key] = str(Path(spec.cwd, t[key]).resolve())
    return TranslationFitness(directions=directions, **t)


def _fairseq_train() -> str:
    here = Path(sys.executable).parent / "fairseq-train"
    found = str(here) if here.exists() else shutil.which("fairseq-train")
    if not found:
        raise MtkitError("fairseq-train not found next to this Python or on PATH; install fairseq-fixed "
                         "(bash scripts/setup.sh)")
    return found


def trial_spec(spec: TuneSpec) -> TrialSpec:
    from mtkit.plugin import user_dir

    threads = spec.threads or max(1, int(spec.cpus_per_trial))
    translation = _translation(spec)
    return TrialSpec(train_args=list(spec.train_args), budget=spec.budget, interval=spec.interval,
                     fitness=spec.fitness, threads=threads, fairseq_train=_fairseq_train(), user_dir=user_dir(),
                     cwd=spec.cwd, translation=translation,
                     device="cuda" if spec.gpus_per_trial > 0 else "cpu",
                     niceness=os.nice(0) if spec.address is None else None)


def check_spec(spec: TuneSpec) -> TrialSpec:
    """Everything that can be checked before Ray starts; returns the trials' spec."""
    if spec.budget <= 0 or spec.interval <= 0:
        raise InputError(f"--budget ({spec.budget}) and --interval ({spec.interval}) must be positive updates")
    if spec.interval > spec.budget:
        raise InputError(f"--interval {spec.interval} is larger than the --budget of {spec.budget} updates")
    fitness_mode(spec.fitness)
    check_train_args(spec.train_args, spec.fitness)
    space = spec.search_space()
    if spec.points is not None:
        if spec.scheduler.name != "grid":
            raise InputError("explicit configurations (points) run as a grid; use scheduler 'grid'")
        if not spec.points:
            raise InputError("no configuration to run")
        for i, p in enumerate(spec.points):
            parse_space({k: v for k, v in p.items()}, f"configuration {i}")  # names and values checked
    elif not space.params:
        raise InputError("an empty search space: give --space FILE (or configurations to run)")
    for i, point in enumerate(spec.initial or []):
        for name, value in point.items():
            p = space.params.get(name)
            if p is None or not p.contains(value):
                raise InputError(f"starting configuration {i}: {name}={value!r} is outside the search space")
    if spec.initial and len(spec.initial) != spec.members:
        raise InputError(f"{len(spec.initial)} starting configurations for a population of {spec.members}")
    make_scheduler(spec.scheduler, space, spec.interval, spec.budget)
    ts = trial_spec(spec)
    if ts.translation is not None:
        ts.translation.check()
    return ts


def _param_space_and_search(spec: TuneSpec, space: SearchSpace) -> tuple[dict[str, Any], Any]:
    from ray.tune.search import BasicVariantGenerator

    if spec.points is not None:
        return {**space.param_space(), POINT: tune.grid_search([dict(p) for p in spec.points])}, None
    param_space = space.param_space()
    has_grid = any(p.kind == "grid" for p in space.params.values())
    if spec.scheduler.name in ("pbt", "pb2", "random") and space.mutable and not has_grid:
        # the same seed gives PBT, PB2 and random search the same starting members
        points = [dict(p) for p in spec.initial] if spec.initial else space.sample(spec.members, spec.seed)
        return param_space, BasicVariantGenerator(points_to_evaluate=points, random_state=spec.seed)
    return param_space, BasicVariantGenerator(random_state=spec.seed)


def _init_ray(spec: TuneSpec) -> None:
    import ray

    if ray.is_initialized():
        return
    if spec.address:
        ray.init(address=spec.address, log_to_driver=False)
        return
    kwargs: dict[str, Any] = dict(
        num_cpus=spec.num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
        # trials exchange checkpoints as files; the object store only carries small results
        object_store_memory=spec.object_store_mb * 1024 * 1024,
    )
    if spec.gpus_per_trial == 0:
        kwargs["num_gpus"] = 0
    if spec.ray_temp_dir:
        kwargs["_temp_dir"] = str(Path(spec.ray_temp_dir).resolve())
    # Ray gives its raylet a fixed 30 s to register; a busy machine can miss that: try again
    for attempt in range(1, INIT_ATTEMPTS + 1):
        try:
            ray.init(**kwargs)
            return
        except Exception as e:  # noqa: BLE001 - Ray raises a bare Exception for this
            if "timed out during startup" not in str(e) or attempt == INIT_ATTEMPTS:
                raise
            logger.warning("Ray did not start in time (attempt %d of %d, load average %.1f): trying again",
                           attempt, INIT_ATTEMPTS, os.getloadavg()[0])
            ray.shutdown()


class Progress(Callback):
    """One log line per reported interval and a tqdm bar over all updates (stderr)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None
        self.seen: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:  # Ray saves the run config; the bar stays here
        return {"total": self.total, "bar": None, "seen": dict(self.seen)}

    def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: ARG002
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=self.total, unit="upd", desc="tune", file=sys.stderr, dynamic_ncols=True)
        updates = int(result.get("updates", 0))
        done = updates - self.seen.get(trial.trial_id, 0)
        self.seen[trial.trial_id] = updates
        if done > 0:
            self.bar.update(done)
        hp = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in result.get("hp", {}).items())
        donor = f" (from {result['donor']})" if result.get("donor") else ""
        self.bar.write(f"{trial.trial_id} {updates:>7} upd  fitness {result.get('fitness', float('nan')):.4f}"
                       f"{donor}  [{hp}]  {result.get('interval_s', 0):.0f}s "
                       f"(start-up {result.get('startup_s') or 0:.0f}s)")

    def on_experiment_end(self, trials, **info):  # noqa: ARG002
        if self.bar is not None:
            self.bar.close()


def read_rows(experiment: str | os.PathLike) -> list[dict[str, Any]]:
    """Every interval of every trial, from the trials' result.json files (one report a line)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for result_file in sorted(Path(experiment).glob("*/result.json")):
        for line in result_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if "updates" not in r or "hp" not in r:
                continue
            ckpt = r.get("checkpoint_dir_name")
            row = {k: r.get(k) for k in ("updates", "fitness", "valid_nll", "valid_loss", "train_loss", "bleu",
                                         "chrf++", "lr", "lr_update", "interval_s", "startup_s", "train_s",
                                         "eval_s", "fairseq_s", "donor", "restored_from_update",
                                         "restored_digest", "directions")}
            row.update(trial=r["trial_id"], hp=r["hp"],
                       checkpoint=str(result_file.parent / ckpt) if ckpt else None)
            rows[(row["trial"], int(row["updates"]))] = row  # a re-run interval replaces the killed one
    out = sorted(rows.values(), key=lambda r: (r["trial"], r["updates"]))
    n: dict[str, int] = {}
    for r in out:
        n[r["trial"]] = n.get(r["trial"], 0) + 1
        r["interval"] = n[r["trial"]]
    return out


def load_spec(out: str | os.PathLike) -> TuneSpec:
    path = Path(out) / SPEC_FILE
    if not path.is_file():
        raise InputError(f"{out} holds no mtkit tune experiment ({SPEC_FILE} missing); start one without --resume")
    return TuneSpec.from_json(json.loads(path.read_text(encoding="utf-8")))


def run(spec: TuneSpec, resume: bool = False, progress: bool = True) -> TuneResult:
    """Run (or, with ``resume``, continue) the experiment; write the outputs; return the results."""
    out = Path(spec.out).resolve()
    spec = dataclasses.replace(spec, out=str(out))
    if resume:
        # the folder may have moved since it was started: it is where it is now
        spec = dataclasses.replace(load_spec(out), out=str(out), address=spec.address,
                                   ray_temp_dir=spec.ray_temp_dir)
    elif (out / SPEC_FILE).exists():
        raise InputError(f"{out} already holds an experiment: pass --resume to continue it, or another --out")
    ts = check_spec(spec)
    space = spec.search_space()
    if not resume:
        write_json(out / SPEC_FILE, spec.to_json(), indent=1)

    random.seed(spec.seed)  # PBT's exploit / explore draws use the driver's random module
    # Ray saves the experiment state (which checkpoint each trial has) on its own schedule; intervals
    # take minutes, so saving every few seconds is cheap and lets --resume lose at most that much
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(STATE_SAVE_S))
    _init_ray(spec)
    resources = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(_trainable(), spec=ts), resources)
    experiment = out / RAY_DIR
    n_trials = spec.members * (len(spec.points) if spec.points else space.grid_size)
    callbacks = [Progress(n_trials * spec.budget)] if progress else []
    storage = atomic_local_fs()  # a crash mid-save must not leave half a state file for --resume
    if resume:
        clean_stale_tmp(experiment)
        check_ray_state(experiment)
    if resume and tune.Tuner.can_restore(str(experiment), storage_filesystem=storage):
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=storage)
    else:
        param_space, search_alg = _param_space_and_search(spec, space)
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="fitness", mode=spec.mode, num_samples=spec.members, search_alg=search_alg,
                scheduler=make_scheduler(spec.scheduler, space, spec.interval, spec.budget),
                max_concurrent_trials=spec.max_concurrent),
            run_config=tune.RunConfig(
                name=RAY_DIR, storage_path=str(out), storage_filesystem=storage,
                verbose=1 if progress else 0, callbacks=callbacks,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.keep_checkpoints)),
        )
    grid = tuner.fit()
    errors = {r.path.rsplit("/", 1)[-1]: str(r.error).strip().splitlines()[-1] for r in grid if r.error}
    return write_results(spec, errors)


def _trainable() -> Any:
    from mtkit.tune.trial import train_fairseq

    return train_fairseq


def write_results(spec: TuneSpec, errors: Mapping[str, str] | None = None) -> TuneResult:
    """(Re)write trials.csv, events.csv, best.json, plots and summary.md from the trials' results."""
    from mtkit.tune.outputs import final_rows, write_outputs

    out = Path(spec.out)
    rows = read_rows(out / RAY_DIR)
    if not rows:
        raise MtkitError(f"no trial reported a result (see the fairseq logs under {out / RAY_DIR}/*/fairseq/)"
                         + "".join(f"\n  {t}: {e}" for t, e in (errors or {}).items()))
    sched = spec.scheduler
    meta = {"scheduler": sched.name + ("+asha" if sched.asha else ""), "out": str(out), "fitness": spec.fitness,
            "mode": spec.mode, "budget": spec.budget, "interval": spec.interval,
            "perturbation_interval": sched.perturbation_interval or spec.interval,
            "quantile_fraction": sched.quantile_fraction}
    written = write_outputs(out, rows, meta)
    for trial, err in (errors or {}).items():
        logger.error("trial %s failed: %s", trial, err)
    return TuneResult(out=out, rows=rows, final=[dict(r) for r in final_rows(rows)], best=written["best"],
                      events=written["events"], errors=dict(errors or {}))


def grid_configs(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cross product of ``{"lr": [..], "seed": [1, 2, 3]}`` as a list of configurations."""
    import itertools

    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def run_configs(train_args: Sequence[str], configs: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
                updates: int, out: str | os.PathLike, *, interval: int | None = None, resume: bool = False,
                progress: bool = False, **options: Any) -> TuneResult:
    """Run each configuration (fairseq option -> value, e.g. ``{"lr": 1e-3, "seed": 2}``) for
    ``updates`` updates and return the results table; ``configs`` may also be a grid
    (option -> list of values, crossed). Used by the scaling-law and seed sweeps.

    ``options`` are further :class:`TuneSpec` fields (``fitness``, ``cpus_per_trial``, ...).
    The last interval of each configuration is in ``result.final``; every interval in ``result.rows``.
    """
    points = grid_configs(configs) if isinstance(configs, Mapping) else [dict(c) for c in configs]
    spec = TuneSpec(train_args=list(train_args), out=str(out), budget=updates, interval=interval or updates,
                    points=points, scheduler=SchedulerOptions(name="grid"), **options)
    return run(spec, resume=resume, progress=progress)
