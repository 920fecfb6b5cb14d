"""MoE checkpoints in NLLB's layout: every part records its update, a set mixed by an interrupted save
is refused with the update of each part, and MTKIT_TRUST_CHECKPOINT's scope over the parts."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from mtkit import checkpoint
from mtkit.moe_checkpoint import MixedUpdatesError, load_merged, save_split, trusted_set

KEYS = ("encoder.layers.0.moe_layer.gate.wg.weight", "encoder.layers.0.moe_layer.experts.{}.fc1.weight")


class Plain:
    """Not something a checkpoint holds: loads only when trusted."""

    def __init__(self, n: int):
        self.n = n


def _state(updates: int, extra: object = None) -> dict:
    """A 2-rank training state with 2 experts (one per rank), weights = the update count."""
    model = {KEYS[0]: torch.full((2, 2), float(updates))}
    return {"model": model, "cfg": {}, "extra_state": {"x": extra}, "optimizer_history": [{"num_updates": updates}]}


def _write(prefix: Path, updates: int, extra: object = None) -> None:
    for rank in (0, 1):
        state = _state(updates, extra)
        state["model"][KEYS[1].format(0)] = torch.full((2,), float(updates * 10 + rank))  # local expert 0
        save_split(state, str(prefix), world_size=2, rank=rank, num_experts=2)


def test_every_part_records_its_update(tmp_path):
    _write(tmp_path / "checkpoint_1_20", 20)
    for part in ("shared", "rank-0", "rank-1"):
        assert checkpoint.load(tmp_path / f"checkpoint_1_20-{part}.pt")["moe"]["num_updates"] == 20
    merged = load_merged(str(tmp_path / "checkpoint_1_20"))
    assert merged["model"][KEYS[1].format(1)].tolist() == [201.0, 201.0]  # global expert 1 from rank 1


def test_parts_from_different_updates_are_refused_with_each_update(tmp_path):
    _write(tmp_path / "checkpoint_1_10", 10)
    _write(tmp_path / "checkpoint_last", 20)
    # killed after rank 0 wrote update 20's files but before rank 1 replaced its update-10 copy
    shutil.copy(tmp_path / "checkpoint_1_10-rank-1.pt", tmp_path / "checkpoint_last-rank-1.pt")
    for world, rank in ((1, 0), (2, 0), (2, 1)):  # every reader layout refuses, not only rank 1
        with pytest.raises(MixedUpdatesError) as e:
            load_merged(str(tmp_path / "checkpoint_last-shared.pt"), world_size=world, rank=rank)
        msg = str(e.value)
        assert "checkpoint_last-shared.pt holds update 20" in msg
        assert "checkpoint_last-rank-0.pt holds update 20" in msg
        assert "checkpoint_last-rank-1.pt holds update 10" in msg
    (tmp_path / "checkpoint_last-rank-1.pt").unlink()
    with pytest.raises(MixedUpdatesError, match=r"checkpoint_last-rank-1.pt holds nothing \(missing\)"):
        load_merged(str(tmp_path / "checkpoint_last"))


def test_trusting_the_shared_file_trusts_the_whole_set(tmp_path, monkeypatch, caplog):
    prefix = tmp_path / "ck"
    _write(prefix, 5, extra=Plain(7))
    shared, rank1 = f"{prefix}-shared.pt", f"{prefix}-rank-1.pt"
    with pytest.raises(checkpoint.UnsafeCheckpointError):
        load_merged(str(prefix))
    # naming one rank file trusts that file only: the set stays refused
    monkeypatch.setenv(checkpoint.TRUST_ENV, rank1)
    assert not trusted_set(str(prefix))
    with pytest.raises(checkpoint.UnsafeCheckpointError, match="ck-shared.pt"):
        load_merged(str(prefix))
    # naming -shared.pt trusts it and every -rank-<r>.pt of the set, and the warning says so
    monkeypatch.setenv(checkpoint.TRUST_ENV, shared)
    with caplog.at_level(logging.WARNING, logger="mtkit.moe_checkpoint"):
        assert trusted_set(str(prefix))
    assert "-shared.pt and its 2 -rank-<r>.pt files are loaded with full unpickling" in caplog.text
    with pytest.warns(UserWarning, match="trusted checkpoint"):
        state = load_merged(str(prefix), trust=True)
    assert state["extra_state"]["x"].n == 7
