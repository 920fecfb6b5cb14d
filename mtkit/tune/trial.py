"""The Ray Tune trainable: a fairseq run trained interval by interval, restored from its checkpoint.

Each interval runs ``fairseq-train`` for ``interval`` more updates from the trial's checkpoint (or
from scratch), measures the fitness and reports it to Ray Tune with a checkpoint folder that holds
fairseq's ``checkpoint_last.pt`` (an MoE model: ``checkpoint_last-shared.pt`` and one
``-rank-<r>.pt`` per rank, see :func:`checkpoint_set`) and :data:`STATE` (updates done, the trial that
trained it, the hyperparameters it was trained with). When PBT exploits, Ray restarts the recipient with the donor's
checkpoint folder: :data:`STATE` then names another trial, so the recipient reports ``donor`` and the
digest of the checkpoint it continued from, and passes the lr override of
:func:`mtkit.tune.fairseq_run.lr_change_args` because its new rate differs from the donor's.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtkit.tune.fairseq_run import (
    CHECKPOINT,
    control_args,
    hp_args,
    lr_change_args,
    run_fairseq,
    thread_env,
)
from mtkit.tune.fitness import TranslationFitness

logger = logging.getLogger(__name__)

STATE = "mtkit_trial.json"
#: fairseq's output of every interval of a trial; reported with each checkpoint, so that a trial resumed
#: in a new Ray session (whose trial folder starts empty) keeps the log of its earlier intervals
LOG = "train.log"
_PREFIX = CHECKPOINT[:-3]  # checkpoint_last: MoE files are <prefix>-shared.pt, <prefix>-rank-<r>.pt
POINT = "point"  # config key of an explicit configuration (a dict of fairseq options), see run_configs


@dataclass
class TrialSpec:
    """Everything a trial needs besides its hyperparameters (picklable; sent to every Ray worker)."""

    train_args: list[str]
    budget: int  # updates per trial
    interval: int  # updates per report
    fitness: str = "valid_nll"
    threads: int = 1
    fairseq_train: str = "fairseq-train"
    user_dir: str | None = None
    cwd: str = field(default_factory=os.getcwd)
    translation: TranslationFitness | None = None
    device: str = "cpu"
    niceness: int | None = None  # of each fairseq process (default: the driver's, see fairseq_run)


def hparams_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fairseq options of a trial config: its keys, with an explicit ``point`` dict merged in."""
    hp = {k: v for k, v in config.items() if k != POINT}
    hp.update(config.get(POINT) or {})
    return hp


def fairseq_command(spec: TrialSpec, hp: Mapping[str, Any], trained_with: Mapping[str, Any] | None,
                    save_dir: Path, max_update: int) -> list[str]:
    data, *rest = spec.train_args
    plugin = [] if spec.user_dir is None or "--user-dir" in rest else ["--user-dir", spec.user_dir]
    return [spec.fairseq_train, data, *plugin, *rest, *hp_args(hp), *lr_change_args(trained_with, hp),
            *control_args(save_dir, max_update)]


def checkpoint_set(folder: Path, name: str = _PREFIX) -> list[Path]:
    """The files of the last checkpoint in ``folder``, main file first: fairseq's ``checkpoint_last.pt``
    (dense) or, for an MoE model (NLLB's layout, :mod:`mtkit.moe_checkpoint`), ``checkpoint_last-shared.pt``
    and one ``checkpoint_last-rank-<r>.pt`` per training rank; ``name`` picks another checkpoint of the
    folder (e.g. ``checkpoint_3_2400``). Empty when there is none."""
    folder = Path(folder)
    dense = folder / f"{name}.pt"
    if dense.exists():
        return [dense]
    from mtkit.moe_checkpoint import shared_path

    shared = folder / shared_path(name)
    if not shared.exists():
        return []
    ranks = sorted(folder.glob(f"{name}-rank-*.pt"), key=lambda f: int(f.stem.rsplit("-", 1)[1]))
    return [shared, *ranks]


def checkpoint_digest(folder: Path) -> str:
    """Digest of the checkpoint in ``folder`` (its one file; an MoE set: of the files' digests)."""
    from mtkit.io import file_digest

    files = checkpoint_set(folder)
    if not files:
        raise FileNotFoundError(f"{folder} holds no {CHECKPOINT} (nor an MoE {_PREFIX}-shared.pt)")
    if len(files) == 1:
        return file_digest(files[0])
    return hashlib.sha256("".join(f"{f.name}:{file_digest(f)}\n" for f in files).encode()).hexdigest()


def _written_checkpoint(work: Path) -> list[Path]:
    files = checkpoint_set(work)
    if not files:
        raise RuntimeError(f"fairseq-train finished an interval but wrote no {CHECKPOINT} (nor an MoE "
                           f"{_PREFIX}-shared.pt) in {work}; see {work / LOG}")
    return files


def _restore(work: Path) -> tuple[dict[str, Any], str | None]:
    """Put the checkpoint Ray hands this trial (if any) into ``work`` (``checkpoint_last.pt``, or an MoE
    model's ``checkpoint_last-shared.pt`` + ``-rank-<r>.pt``); return its state and digest."""
    from ray import tune

    from mtkit.io import atomic_copy
    from mtkit.tune.storage import is_local

    for stale in checkpoint_set(work):
        stale.unlink()
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return {"updates": 0, "trial_id": None, "hparams": None}, None
    # a local checkpoint is read where it is (as_directory would first copy it to /tmp)
    with contextlib.nullcontext(ckpt.path) if is_local(ckpt.filesystem) else ckpt.as_directory() as d:
        state = json.loads((Path(d) / STATE).read_text(encoding="utf-8"))
        files = checkpoint_set(Path(d))
        if not files:
            raise FileNotFoundError(f"the checkpoint folder Ray restored ({d}) holds no {CHECKPOINT}")
        for f in files:
            atomic_copy(f, work / f.name)
        if (Path(d) / LOG).exists() and not (work / LOG).exists():  # resumed: the earlier intervals' log
            atomic_copy(Path(d) / LOG, work / LOG)
    return state, checkpoint_digest(work)


def _interval_metrics(spec: TrialSpec, log: Any, work: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = dict(log.valid())
    metrics["train_loss"] = log.train_loss()
    lrs = log.lrs()
    if lrs:
        last = max(lrs)
        metrics["lr_update"], metrics["lr"] = last, lrs[last]
    metrics.update(startup_s=log.startup_s, train_s=log.train_s, fairseq_s=log.total_s)
    if spec.translation is not None:
        t0 = time.monotonic()
        scores = spec.translation.score(_written_checkpoint(work)[0], device=spec.device)
        metrics["eval_s"] = time.monotonic() - t0
        metrics["bleu"], metrics["chrf++"] = scores["bleu"], scores["chrf++"]
        metrics["directions"] = {d: {"bleu": s["bleu"], "chrf++": s["chrf++"]}
                                 for d, s in scores["directions"].items()}
    if spec.fitness not in metrics or metrics[spec.fitness] is None:
        raise RuntimeError(f"fitness {spec.fitness} was not measured (fairseq log: {work / LOG})")
    metrics["fitness"] = metrics[spec.fitness]
    return metrics


def train_fairseq(config: dict[str, Any], spec: TrialSpec) -> None:
    """Ray Tune function trainable (use with ``tune.with_parameters(train_fairseq, spec=...)``)."""
    from ray import tune

    if spec.niceness is not None:  # Ray starts workers 15 levels nicer than the driver
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, spec.niceness)
    if spec.translation is not None:  # the in-process beam search of the bleu/chrf++ fitness
        import torch

        torch.set_num_threads(spec.threads)
    ctx = tune.get_context()
    trial_id = ctx.get_trial_id()
    work = Path(ctx.get_trial_dir()) / "fairseq"
    work.mkdir(parents=True, exist_ok=True)
    hp = hparams_of(config)
    state, digest = _restore(work)
    donor = state["trial_id"] if state["trial_id"] not in (None, trial_id) else None
    if donor:
        logger.info("trial %s continues from %s's checkpoint at %d updates with %s", trial_id, donor,
                    state["updates"], hp)
    env = thread_env(spec.threads)
    while state["updates"] < spec.budget:
        start = state["updates"]
        target = min(start + spec.interval, spec.budget)
        t0 = time.monotonic()
        cmd = fairseq_command(spec, hp, state["hparams"], work, target)
        log = run_fairseq(cmd, env, work / LOG, cwd=spec.cwd, niceness=spec.niceness)
        metrics = _interval_metrics(spec, log, work)
        metrics.update(updates=target, restored_from_update=start, donor=donor or "",
                       restored_digest=digest or "", hp=dict(hp), interval_s=time.monotonic() - t0)
        state = {"updates": target, "trial_id": trial_id, "hparams": dict(hp), "donor": donor or ""}
        report_dir = Path(tempfile.mkdtemp(prefix="report-", dir=work))
        files = _written_checkpoint(work)
        for f in files:
            os.replace(f, report_dir / f.name)
        (report_dir / STATE).write_text(json.dumps(state, indent=1), encoding="utf-8")
        shutil.copyfile(work / LOG, report_dir / LOG)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(report_dir)))
        # Ray has copied the folder into the experiment's storage; keep training from our copy
        for f in files:
            os.replace(report_dir / f.name, f)
        shutil.rmtree(report_dir, ignore_errors=True)
        donor, digest = None, None
