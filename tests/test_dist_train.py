"""fairseq-train with 2 gloo ranks on the CPU, dense (translation_multi_simple_epoch) and MoE, through
every way of starting ranks (torchrun, fairseq's own spawn, one process per rank) and every way of
starting from a checkpoint: (a) --restore-file with the optimizer kept, (b) --finetune-from-model,
(c) the automatic restore of checkpoint_last.pt.

The reference is one process with --update-freq 2, which sees the same batches per update as two
ranks: a 2-rank run, and a 2-rank resume from its checkpoint, must log the reference's loss at every
update. That checks that rank 1 received the right state (through the broadcast for dense models,
from its own -rank-1.pt for MoE), that the optimizer and data position were restored, and that
torch DDP (c10d) on the CPU averages like legacy_ddp."""
from __future__ import annotations

import shutil

import pytest
from distlaunch import Job, losses, slurm_ready
from tiny import moe_train_args

pytestmark = pytest.mark.slow


def _dense(tiny, save_dir, max_update: int, *extra: str) -> list[str]:  # noqa: ANN001
    return [*tiny.train_args(), "--log-format", "json", "--log-interval", "1", "--disable-validation",
            "--max-update", str(max_update), "--save-dir", str(save_dir), *extra]


def _moe(tiny, save_dir, max_update: int, *extra: str) -> list[str]:  # noqa: ANN001
    return [*moe_train_args(tiny, save_dir, max_update), *extra]


def _assert_same(got: dict[int, float], ref: dict[int, float], updates: range, what: str) -> None:
    assert sorted(got) == list(updates), f"{what}: logged updates {sorted(got)}"
    # losses are logged with 3 decimals; the two all-reduce orders differ in the last float bits
    diffs = {u: abs(got[u] - ref[u]) for u in updates}
    assert max(diffs.values()) <= 2e-3, f"{what} differs from one process with --update-freq 2: {diffs}"


@pytest.fixture(scope="module")
def dense(tiny_model, tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("dense")
    ref = Job("dense reference", "single", _dense(tiny_model, root / "ref", 10, "--update-freq", "2", "--no-save"))
    base = Job("dense base (torchrun)", "torchrun", _dense(tiny_model, root / "base", 6, "--ddp-backend", "legacy_ddp"))
    ref.check(), base.check()
    ck6 = root / "ck6.pt"
    shutil.copy(root / "base" / "checkpoint_last.pt", ck6)
    jobs = {
        "restore": Job("(a) --restore-file, fairseq spawn, legacy_ddp", "spawn",
                       _dense(tiny_model, root / "a", 10, "--restore-file", str(ck6), "--ddp-backend", "legacy_ddp")),
        "auto": Job("(c) checkpoint_last.pt, tcp ranks, c10d", "tcp",
                    _dense(tiny_model, root / "base", 10, "--ddp-backend", "c10d")),
        "finetune": Job("(b) --finetune-from-model, torchrun", "torchrun",
                        _dense(tiny_model, root / "b", 3, "--finetune-from-model", str(ck6))),
    }
    for job in jobs.values():
        job.check()
    return {"tiny": tiny_model, "root": root, "ref": ref, "base": base, "ck6": ck6, **jobs}


def test_dense_two_ranks_under_torchrun_match_one_process(dense) -> None:  # noqa: ANN001
    assert "torchrun: rank 0 of 2" in dense["base"].log
    _assert_same(losses(dense["base"].log), losses(dense["ref"].log), range(1, 7), "2 ranks (torchrun)")


@pytest.mark.parametrize("job", ["restore", "auto"])
def test_dense_resume_on_two_ranks_continues_exactly(dense, job) -> None:  # noqa: ANN001
    log = dense[job].log
    source = dense["ck6"] if job == "restore" else dense["root"] / "base" / "checkpoint_last.pt"
    assert f"Loaded checkpoint {source} (epoch 1 @ 6 updates)" in log, log[-3000:]
    _assert_same(losses(log), losses(dense["ref"].log), range(7, 11), f"resumed {job}")


def test_dense_finetune_on_two_ranks_starts_from_the_checkpoint(dense) -> None:  # noqa: ANN001
    log = dense["finetune"].log
    assert f"loading pretrained model from {dense['ck6']}" in log
    got, ref = losses(log), losses(dense["ref"].log)
    assert sorted(got) == [1, 2, 3]  # optimizer, meters and data reset: update 1 again
    assert got[1] < ref[1] - 0.1  # the first batches, seen by the trained weights of update 6


@pytest.mark.skipif(not slurm_ready(), reason="no SLURM controller here (CI has none)")
def test_dense_srun_two_tasks_match_one_process(dense, tmp_path) -> None:  # noqa: ANN001
    job = Job("srun -n 2", "srun", _dense(dense["tiny"], tmp_path / "s", 3)).check()
    assert "Rank 1, device_id: 1" in job.log
    _assert_same(losses(job.log), losses(dense["ref"].log), range(1, 4), "srun -n 2")


@pytest.fixture(scope="module")
def moe(tiny_model, tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("moe")
    ref = Job("moe reference", "single", _moe(tiny_model, root / "ref", 8, "--update-freq", "2", "--no-save"))
    base = Job("moe base (tcp)", "tcp", _moe(tiny_model, root / "base", 5, "--save-interval-updates", "5"))
    ref.check(), base.check()
    prefix = root / "base" / "checkpoint_1_5"
    jobs = {
        # MoE: --restore-file names the prefix + .pt; fairseq adds each rank's -rank-<r> suffix
        "restore": Job("(a) --restore-file, torchrun", "torchrun",
                       _moe(tiny_model, root / "a", 8, "--restore-file", f"{prefix}.pt")),
        "auto": Job("(c) checkpoint_last, fairseq spawn", "spawn", _moe(tiny_model, root / "base", 8)),
        "finetune": Job("(b) --finetune-from-model, tcp", "tcp",
                        _moe(tiny_model, root / "b", 2, "--finetune-from-model", f"{prefix}-shared.pt")),
    }
    for job in jobs.values():
        job.check()
    # a save interrupted between the files: rank 1's checkpoint_last part is still update 5's
    shutil.copy(f"{prefix}-rank-1.pt", root / "base" / "checkpoint_last-rank-1.pt")
    mixed = Job("mixed parts", "tcp", _moe(tiny_model, root / "base", 10)).wait()
    return {"ref": ref, "base": base, "prefix": prefix, "mixed": mixed, **jobs}


def test_moe_two_ranks_match_one_process(moe) -> None:  # noqa: ANN001
    _assert_same(losses(moe["base"].log), losses(moe["ref"].log), range(1, 6), "MoE 2 ranks")


@pytest.mark.parametrize("job", ["restore", "auto"])
def test_moe_resume_on_two_ranks_continues_exactly(moe, job) -> None:  # noqa: ANN001
    assert "(epoch 1 @ 5 updates)" in moe[job].log, moe[job].log[-3000:]
    _assert_same(losses(moe[job].log), losses(moe["ref"].log), range(6, 9), f"MoE resumed {job}")


def test_moe_finetune_on_two_ranks(moe) -> None:  # noqa: ANN001
    got, ref = losses(moe["finetune"].log), losses(moe["ref"].log)
    assert f"loading pretrained model from {moe['prefix']}-shared.pt" in moe["finetune"].log
    assert sorted(got) == [1, 2] and got[1] < ref[1] - 0.1


def test_moe_parts_from_different_updates_stop_every_rank(moe) -> None:  # noqa: ANN001
    job = moe["mixed"]
    assert job.returncodes[0] != 0 and job.returncodes[1] != 0
    assert "MixedUpdatesError" in job.log
    assert "checkpoint_last-shared.pt holds update 8" in job.log
    assert "checkpoint_last-rank-1.pt holds update 5" in job.log
