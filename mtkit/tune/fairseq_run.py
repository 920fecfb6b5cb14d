"""One training interval of a trial: ``fairseq-train`` as a subprocess, restored from a checkpoint.

The user's fairseq arguments come first, then the trial's hyperparameters, then the options this
module controls (save folder, ``--max-update``, JSON logging, when to validate and save); fairseq's
argparse keeps the last value, so these win over anything the recipe set.

Learning rate after a restore. fairseq restores the optimizer state (whose param groups hold the
learning rate the checkpoint was trained with) and the lr scheduler state, then calls the scheduler
once. Schedulers that compute the rate from ``--lr`` and the update number (``inverse_sqrt``,
``polynomial_decay``, ``cosine``, ``tri_stage``, ``fixed``) then apply a new ``--lr`` at once;
``reduce_lr_on_plateau`` keeps the restored param-group rate and would ignore it. When the rate a
checkpoint was trained with differs from the trial's (a PBT exploit/explore), :func:`lr_change_args`
adds ``--optimizer-overrides {'lr': NEW}`` (fairseq writes it into the restored param groups), so every
scheduler continues from the new rate; ``--reset-lr-scheduler`` is not used because fairseq refuses it
next to ``--finetune-from-model``. tests/test_tune.py checks the rate fairseq logs after a restore.
``--finetune-from-model`` works as usual: it is read on the first interval only, when the trial's
save folder has no checkpoint_last.pt yet.
Dropout, label smoothing and other model/criterion options need nothing: fairseq builds the model and
criterion from the command line and loads only the weights from the checkpoint.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint_last.pt"
# fairseq-train options that cannot work with interval training (mtkit tune needs a checkpoint at
# the end of every interval and decides when training stops)
INCOMPATIBLE = {
    "--no-save": "every interval ends in a checkpoint",
    "--no-last-checkpoints": "the next interval restores checkpoint_last.pt",
}
_NEVER = 1_000_000_000
_LOG_LINE = re.compile(r"\|\s*(?P<tag>[\w.-]+)\s*\|\s*(?P<json>\{.*\})\s*$")


def check_train_args(train_args: Sequence[str], fitness: str) -> None:
    """Reject fairseq arguments that break interval training, naming the argument and why."""
    for arg in train_args:
        key = arg.split("=", 1)[0]
        if key in INCOMPATIBLE:
            raise InputError(f"fairseq argument {key} cannot be used with mtkit tune: {INCOMPATIBLE[key]}")
        if key == "--disable-validation" and fitness == "valid_nll":
            raise InputError("fairseq argument --disable-validation: the fitness valid_nll comes from "
                             "fairseq's validation; drop it or choose --fitness bleu/chrf++")
    if not train_args or train_args[0].startswith("-"):
        raise InputError("the fairseq arguments must start with the data folder (databin), as for fairseq-train")


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def hp_args(hparams: Mapping[str, Any]) -> list[str]:
    """``{"lr": 0.001, "attention-dropout": 0.1}`` -> ``--lr 0.001 --attention-dropout 0.1``.

    ``True`` passes a bare flag; ``False`` and ``None`` pass nothing.
    """
    out: list[str] = []
    for name, value in hparams.items():
        if value is None or value is False:
            continue
        out.append(f"--{name}")
        if value is not True:
            out.append(format_value(value))
    return out


def lr_change_args(trained_with: Mapping[str, Any] | None, hparams: Mapping[str, Any]) -> list[str]:
    """Options that make fairseq apply the trial's ``lr`` when the checkpoint was trained with another."""
    if not trained_with or "lr" not in hparams or trained_with.get("lr") == hparams["lr"]:
        return []
    return ["--optimizer-overrides", repr({"lr": float(hparams["lr"])})]


def control_args(save_dir: Path, max_update: int) -> list[str]:
    """The options mtkit tune sets for one interval (appended last, so they win)."""
    return [
        "--save-dir", str(save_dir), "--restore-file", CHECKPOINT, "--max-update", str(max_update),
        "--max-epoch", "0", "--stop-time-hours", "0", "--log-format", "json", "--no-progress-bar",
        # validate and save once, when --max-update is reached (fairseq does both on stopping)
        "--save-interval", str(_NEVER), "--save-interval-updates", "0", "--validate-interval", str(_NEVER),
        "--validate-interval-updates", "0", "--no-epoch-checkpoints", "--keep-interval-updates", "-1",
        "--keep-best-checkpoints", "-1",
    ]


def thread_env(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment with every thread pool sized explicitly (Ray's defaults are not ours)."""
    env = dict(os.environ if base is None else base)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class IntervalLog:
    """What one fairseq-train run printed, with the phases timed from its output."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    startup_s: float | None = None  # launch -> "begin training epoch" (imports, data, model, restore)
    train_s: float | None = None  # -> "Stopping training" (the updates themselves)
    total_s: float = 0.0  # launch -> exit (adds validation, checkpoint save, exit)
    tail: list[str] = field(default_factory=list)

    def last(self, tag: str) -> dict[str, Any] | None:
        for t, rec in reversed(self.records):
            if t == tag:
                return rec
        return None

    def valid(self) -> dict[str, float]:
        """The last validation: ``valid_nll`` and ``valid_loss`` (fairseq's base-2 losses)."""
        rec = self.last("valid")
        if rec is None:
            return {}
        out = {}
        for key, name in (("valid_nll_loss", "valid_nll"), ("valid_loss", "valid_loss")):
            if key in rec:
                out[name] = float(rec[key])
        return out

    def lrs(self) -> dict[int, float]:
        """Learning rate logged at each train_inner update."""
        return {int(r["num_updates"]): float(r["lr"]) for t, r in self.records
                if t == "train_inner" and "lr" in r and "num_updates" in r}

    def train_loss(self) -> float | None:
        for t, rec in reversed(self.records):
            if t in ("train_inner", "train") and "loss" in rec:
                return float(rec["loss"])
        return None


class _ChildSetup:
    """Runs in the child between fork and exec (Linux): die with the parent, take back the niceness.

    The child gets SIGTERM when the thread that started it exits (a Ray worker killed by an exploit,
    an ASHA stop or Ctrl-C). Ray starts its workers 15 nice levels above the driver (its
    ``worker_niceness``), so fairseq would otherwise train at nice 19 on a shared machine; the
    child returns to the driver's niceness when it may (raising priority needs CAP_SYS_NICE).
    """

    def __init__(self, niceness: int | None):
        self.niceness = niceness

    def __call__(self) -> None:  # pragma: no cover - runs in the forked child
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if self.niceness is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, self.niceness)


def run_fairseq(cmd: Sequence[str], env: Mapping[str, str], log_path: Path,
                cwd: str | os.PathLike | None = None, niceness: int | None = None) -> IntervalLog:
    """Run ``cmd``, appending its output to ``log_path``; parse JSON log records and time the phases.

    ``niceness``: the scheduling niceness of the child (default: inherited). Raises
    :class:`MtkitError` with the end of the output when fairseq fails.
    """
    out = IntervalLog()
    t0 = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env), cwd=cwd,
            preexec_fn=_ChildSetup(niceness) if sys.platform.startswith("linux") else None,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                now = time.monotonic() - t0
                if out.startup_s is None and "begin training epoch" in line:
                    out.startup_s = now
                elif out.train_s is None and "Stopping training due to num_updates" in line:
                    out.train_s = now - (out.startup_s or 0.0)
                m = _LOG_LINE.search(line)
                if m:
                    with contextlib.suppress(ValueError):
                        out.records.append((m.group("tag"), json.loads(m.group("json"))))
                out.tail.append(line)
                if len(out.tail) > 60:
                    del out.tail[:20]
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    out.total_s = time.monotonic() - t0
    if rc != 0:
        raise MtkitError(f"fairseq-train exited with status {rc} (log: {log_path}):\n{''.join(out.tail[-30:])}")
    return out

