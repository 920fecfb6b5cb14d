"""``multilingual_denoising_mtkit``: fairseq's ``multilingual_denoising`` with two options that a
data-scaling study needs.

- ``--no-resampling``: every block is seen once per epoch. fairseq resamples each language of the
  train split with :class:`~fairseq.data.ResamplingDataset`, which draws *with replacement*
  whenever a language's size ratio is >= 1 (always for some language, and for every language at
  ``--multilang-sampling-alpha 1.0``): a third of an epoch's blocks are then repeats and another
  third are never seen, so "tokens seen" overstates the distinct data. With this option the
  languages are concatenated at their natural sizes and shuffled (seed + epoch) instead.
- ``--train-langs``: train (and validate) on the text of these languages only, while every language
  of ``--langs`` keeps its ``[lang]`` token. Models pretrained on different language subsets then
  share one vocabulary and finetune with the same ``--lang-dict`` (e.g. pretraining with or without
  the finetuning languages).
"""
# no `from __future__ import annotations`: fairseq reads the config fields' types at run time
import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from fairseq.data import ConcatDataset, ResamplingDataset, SortDataset, data_utils
from fairseq.tasks import register_task
from fairseq.tasks.multilingual_denoising import (
    MultilingualDenoisingConfig,
    MultilingualDenoisingTask,
)

logger = logging.getLogger(__name__)


@dataclass
class MultilingualDenoisingMtkitConfig(MultilingualDenoisingConfig):
    train_langs: Optional[str] = field(  # noqa: UP045 - fairseq reads the annotation at run time
        default=None,
        metadata={"help": "comma-separated languages whose text is used (default: all of --langs); "
                          "every language of --langs still gets its [lang] token"},
    )
    no_resampling: bool = field(
        default=False,
        metadata={"help": "each block once per epoch: concatenate the languages at their natural sizes "
                          "and shuffle, instead of fairseq's resampling (with replacement for ratios >= 1)"},
    )


def train_languages(langs: str | None, train_langs: str | None) -> str | None:
    """The ``--langs`` value to load data for: ``train_langs``, checked to be a subset of ``langs``."""
    if not train_langs:
        return langs
    if not langs:
        raise ValueError("--train-langs needs --langs (the full language list that fixes the [lang] tokens)")
    known = langs.split(",")
    wanted = [t for t in train_langs.split(",") if t]
    unknown = [t for t in wanted if t not in known]
    if unknown or not wanted:
        raise ValueError(f"--train-langs {train_langs}: {', '.join(unknown) or 'empty'} not in --langs {langs}")
    return ",".join(wanted)


def without_resampling(dataset: SortDataset, seed: int, epoch: int) -> SortDataset:
    """The languages of fairseq's resampled train set, concatenated whole and shuffled."""
    inner = dataset.dataset
    parts = getattr(inner, "datasets", None)
    if not isinstance(inner, ConcatDataset) or not all(isinstance(p, ResamplingDataset) for p in parts):
        raise TypeError("unexpected multilingual_denoising train set (fairseq version?): "
                        f"{type(inner).__name__} of {[type(p).__name__ for p in parts or []]}")
    whole = ConcatDataset([p.dataset for p in parts])
    with data_utils.numpy_seed(seed + epoch):
        shuffle = np.random.permutation(len(whole))
    return SortDataset(whole, sort_order=[shuffle, whole.sizes])


@register_task("multilingual_denoising_mtkit", dataclass=MultilingualDenoisingMtkitConfig)
class MultilingualDenoisingMtkitTask(MultilingualDenoisingTask):
    cfg: MultilingualDenoisingMtkitConfig

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs) -> None:
        all_langs = self.cfg.langs
        # fairseq's loader reads the language folders from cfg.langs; the dictionary (built in
        # setup_task) keeps the [lang] tokens of all of them
        self.cfg.langs = train_languages(all_langs, self.cfg.train_langs)
        try:
            super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
        finally:
            self.cfg.langs = all_langs
        if self.cfg.no_resampling and split == self.cfg.train_subset:
            self.datasets[split] = without_resampling(self.datasets[split], self.cfg.seed, epoch)
            logger.info("no resampling: %d blocks, each once per epoch", len(self.datasets[split]))
