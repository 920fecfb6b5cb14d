"""mtkit tune: search spaces, fairseq interval commands, outputs; PBT exploit, lr after restore and
resume on the tiny data (the slow tests run real fairseq-train processes under a real local Ray)."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtkit.errors import InputError
from mtkit.tune.fairseq_run import (
    CHECKPOINT,
    check_train_args,
    hp_args,
    lr_change_args,
    run_fairseq,
    thread_env,
)
from mtkit.tune.outputs import exploit_events, trials_csv, write_outputs
from mtkit.tune.space import load_space, parse_space
from mtkit.tune.trial import checkpoint_digest, checkpoint_set

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WARMUP = 50  # tiny_train_args' --warmup-updates (inverse_sqrt)


# ----------------------------------------------------------------------------- search spaces

def test_space_file_forms(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "lr: {loguniform: [1.0e-4, 1.0e-2]}\ndropout: {uniform: [0.0, 0.3]}\n"
        "attention-dropout: {choice: [0.0, 0.1]}\nseed: {grid: [1, 2, 3]}\nlabel-smoothing: 0.1\n")
    space = load_space(tmp_path / "s.yaml")
    assert [p.kind for p in space.params.values()] == ["loguniform", "uniform", "choice", "grid", "const"]
    assert [p.name for p in space.mutable] == ["lr", "dropout", "attention-dropout"]
    assert space.grid_size == 3
    (tmp_path / "s.json").write_text(json.dumps(space.to_dict()))
    assert load_space(tmp_path / "s.json").params == space.params


def test_space_sample_is_reproducible_and_inside_bounds():
    space = parse_space({"lr": {"loguniform": [1e-4, 1e-2]}, "warmup-updates": {"randint": [10, 20]},
                         "dropout": {"choice": [0.0, 0.1]}})
    a, b = space.sample(50, seed=3), space.sample(50, seed=3)
    assert a == b and a != space.sample(50, seed=4)
    for point in a:
        assert all(space.params[k].contains(v) for k, v in point.items())
        assert isinstance(point["warmup-updates"], int)


@pytest.mark.parametrize("spec, message", [
    ({"--lr": 0.1}, "not a fairseq option name"),
    ({"max-update": {"grid": [1, 2]}}, "set by mtkit tune"),
    ({"lr": [1, 2]}, "ambiguous"),
    ({"lr": {"loguniform": [0, 1]}}, "positive low bound"),
    ({"lr": {"uniform": [2, 1]}}, "low < high"),
    ({"lr": {"normal": [0, 1]}}, "unknown distribution"),
    ({}, "non-empty mapping"),
])
def test_space_errors_say_what_is_wrong(spec, message):
    with pytest.raises(InputError, match=message):
        parse_space(spec, "space.yaml")


def test_pbt_mutations_and_pb2_bounds():
    space = parse_space({"lr": {"loguniform": [1e-4, 1e-2]}, "attention-dropout": {"choice": [0.0, 0.1, 0.2]},
                         "seed": {"grid": [1, 2]}})
    muts = space.mutations()
    assert set(muts) == {"lr", "attention-dropout"}  # grid axes are never perturbed
    assert muts["attention-dropout"] == [0.0, 0.1, 0.2]  # a list: PBT moves to a neighbour
    with pytest.raises(InputError, match="continuous ranges only"):
        space.bounds()


def test_scheduler_defaults_are_the_papers():
    from ray.tune.schedulers import PopulationBasedTraining

    from mtkit.tune.schedulers import SchedulerOptions, make_scheduler

    space = parse_space({"lr": {"loguniform": [1e-4, 1e-2]}})
    pbt = make_scheduler(SchedulerOptions(), space, interval=100, budget=1000)
    assert isinstance(pbt, PopulationBasedTraining)
    assert pbt._quantile_fraction == 0.2 and pbt._resample_probability == 0.25  # noqa: SLF001
    assert tuple(pbt._perturbation_factors) == (1.2, 0.8) and pbt._perturbation_interval == 100  # noqa: SLF001
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.schedulers.pb2 import PB2

    pb2 = make_scheduler(SchedulerOptions(name="pb2"), space, interval=100, budget=1000)
    assert isinstance(pb2, PB2) and pb2._hyperparam_bounds == {"lr": [1e-4, 1e-2]}  # noqa: SLF001
    asha = make_scheduler(SchedulerOptions(name="grid", asha=True), space, interval=100, budget=1000)
    assert isinstance(asha, ASHAScheduler) and asha._max_t == 1000  # noqa: SLF001
    assert make_scheduler(SchedulerOptions(name="random"), space, interval=100, budget=1000) is None
    with pytest.raises(InputError, match="multiple of --interval"):
        make_scheduler(SchedulerOptions(perturbation_interval=150), space, interval=100, budget=1000)
    with pytest.raises(InputError, match="not with PBT"):
        make_scheduler(SchedulerOptions(asha=True), space, interval=100, budget=1000)


# ----------------------------------------------------------------------------- fairseq commands

def test_hp_args_and_lr_override():
    assert hp_args({"lr": 0.001, "attention-dropout": 0.1, "seed": 3, "fp16": True, "no-x": False}) == [
        "--lr", "0.001", "--attention-dropout", "0.1", "--seed", "3", "--fp16"]
    assert lr_change_args(None, {"lr": 0.001}) == []
    assert lr_change_args({"lr": 0.001}, {"lr": 0.001}) == []
    assert lr_change_args({"lr": 0.001}, {"lr": 0.0012}) == ["--optimizer-overrides", "{'lr': 0.0012}"]


def test_incompatible_fairseq_args_are_refused():
    with pytest.raises(InputError, match="--no-save"):
        check_train_args(["data", "--no-save"], "valid_nll")
    with pytest.raises(InputError, match="valid_nll"):
        check_train_args(["data", "--disable-validation"], "valid_nll")
    check_train_args(["data", "--disable-validation"], "bleu")
    with pytest.raises(InputError, match="data folder"):
        check_train_args(["--arch", "transformer"], "valid_nll")


def test_thread_env_sets_every_pool():
    env = thread_env(3, {"OMP_NUM_THREADS": "16"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"


# ----------------------------------------------------------------------------- outputs

def _row(trial, updates, lr, fitness, donor="", start=None):
    return {"trial": trial, "updates": updates, "hp": {"lr": lr, "dropout": 0.1}, "fitness": fitness,
            "valid_nll": fitness, "donor": donor, "restored_from_update": updates - 10 if start is None else start,
            "interval_s": 5.0, "startup_s": 2.0, "checkpoint": f"/x/{trial}/{updates}"}


def _rows():
    return [_row("a", 10, 1e-3, 5.0), _row("b", 10, 1e-5, 9.0), _row("a", 20, 1e-3, 4.0),
            _row("b", 20, 1.2e-3, 3.9, donor="a", start=10)]


def test_exploit_events_name_before_donor_and_after():
    (e,) = exploit_events(_rows())
    assert (e["recipient"], e["donor"], e["update"]) == ("b", "a", 10)
    assert (e["before"]["lr"], e["donor_hp"]["lr"], e["after"]["lr"]) == (1e-5, 1e-3, 1.2e-3)
    assert (e["recipient_fitness"], e["donor_fitness"]) == (9.0, 5.0)


def test_write_outputs(tmp_path):
    meta = {"scheduler": "pbt", "fitness": "valid_nll", "mode": "min", "budget": 20, "interval": 10}
    done = write_outputs(tmp_path, _rows(), meta)
    assert done["best"]["trial"] == "b" and done["best"]["fitness"] == 3.9
    header = trials_csv(_rows()).splitlines()[0].split(",")
    assert header[:6] == ["trial", "interval", "updates", "lr", "dropout", "fitness"]
    events = (tmp_path / "events.csv").read_text().splitlines()
    assert len(events) == 2 and events[1].startswith("b,a,10,9,5,1e-05,0.001,0.0012")
    for png in ("fitness.png", "schedules.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    summary = (tmp_path / "summary.md").read_text()
    assert "| 10 | b | a | 1e-05 → 0.0012 | 0.1 → 0.1 |" in summary
    assert "start-up" in summary


def test_checkpoint_set_dense_and_moe(tmp_path):
    """A dense checkpoint is one file; an MoE one (NLLB layout) is the shared file then every rank's,
    in rank order; the digest changes when any of them changes."""
    assert checkpoint_set(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="checkpoint_last.pt"):
        checkpoint_digest(tmp_path)
    for name in ("checkpoint_last-rank-10.pt", "checkpoint_last-rank-2.pt", "checkpoint_last-shared.pt",
                 "checkpoint_best-shared.pt", "checkpoint_last-rank-0.pt"):
        (tmp_path / name).write_bytes(name.encode())
    assert [f.name for f in checkpoint_set(tmp_path)] == [
        "checkpoint_last-shared.pt", "checkpoint_last-rank-0.pt", "checkpoint_last-rank-2.pt",
        "checkpoint_last-rank-10.pt"]
    before = checkpoint_digest(tmp_path)
    (tmp_path / "checkpoint_last-rank-2.pt").write_bytes(b"other experts")
    assert checkpoint_digest(tmp_path) != before
    (tmp_path / CHECKPOINT).write_bytes(b"dense")
    assert checkpoint_set(tmp_path) == [tmp_path / CHECKPOINT]


def test_help_does_not_import_ray():
    code = ("import sys; from mtkit.cli import main; main(['--help']); "
            "sys.exit(1 if 'ray' in sys.modules or 'torch' in sys.modules else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert "tune" in res.stdout
    res = subprocess.run([sys.executable, "-m", "mtkit.cli", "tune", "--help"], capture_output=True, text=True,
                         cwd=REPO)
    assert res.returncode == 0 and "--perturbation-interval" in res.stdout and "--resume" in res.stdout


# ----------------------------------------------------------------------------- slow: real fairseq + Ray

@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """The tiny corpus and databin (no training): en_XX<->de_DE."""
    from mtkit import testing as tiny

    root = tmp_path_factory.mktemp("tune-data")
    langs = ["en_XX", "de_DE", "fr_XX"]
    tiny.write_raw(root / "raw", langs, n_train=600, n_valid=30)
    spm = tiny.train_spm(root / "raw", root / "spm")
    tiny.encode_and_binarize(root / "raw", spm, root, langs)
    (root / "langs.txt").write_text("\n".join(langs) + "\n")
    args = tiny.tiny_train_args(root / "databin", root / "langs.txt", "en_XX-de_DE,de_DE-en_XX")
    return root, [*args, "--log-interval", "5"]


def _interval(args, save_dir, max_update, hp, trained_with=None, extra=()):
    from mtkit.tune.fairseq_run import control_args

    cmd = [str(BIN / "fairseq-train"), *args, *extra, *hp_args(hp), *lr_change_args(trained_with, hp),
           *control_args(save_dir, max_update)]
    return run_fairseq(cmd, thread_env(1), save_dir / "train.log")


def _inverse_sqrt(lr, n):
    return lr * math.sqrt(WARMUP) / math.sqrt(n)


# Real fairseq intervals under a real local Ray: minutes on 2 quiet cores, three times that when the
# machine is busy; the suite's 900 s per-test limit (meant to catch hangs) is raised for these.
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_changed_lr_and_dropout_apply_after_restore(tiny_data, tmp_path):
    """fairseq restores the optimizer (param groups carry the old lr): inverse_sqrt recomputes the rate
    from --lr anyway; reduce_lr_on_plateau keeps the restored rate unless mtkit passes the override."""
    from mtkit.checkpoint import load as load_checkpoint

    _, args = tiny_data
    save = tmp_path / "inv"
    _interval(args, save, 60, {"lr": 0.005, "dropout": 0.0})
    log = _interval(args, save, 70, {"lr": 0.002, "dropout": 0.25}, trained_with={"lr": 0.005})
    lrs = log.lrs()
    assert lrs and all(n > 60 for n in lrs)
    for n, lr in lrs.items():
        assert lr == pytest.approx(_inverse_sqrt(0.002, n), rel=1e-3)
    cfg = load_checkpoint(save / CHECKPOINT)["cfg"]
    assert cfg["model"].dropout == 0.25  # the model is built from the command line, weights restored
    assert "Loaded checkpoint" in (save / "train.log").read_text()

    plateau = ["--lr-scheduler", "reduce_lr_on_plateau", "--warmup-updates", "0"]
    _interval(args, tmp_path / "plateau", 20, {"lr": 0.005}, extra=plateau)
    for override, expected in ((False, 0.005), (True, 0.002)):
        save = tmp_path / f"plateau-{override}"
        save.mkdir()
        shutil.copyfile(tmp_path / "plateau" / CHECKPOINT, save / CHECKPOINT)
        log = _interval(args, save, 30, {"lr": 0.002}, trained_with={"lr": 0.005} if override else None,
                        extra=plateau)
        lrs = log.lrs()
        assert lrs and all(lr == pytest.approx(expected) for lr in lrs.values()), (override, lrs)


def _tune_env():
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_DEDUP_LOGS="0")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_pbt_exploit_copies_the_donor_checkpoint_and_perturbs_lr(tiny_data, tmp_path):
    from mtkit.io import file_digest
    from mtkit.tune import SchedulerOptions, TuneSpec, run

    _, args = tiny_data
    good, bad = {"lr": 0.005}, {"lr": 1e-6}  # 1e-6 hardly moves the weights: clearly worse
    spec = TuneSpec(train_args=args, out=str(tmp_path / "pbt"), budget=90, interval=30,
                    space={"lr": {"loguniform": [1e-6, 1e-2]}, "dropout": 0.0}, initial=[good, bad],
                    population=2, scheduler=SchedulerOptions(name="pbt", synch=True), num_cpus=2,
                    keep_checkpoints=None, seed=0)
    res = run(spec, progress=False)
    assert not res.errors
    trials = sorted({r["trial"] for r in res.rows})
    first = {r["trial"]: r for r in res.rows if r["updates"] == 30}
    bad_trial = next(t for t in trials if first[t]["hp"]["lr"] == 1e-6)
    assert first[bad_trial]["fitness"] > max(r["fitness"] for r in first.values() if r["trial"] != bad_trial)
    events = [e for e in res.events if e["recipient"] == bad_trial]
    assert events, res.events
    e = events[0]
    donor_row = next(r for r in res.rows if r["trial"] == e["donor"] and r["updates"] == e["update"])
    after_row = next(r for r in res.rows if r["trial"] == bad_trial and r["donor"] == e["donor"]
                     and r["restored_from_update"] == e["update"])
    # weights (and optimizer state): the recipient started from the donor's checkpoint file
    assert after_row["restored_digest"] == file_digest(Path(donor_row["checkpoint"]) / CHECKPOINT)
    # lr: the donor's times 0.8 or 1.2, or resampled inside the bounds
    donor_lr, new_lr = donor_row["hp"]["lr"], after_row["hp"]["lr"]
    assert (new_lr == pytest.approx(donor_lr * 1.2) or new_lr == pytest.approx(donor_lr * 0.8)
            or 1e-6 <= new_lr <= 1e-2)
    assert new_lr != donor_lr
    # and fairseq trained with it (inverse_sqrt of the new lr at the logged update)
    assert after_row["lr"] == pytest.approx(_inverse_sqrt(new_lr, after_row["lr_update"]), rel=1e-3)
    for f in ("trials.csv", "events.csv", "best.json", "fitness.png", "schedules.png", "summary.md"):
        assert (res.out / f).stat().st_size > 0
    assert len((res.out / "events.csv").read_text().splitlines()) == 1 + len(res.events)


def _kill_after_first_result(cmd, out):
    """Start ``mtkit tune``, SIGKILL it (driver, Ray and fairseq: as a crash would) once Ray has saved
    a result; return the rows it had."""
    from mtkit.tune import read_rows
    from mtkit.tune.runner import STATE_SAVE_S

    proc = subprocess.Popen(cmd, env=_tune_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while not read_rows(out / "ray"):
            assert proc.poll() is None, "mtkit tune ended before its first result"
            assert time.monotonic() < deadline, "no result within 10 minutes"
            time.sleep(1)
        time.sleep(2 * STATE_SAVE_S)  # Ray saves the experiment state every STATE_SAVE_S seconds
        assert proc.poll() is None, "mtkit tune finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return read_rows(out / "ray")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_killed_moe_trial_resumes_from_its_expert_files(tiny_data, tmp_path):
    """An MoE model saves NLLB's layout (checkpoint_last-shared.pt + -rank-0.pt): every interval reports
    both files, and a killed experiment resumes from exactly them."""
    from mtkit.moe_checkpoint import load_moe_for_inference
    from mtkit.tune import read_rows

    _, args = tiny_data
    moe = ["--arch", "transformer_moe", "--moe-expert-count", "2", "--moe-freq", "2", "--moe-expert-ffn-dim", "64",
           "--criterion", "moe_label_smoothed_cross_entropy", "--moe-gate-loss-wt", "0.01"]
    out = tmp_path / "moe"
    (tmp_path / "space.json").write_text(json.dumps({"lr": 0.005}))
    cmd = [str(BIN / "python"), "-m", "mtkit.cli", "tune", "--out", str(out), "--scheduler", "random",
           "--population", "1", "--budget", "60", "--interval", "10", "--num-cpus", "1", "--no-progress",
           "--keep-checkpoints", "0", "--space", str(tmp_path / "space.json"), "--", *args, *moe]
    before = _kill_after_first_result(cmd, out)
    assert before and max(r["updates"] for r in before) < 60
    last = max(before, key=lambda r: r["updates"])
    assert [f.name for f in checkpoint_set(Path(last["checkpoint"]))] == [
        "checkpoint_last-shared.pt", "checkpoint_last-rank-0.pt"]
    digest = checkpoint_digest(Path(last["checkpoint"]))
    res = subprocess.run([str(BIN / "python"), "-m", "mtkit.cli", "tune", "--resume", "--out", str(out),
                          "--no-progress"], env=_tune_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_rows(out / "ray")
    resumed = next(r for r in rows if r["restored_from_update"] == last["updates"])
    assert resumed["restored_digest"] == digest  # both files, as reported before the kill
    assert max(r["updates"] for r in rows) == 60
    best = json.loads((out / "best.json").read_text())["checkpoint"]
    assert best.endswith("checkpoint_last-shared.pt")
    state = load_moe_for_inference(best[:-len("-shared.pt")])
    assert state["optimizer_history"][-1]["num_updates"] == 60
    assert any(".experts.1." in k for k in state["model"])
    # the resumed trial started in an empty folder: its log came back from the checkpoint, so the
    # trial's train.log holds the validations of every interval, before and after the kill
    log = (Path(last["checkpoint"]).parent / "fairseq" / "train.log").read_text(encoding="utf-8")
    validated = {int(u) for u in re.findall(r'"valid_num_updates": "?(\d+)', log)}
    assert validated == set(range(10, 61, 10)), sorted(validated)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_killed_experiment_resumes(tiny_data, tmp_path):
    from mtkit.io import file_digest
    from mtkit.tune import read_rows

    _, args = tiny_data
    out = tmp_path / "sweep"
    cmd = [str(BIN / "python"), "-m", "mtkit.cli", "tune", "--out", str(out), "--scheduler", "random",
           "--population", "2", "--budget", "90", "--interval", "30", "--num-cpus", "2", "--no-progress",
           "--space", str(tmp_path / "space.json"), "--", *args]
    (tmp_path / "space.json").write_text(json.dumps({"lr": {"loguniform": [1e-3, 1e-2]}}))
    before = _kill_after_first_result(cmd, out)
    assert before and all(r["updates"] < 90 for r in before)
    digests = {r["trial"]: file_digest(Path(r["checkpoint"]) / CHECKPOINT) for r in before}
    res = subprocess.run([str(BIN / "python"), "-m", "mtkit.cli", "tune", "--resume", "--out", str(out),
                          "--no-progress"], env=_tune_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_rows(out / "ray")
    finals = {r["trial"]: r["updates"] for r in rows}
    assert sorted(finals.values()) == [90, 90]
    last_before = {r["trial"]: r["updates"] for r in before}
    for trial, digest in digests.items():  # continued from its last checkpoint, not from scratch
        resumed = next(r for r in rows if r["trial"] == trial and r["restored_from_update"] == last_before[trial])
        assert resumed["restored_digest"] == digest
    assert json.loads((out / "best.json").read_text())["updates"] == 90
