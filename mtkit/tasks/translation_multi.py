"""``translation_multi_simple_epoch_mtkit``: fairseq's ``translation_multi_simple_epoch`` with two
options; without them it behaves exactly like fairseq's task.

``--homogeneous-batches``: every batch (micro-batch, with ``--update-freq``) holds sentences of
one direction only. fairseq's sampler sorts all sentences of the (virtual) epoch by length and cuts
batches across directions; here the same sorted indices are split by direction first and each
direction is cut into batches on its own (same ``--max-tokens`` / ``--batch-size`` rules). The
epoch sees the same sentences as without the option, each once; the batches are then shuffled as
usual, so consecutive micro-batches come from different directions. Qiu et al. (2025) show that
micro-batch load balancing hurts MoE models most when each micro-batch comes from one domain;
this option builds that condition (and is what some users want for language-specific batches).

``--valid-per-direction``: validation also logs ``nll_loss:SRC-TGT`` (base 2, per target token,
like fairseq's ``nll_loss``) for every direction of ``--lang-pairs``: the criterion's forward pass
is observed through a hook, and each sentence's nll is added to its direction (so the directions
add up to the batch's ``nll_loss``; nothing runs twice, and every rank of an expert-parallel MoE
still runs one forward pass per batch).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from fairseq import metrics
from fairseq.data import BaseWrapperDataset, ConcatDataset, data_utils, iterators
from fairseq.data.multilingual.sampled_multi_dataset import SampledMultiDataset
from fairseq.data.multilingual.sampled_multi_epoch_dataset import SampledMultiEpochDataset
from fairseq.tasks import register_task
from fairseq.tasks.translation_multi_simple_epoch import TranslationMultiSimpleEpochTask

from mtkit.errors import InputError

TASK_NAME = "translation_multi_simple_epoch_mtkit"
#: the key each validation batch carries with the direction of every sentence (index into the
#: task's ``--lang-pairs``; -1: a sentence of no listed direction)
DIRECTION_KEY = "mtkit_direction"


def subdataset_ids(dataset: Any, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Which sub-dataset (direction) each index of a multilingual dataset comes from.

    Handles what fairseq's multilingual data manager builds: ``SampledMultiEpochDataset`` (virtual
    epochs), ``SampledMultiDataset`` (sampled training data, or valid/test with
    ``--lang-tok-replacing-bos-eos``) and ``ConcatDataset`` (valid/test); the same rule as their
    own ``_get_dataset_and_index`` (``bisect_right`` on the cumulative sizes), vectorised.
    """
    idx = np.asarray(indices, dtype=np.int64)
    if isinstance(dataset, DirectionTaggedDataset):
        dataset = dataset.dataset
    if isinstance(dataset, SampledMultiEpochDataset):
        idx = np.asarray(dataset._random_global_indices)[dataset._current_epoch_start_index + idx]
    if isinstance(dataset, SampledMultiDataset):
        return np.searchsorted(np.asarray(dataset.cumulated_sizes), idx, side="right")
    if isinstance(dataset, ConcatDataset):
        return np.searchsorted(np.asarray(dataset.cumulative_sizes), idx, side="right")
    raise InputError(f"cannot tell the direction of the sentences of a {type(dataset).__name__}: "
                     "--homogeneous-batches and --valid-per-direction need the datasets of "
                     "translation_multi_simple_epoch (SampledMultiDataset or ConcatDataset)")


def batches_by_direction(dataset: Any, indices: np.ndarray, max_tokens: int | None,
                         max_sentences: int | None, required_batch_size_multiple: int = 1) -> list[np.ndarray]:
    """``dataset.batch_by_size`` applied to each direction's share of ``indices`` (order kept)."""
    ids = subdataset_ids(dataset, indices)
    indices = np.asarray(indices, dtype=np.int64)
    batches: list[np.ndarray] = []
    for k in np.unique(ids):
        batches.extend(dataset.batch_by_size(indices[ids == k], max_tokens=max_tokens,
                                             max_sentences=max_sentences,
                                             required_batch_size_multiple=required_batch_size_multiple))
    return batches


class DirectionTaggedDataset(BaseWrapperDataset):
    """A multilingual dataset whose batches also carry ``DIRECTION_KEY``: the task-wide direction
    index of each sentence. fairseq's collated ``id`` is the index *inside* a direction's
    dataset, so items get their index in the whole dataset as ``id`` (unique within a valid split)
    and the collater maps those to directions."""

    def __init__(self, dataset: Any, direction_of_subdataset: Sequence[int]):
        super().__init__(dataset)
        self.lookup = torch.tensor(list(direction_of_subdataset), dtype=torch.long)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        if isinstance(item, tuple):  # SampledMultiDataset: (sub-dataset, sample)
            return item[0], {**item[1], "id": index}
        return {**item, "id": index}

    def collater(self, samples: list[Any]) -> dict:
        batch = self.dataset.collater(samples)
        if batch and "id" in batch:
            batch[DIRECTION_KEY] = self.lookup[torch.as_tensor(subdataset_ids(self.dataset, batch["id"].numpy()))]
        return batch


def sentence_nll(model: Any, net_output: Any, target: torch.Tensor, pad: int) -> torch.Tensor:
    """Summed negative log-likelihood (natural log) of each sentence's target tokens, (B,): the
    criterion's ``nll_loss`` split by sentence."""
    lprobs = model.get_normalized_probs(net_output, log_probs=True)
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return nll.masked_fill(target.eq(pad), 0.0).sum(dim=1)


def unwrap(model: Any) -> Any:
    """The fairseq model inside data-parallel wrappers."""
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return model


@register_task(TASK_NAME)
class TranslationMultiMtkitTask(TranslationMultiSimpleEpochTask):
    """``translation_multi_simple_epoch`` + ``--homogeneous-batches`` + ``--valid-per-direction``."""

    @staticmethod
    def add_args(parser: Any) -> None:
        TranslationMultiSimpleEpochTask.add_args(parser)
        parser.add_argument("--homogeneous-batches", action="store_true",
                            help="every batch (micro-batch) holds sentences of one direction only; the "
                                 "epoch still sees every sentence once, batches are shuffled as usual")
        parser.add_argument("--valid-per-direction", action="store_true",
                            help="validation also logs nll_loss:SRC-TGT for every direction of --lang-pairs")

    @property
    def directions(self) -> list[str]:
        """The directions per-direction validation reports, in ``--lang-pairs`` order."""
        return [str(p) for p in self.lang_pairs]

    # ---- batching ---------------------------------------------------------------------------
    def _split_of(self, dataset: Any) -> str | None:
        return next((s for s, d in self.datasets.items() if d is dataset), None)

    def _subdataset_keys(self, dataset: Any, split: str | None) -> list[str]:
        """``main:SRC-TGT`` of each sub-dataset, in the dataset's order."""
        keys = getattr(dataset, "keys", None)
        if keys is not None:
            return [str(k) for k in keys]
        if split is None:
            raise InputError("--valid-per-direction: the dataset to validate is not one this task loaded")
        return [p["key"] for p in self.data_manager.get_split_data_param_list(split, epoch=1)]

    def _with_directions(self, dataset: Any) -> DirectionTaggedDataset:
        keys = self._subdataset_keys(dataset, self._split_of(dataset))
        n_sub = len(dataset.datasets)
        if len(keys) != n_sub:
            raise InputError(f"--valid-per-direction: {n_sub} datasets but {len(keys)} directions "
                             f"({', '.join(keys)}); is some direction missing from the split?")
        position = {d: i for i, d in enumerate(self.directions)}
        return DirectionTaggedDataset(dataset, [position.get(k.split(":", 1)[-1], -1) for k in keys])

    def _homogeneous_sampler(self, max_positions: Any, ignore_invalid_inputs: bool, max_tokens: int | None,
                             max_sentences: int | None, required_batch_size_multiple: int,
                             seed: int) -> Callable[[Any, int], list[np.ndarray]]:
        """fairseq's per-epoch batch sampler (set the epoch, order by size, filter) with the
        batches cut per direction."""

        def construct(dataset: Any, epoch: int) -> list[np.ndarray]:
            if epoch is not None:
                dataset.set_epoch(epoch)
            with data_utils.numpy_seed(seed):
                indices = dataset.ordered_indices()
            if max_positions is not None:
                indices = self.filter_indices_by_size(indices, dataset, max_positions, ignore_invalid_inputs)
            return batches_by_direction(dataset, indices, max_tokens, max_sentences, required_batch_size_multiple)

        return construct

    def get_batch_iterator(self, dataset: Any, max_tokens: int | None = None, max_sentences: int | None = None,
                           max_positions: Any = None, ignore_invalid_inputs: bool = False,
                           required_batch_size_multiple: int = 1, seed: int = 1, num_shards: int = 1,
                           shard_id: int = 0, num_workers: int = 0, epoch: int = 1, data_buffer_size: int = 0,
                           disable_iterator_cache: bool = False, skip_remainder_batch: bool = False,
                           grouped_shuffling: bool = False,
                           update_epoch_batch_itr: bool = False) -> iterators.EpochBatchIterator:
        homogeneous = getattr(self.args, "homogeneous_batches", False)
        is_train = dataset is self.datasets.get(getattr(self.args, "train_subset", "train"))
        per_direction = getattr(self.args, "valid_per_direction", False) and not is_train
        if not homogeneous and not per_direction:
            return super().get_batch_iterator(
                dataset, max_tokens=max_tokens, max_sentences=max_sentences, max_positions=max_positions,
                ignore_invalid_inputs=ignore_invalid_inputs,
                required_batch_size_multiple=required_batch_size_multiple, seed=seed, num_shards=num_shards,
                shard_id=shard_id, num_workers=num_workers, epoch=epoch, data_buffer_size=data_buffer_size,
                disable_iterator_cache=disable_iterator_cache, skip_remainder_batch=skip_remainder_batch,
                grouped_shuffling=grouped_shuffling, update_epoch_batch_itr=update_epoch_batch_itr)
        make = self._homogeneous_sampler if homogeneous else self.create_batch_sampler_func
        sampler = make(max_positions, ignore_invalid_inputs, max_tokens, max_sentences,
                       required_batch_size_multiple, seed)
        if per_direction:
            dataset = self._with_directions(dataset)
        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=dataset.collater,
            batch_sampler=sampler, seed=seed, num_shards=num_shards, shard_id=shard_id,
            num_workers=num_workers, epoch=epoch, buffer_size=data_buffer_size,
            skip_remainder_batch=skip_remainder_batch)

    # ---- per-direction validation -------------------------------------------------------------
    def valid_step(self, sample: dict, model: Any, criterion: Any) -> tuple[Any, Any, dict]:
        directions = sample.get(DIRECTION_KEY) if getattr(self.args, "valid_per_direction", False) else None
        if directions is None:
            return super().valid_step(sample, model, criterion)
        # the criterion's own forward pass, seen through a hook: one forward per batch as without the
        # option (ranks of an expert-parallel MoE must all run the same number of forward passes)
        seen: list[Any] = []
        handle = model.register_forward_hook(lambda module, inputs, output: seen.append(output))
        try:
            loss, sample_size, log = super().valid_step(sample, model, criterion)
        finally:
            handle.remove()
        if len(seen) != 1:
            raise RuntimeError(f"--valid-per-direction: the criterion ran the model {len(seen)} times on one batch")
        pad = self.target_dictionary.pad()
        with torch.no_grad():
            nll = sentence_nll(unwrap(model), seen[0], sample["target"], pad).double()
            ntok = sample["target"].ne(pad).sum(dim=1)
        log = dict(log)
        for i, name in enumerate(self.directions):  # every direction on every batch: ranks sum by key
            rows = directions.to(nll.device) == i
            log[f"dir_nll:{name}"] = float(nll[rows].sum())
            log[f"dir_ntokens:{name}"] = int(ntok[rows].sum())
        return loss, sample_size, log

    def reduce_metrics(self, logging_outputs: Sequence[dict], criterion: Any) -> None:
        super().reduce_metrics(logging_outputs, criterion)
        names = sorted({k.split(":", 1)[1] for log in logging_outputs for k in log if k.startswith("dir_ntokens:")})
        for name in names:
            ntok = sum(float(log.get(f"dir_ntokens:{name}", 0)) for log in logging_outputs)
            if ntok > 0:
                nll = sum(float(log.get(f"dir_nll:{name}", 0)) for log in logging_outputs)
                metrics.log_scalar(f"nll_loss:{name}", nll / ntok / math.log(2), ntok, round=3)
