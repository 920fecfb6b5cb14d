"""Crash safety of fairseq-train with mtkit: a run killed with SIGKILL after a save and started again
with the same command resumes from checkpoint_last.pt and logs the loss of an uninterrupted run at
every later update; a kill in the middle of writing checkpoint_last.pt never leaves a file that
fails to load (fairseq's own copy did)."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch
from distlaunch import BIN, env, losses

from mtkit import checkpoint

pytestmark = pytest.mark.slow


def _args(tiny, save_dir, *extra: str) -> list[str]:  # noqa: ANN001
    return [*tiny.train_args(), "--log-format", "json", "--log-interval", "1", "--disable-validation",
            "--save-dir", str(save_dir), *extra]


def _updates_in(path) -> int:  # noqa: ANN001
    return checkpoint.load(path)["optimizer_history"][-1]["num_updates"]


def test_kill_after_a_save_then_rerun_continues_like_an_uninterrupted_run(tiny_model, tmp_path) -> None:
    args = ["--max-update", "24", "--save-interval-updates", "8"]
    train = str(BIN / "fairseq-train")
    whole = subprocess.Popen([train, *_args(tiny_model, tmp_path / "whole", *args)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env())
    killed_cmd = [train, *_args(tiny_model, tmp_path / "killed", *args)]
    first = subprocess.Popen(killed_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
    seen = []
    for line in first.stdout:  # SIGKILL as soon as the first save is reported
        seen.append(line)
        if "Saved checkpoint" in line:
            first.send_signal(signal.SIGKILL)
            break
    first.wait()
    assert first.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    saved = _updates_in(tmp_path / "killed" / "checkpoint_last.pt")
    assert saved in (8, 16), saved  # killed before the end of training
    again = subprocess.run(killed_cmd, capture_output=True, text=True, env=env())
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    out, _ = whole.communicate()
    assert whole.returncode == 0, out[-3000:]
    log = again.stdout + again.stderr
    assert f"Loaded checkpoint {tmp_path / 'killed' / 'checkpoint_last.pt'} (epoch 1 @ {saved} updates)" in log
    resumed, uninterrupted = losses(log), losses(out)
    print(f"killed after the save at update {saved}; update: uninterrupted loss / resumed loss")
    print(", ".join(f"{u}: {uninterrupted[u]:.3f}/{resumed.get(u, float('nan')):.3f}" for u in sorted(uninterrupted)))
    assert sorted(resumed) == list(range(saved + 1, 25))
    assert {u: resumed[u] for u in resumed} == {u: uninterrupted[u] for u in resumed}  # as logged: 3 decimals
    end_a = checkpoint.load(tmp_path / "whole" / "checkpoint_last.pt")["model"]
    end_b = checkpoint.load(tmp_path / "killed" / "checkpoint_last.pt")["model"]
    diff = max((end_a[k] - end_b[k]).abs().max().item() for k in end_a)
    print(f"largest difference between the final weights: {diff:g}")
    assert diff <= 1e-6


KILL_DURING_COPY = r"""
import os, shutil, signal, sys
copies = []
real = shutil.copyfile
def copyfile(src, dst, *a, **k):  # the 2nd copy into checkpoint_last.pt: write half, then SIGKILL
    if "checkpoint_last" in os.path.basename(dst):
        copies.append(dst)
        if len(copies) == 2:
            data = open(src, "rb").read()
            with open(dst, "wb") as f:
                f.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
shutil.copyfile = copyfile
from mtkit import plugin
plugin.register()
if sys.argv[1] == "fairseq-copy":  # the control: fairseq's own (non-atomic) copy
    from fairseq import checkpoint_utils
    checkpoint_utils.PathManager = checkpoint_utils.PathManager.__wrapped__
from fairseq_cli.train import cli_main
sys.argv = ["fairseq-train", *sys.argv[2:]]
cli_main()
"""


@pytest.mark.parametrize("copy", ["mtkit", "fairseq-copy"])
def test_kill_while_writing_checkpoint_last(tiny_model, tmp_path, copy) -> None:
    save = tmp_path / "ck"
    cmd = [sys.executable, "-c", KILL_DURING_COPY, copy,
           *_args(tiny_model, save, "--max-update", "8", "--save-interval-updates", "4")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env())
    assert res.returncode == -signal.SIGKILL, res.stdout[-2000:] + res.stderr[-3000:]
    assert _updates_in(save / "checkpoint_1_8.pt") == 8  # written before the copy, atomically by fairseq
    last = save / "checkpoint_last.pt"
    if copy == "mtkit":  # the previous checkpoint_last.pt is intact
        assert _updates_in(last) == 4
    else:  # fairseq's shutil.copyfile left half a file
        assert last.stat().st_size < (save / "checkpoint_1_8.pt").stat().st_size
        with pytest.raises(RuntimeError):
            torch.load(last, weights_only=False)
