"""translation_multi_simple_epoch_mtkit: --homogeneous-batches (each batch one direction, every
sentence of the epoch seen once) and --valid-per-direction (per-direction nll that adds up to the
whole batch's), on a real databin with fairseq's own datasets, iterators and criterion."""
from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from multi_data import PAIRS, TASK, build_databin, make_task

from mtkit.plugin import user_dir

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def databin(tmp_path_factory) -> tuple[Path, Path]:
    return build_databin(tmp_path_factory.mktemp("multi"))


def epoch_batches(task, split: str, num_shards: int = 1, epoch: int = 1) -> list[list[dict]]:  # noqa: ANN001
    """The collated batches of one epoch, per shard (empty fill-in batches dropped)."""
    ds = task.dataset(split)
    out = []
    for shard in range(num_shards):
        itr = task.get_batch_iterator(ds, max_tokens=200, max_positions=(64, 64), seed=3,
                                      num_shards=num_shards, shard_id=shard, epoch=epoch)
        out.append([b for b in itr.next_epoch_itr(shuffle=split == "train") if b])
    return out


def lang_of_rows(task, tokens: torch.Tensor) -> list[str]:  # noqa: ANN001
    """The language token each row holds (independent of the dataset's bookkeeping)."""
    d = task.source_dictionary
    ids = {d.index(f"__{lang}__"): lang for lang in task.langs}
    rows = []
    for row in tokens.tolist():
        found = {ids[t] for t in row if t in ids}
        assert len(found) == 1, f"row with language tokens {found}"
        rows.append(found.pop())
    return rows


def row_directions(task, batch: dict) -> list[str]:  # noqa: ANN001
    src = lang_of_rows(task, batch["net_input"]["src_tokens"])
    tgt = lang_of_rows(task, batch["net_input"]["prev_output_tokens"])
    return [f"{s}-{t}" for s, t in zip(src, tgt)]


def directions(task, batch: dict) -> set[str]:  # noqa: ANN001
    return set(row_directions(task, batch))


def sentences(task, batches: list[dict]) -> collections.Counter:  # noqa: ANN001
    """(direction, index inside the direction's data) of every row: what the epoch saw."""
    return collections.Counter(row for b in batches for row in zip(row_directions(task, b), b["id"].tolist()))


@pytest.mark.parametrize("virtual_epoch", [False, True])
def test_each_batch_is_one_direction_and_the_epoch_sees_every_sentence_once(databin, virtual_epoch) -> None:  # noqa: ANN001
    extra = ["--virtual-data-size", "2000", "--virtual-epoch-size", "700"] if virtual_epoch else []
    _, plain = make_task(*databin, *extra)
    _, homo = make_task(*databin, *extra, "--homogeneous-batches")
    for task in (plain, homo):
        task.load_dataset("train", epoch=2)
    mixed = homo_batches = None
    for num_shards in (1, 2):
        mixed = [b for shard in epoch_batches(plain, "train", num_shards, epoch=2) for b in shard]
        homo_batches = [b for shard in epoch_batches(homo, "train", num_shards, epoch=2) for b in shard]
        for b in homo_batches:
            assert len(directions(homo, b)) == 1
        # the same sentences as fairseq's sampler (temperature sampling draws with replacement, so
        # a sentence may be drawn twice: compare the multisets), as many as the epoch holds
        seen = sentences(homo, homo_batches)
        assert seen == sentences(plain, mixed)
        assert sum(seen.values()) == len(homo.dataset("train"))
    # without the option fairseq mixes directions in a batch (so the check above can fail)
    assert any(len(directions(plain, b)) > 1 for b in mixed)
    # the batches are shuffled: directions interleave instead of coming one after the other
    order = [directions(homo, b).pop() for b in homo_batches]
    assert sum(a != b for a, b in zip(order, order[1:])) > 4 * len(set(order))
    # every direction is there, in proportion to the sampled sentences
    counts = collections.Counter(d for b in homo_batches for d in [directions(homo, b).pop()] * len(b["id"]))
    assert set(counts) == set(PAIRS.split(","))


def test_valid_batches_are_homogeneous_too(databin) -> None:  # noqa: ANN001
    _, task = make_task(*databin, "--homogeneous-batches")
    task.load_dataset("valid")
    (batches,) = epoch_batches(task, "valid")
    assert all(len(directions(task, b)) == 1 for b in batches)
    seen = sentences(task, batches)
    assert max(seen.values()) == 1 and len(seen) == len(task.dataset("valid")) == 4 * 30


@pytest.mark.parametrize("split,virtual_epoch", [("train", False), ("train", True), ("valid", False)])
def test_subdataset_ids_match_fairseqs_own_lookup(databin, split, virtual_epoch) -> None:  # noqa: ANN001
    from mtkit.tasks.translation_multi import subdataset_ids

    extra = ["--virtual-data-size", "2000", "--virtual-epoch-size", "700"] if virtual_epoch else []
    _, task = make_task(*databin, *extra)
    task.load_dataset(split, epoch=2)
    ds = task.dataset(split)
    ds.set_epoch(2)
    lookup = getattr(ds, "_get_dataset_and_index", None) or ds._get_dataset_and_sample_index
    idx = np.arange(len(ds))
    assert subdataset_ids(ds, idx).tolist() == [lookup(int(i))[0] for i in idx]


def test_unknown_dataset_is_refused() -> None:
    from mtkit.errors import InputError
    from mtkit.tasks.translation_multi import subdataset_ids

    with pytest.raises(InputError, match="cannot tell the direction"):
        subdataset_ids(object(), [0, 1])


def test_valid_per_direction_adds_up_to_the_whole_batch(databin) -> None:  # noqa: ANN001
    import math

    from fairseq import metrics

    args, task = make_task(*databin, "--valid-per-direction", "--criterion", "label_smoothed_cross_entropy",
                           "--label-smoothing", "0.1", "--encoder-layers", "1", "--decoder-layers", "1",
                           "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
                           "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
                           "--share-all-embeddings")
    task.load_dataset("valid")
    torch.manual_seed(0)
    model, criterion = task.build_model(args), task.build_criterion(args)
    (batches,) = epoch_batches(task, "valid")
    mixed = [b for b in batches if len(directions(task, b)) > 1]
    assert mixed, "fairseq's valid batches should mix directions"
    logs = []
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    for b in batches:
        calls.clear()
        _, size, log = task.valid_step(b, model, criterion)
        assert len(calls) == 1  # one forward pass per batch, as without the option
        plain = super(type(task), task).valid_step(b, model, criterion)[2]  # fairseq's task, whole batch
        assert float(log["nll_loss"]) == pytest.approx(float(plain["nll_loss"]), rel=1e-5)
        assert log["ntokens"] == plain["ntokens"] and size == plain["sample_size"]
        # every direction's key on every batch; the parts add up to the whole batch
        assert sorted(k for k in log if k.startswith("dir_ntokens:")) == sorted(f"dir_ntokens:{p}" for p in PAIRS.split(","))
        assert sum(log[f"dir_nll:{p}"] for p in PAIRS.split(",")) == pytest.approx(float(log["nll_loss"]), rel=1e-5)
        assert sum(log[f"dir_ntokens:{p}"] for p in PAIRS.split(",")) == log["ntokens"]
        logs.append(log)
    # one direction alone: the criterion on only that direction's sentences
    b = mixed[0]
    d = sorted(directions(task, b))[0]
    rows = torch.tensor([f"{s}-{t}" == d for s, t in zip(lang_of_rows(task, b["net_input"]["src_tokens"]),
                                                          lang_of_rows(task, b["net_input"]["prev_output_tokens"]))])
    part = {"net_input": {k: v[rows] for k, v in b["net_input"].items()}, "target": b["target"][rows],
            "ntokens": int(b["target"][rows].ne(task.target_dictionary.pad()).sum()), "nsentences": int(rows.sum())}
    alone = criterion(model.eval(), part)[2]
    assert float(task.valid_step(b, model, criterion)[2][f"dir_nll:{d}"]) == pytest.approx(float(alone["nll_loss"]), rel=1e-5)
    with metrics.aggregate() as agg:
        task.reduce_metrics(logs, criterion)
        values = agg.get_smoothed_values()
    for p in PAIRS.split(","):
        nll = sum(log[f"dir_nll:{p}"] for log in logs) / sum(log[f"dir_ntokens:{p}"] for log in logs) / math.log(2)
        assert values[f"nll_loss:{p}"] == pytest.approx(nll, abs=1e-3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("homogeneous", [True, False])
def test_fairseq_train_two_gloo_ranks_moe(databin, tmp_path, homogeneous) -> None:  # noqa: ANN001
    """The options through fairseq-train: 2 gloo ranks (expert parallel: every forward pass is
    collective), gradient accumulation, MoE with global balance; per-direction valid losses logged
    and consistent with the overall valid nll, with homogeneous and with mixed batches."""
    data, langs = databin
    port = _free_port()
    common = [str(BIN / "fairseq-train"), str(data), "--user-dir", user_dir(), "--cpu", "--seed", "1",
              "--task", TASK, "--lang-dict", str(langs), "--lang-pairs", PAIRS, "--encoder-langtok", "src",
              "--decoder-langtok", *(["--homogeneous-batches"] if homogeneous else []), "--valid-per-direction",
              "--arch", "transformer_moe_tiny", "--moe-balance", "global", "--moe-train-capacity-token-fraction", "1.0",
              "--criterion", "moe_label_smoothed_cross_entropy", "--moe-log-lang-usage",
              "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "150", "--update-freq", "2",
              "--max-update", "6", "--num-workers", "0", "--log-format", "json", "--log-interval", "1",
              "--no-progress-bar", "--ddp-backend", "legacy_ddp", "--save-dir", str(tmp_path / "ck"),
              "--distributed-world-size", "2", "--distributed-no-spawn", "--distributed-backend", "gloo",
              "--distributed-init-method", f"tcp://127.0.0.1:{port}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([*common, "--distributed-rank", str(r)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env) for r in (0, 1)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    valid = [json.loads(line.split("| valid |", 1)[1]) for line in outs[0].splitlines() if "| valid |" in line]
    assert valid, outs[0][-3000:]
    last = valid[-1]
    per_dir = {p: float(last[f"valid_nll_loss:{p}"]) for p in PAIRS.split(",")}
    assert all(0 < v < 20 for v in per_dir.values())
    assert min(per_dir.values()) - 0.01 <= float(last["valid_nll_loss"]) <= max(per_dir.values()) + 0.01
