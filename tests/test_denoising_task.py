"""multilingual_denoising_mtkit: --no-resampling sees every block once per epoch (fairseq's
resampling repeats some and skips others), --train-langs loads a subset of languages while the
dictionary keeps every [lang] token."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from fairseq import options, tasks
from fairseq.data import Dictionary, indexed_dataset

from mtkit import plugin

LANGS = ["en_XX", "ro_RO", "de_DE"]
SIZES = {"en_XX": 40, "ro_RO": 25, "de_DE": 30}  # sentences per language


def _mono_databin(root: Path) -> Path:
    """dict.txt + {lang}/{train,valid}.{bin,idx}; each sentence is 8 copies of one word id, and the
    word ids are unique across languages, so a block tells which sentence it came from."""
    d = Dictionary()
    for i in range(sum(SIZES.values())):
        d.add_symbol(f"w{i}")
    root.mkdir(parents=True)
    d.save(str(root / "dict.txt"))
    first = d.nspecial
    for lang in LANGS:
        (root / lang).mkdir()
        for split in ("train", "valid"):
            builder = indexed_dataset.make_builder(str(root / lang / f"{split}.bin"), impl="mmap",
                                                   vocab_size=len(d))
            for _ in range(SIZES[lang]):
                builder.add_item(torch.tensor([first] * 8 + [d.eos()], dtype=torch.int32))
                first += 1
            builder.finalize(str(root / lang / f"{split}.idx"))
            first -= SIZES[lang] if split == "train" else 0  # valid: the same sentences
    return root


def _task(data: Path, *extra: str):
    plugin.register()
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        str(data), "--task", "multilingual_denoising_mtkit", "--langs", ",".join(LANGS), "--add-lang-token",
        "--arch", "mbart_base", "--sample-break-mode", "eos", "--tokens-per-sample", "16", "--mask", "0.0",
        "--multilang-sampling-alpha", "1.0", "--seed", "3", *extra])
    return tasks.setup_task(args)


def _sentence_ids(task, split: str) -> Counter:
    """How often each source sentence (its word id) is in the split's epoch."""
    ds = task.dataset(split)
    mask_free = Counter()
    for i in range(len(ds)):
        item = ds[i]["target"]  # the uncorrupted block: <s> w w ... </s>-or-[lang]
        mask_free[int(item[1])] += 1
    return mask_free


@pytest.fixture(scope="module")
def mono(tmp_path_factory) -> Path:
    return _mono_databin(tmp_path_factory.mktemp("denoise") / "mono")


def test_fairseq_resampling_repeats_blocks_and_no_resampling_does_not(mono):
    total = sum(SIZES.values())
    fairseq_like = _task(mono)
    fairseq_like.load_dataset("train")
    seen = _sentence_ids(fairseq_like, "train")
    # fairseq's own behaviour, the reason for the option: with replacement, some repeated, some never
    assert max(seen.values()) > 1 and len(seen) < total
    ours = _task(mono, "--no-resampling")
    ours.load_dataset("train")
    seen = _sentence_ids(ours, "train")
    assert len(seen) == total and set(seen.values()) == {1}
    # shuffled across languages (not language after language), the same for the same seed and epoch
    def order(task) -> list[int]:  # the epoch's order is the dataset's ordered_indices
        ds = task.dataset("train")
        return [int(ds[i]["target"][1]) for i in ds.ordered_indices()]

    assert order(ours) != sorted(order(ours))
    again = _task(mono, "--no-resampling")
    again.load_dataset("train")
    assert order(again) == order(ours)


def test_train_langs_keep_every_lang_token(mono):
    task = _task(mono, "--no-resampling", "--train-langs", "de_DE")
    full = _task(mono)
    assert len(task.source_dictionary) == len(full.source_dictionary)
    for lang in LANGS:
        assert task.source_dictionary.index(f"[{lang}]") == full.source_dictionary.index(f"[{lang}]")
    task.load_dataset("train")
    assert len(task.dataset("train")) == SIZES["de_DE"]
    ends = {int(task.dataset("train")[i]["target"][-1]) for i in range(SIZES["de_DE"])}
    assert ends == {task.source_dictionary.index("[de_DE]")}
    task.load_dataset("valid")
    assert len(task.dataset("valid")) == SIZES["de_DE"]
    assert task.cfg.langs == ",".join(LANGS)  # restored after loading


def test_train_langs_outside_langs_is_refused(mono):
    task = _task(mono, "--train-langs", "fr_XX")
    with pytest.raises(ValueError, match="fr_XX not in --langs"):
        task.load_dataset("train")
