"""Test-only helpers around the tiny model of :mod:`mtkit.testing`: a model folder whose checkpoint
carries a pickle payload (the safe loader must refuse it)."""
from __future__ import annotations

import shutil
from pathlib import Path

from mtkit.testing import TinyModel


class _OpensAFile:
    """A pickle payload: unpickling it with full trust creates ``marker`` (the file must never appear)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def malicious_model_folder(model: TinyModel, folder: Path, marker: Path) -> Path:
    """A complete model folder (dict, SPM, language list of ``model``) whose checkpoint carries a payload."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("dict.txt", "spm.model", "langs.txt"):
        shutil.copy(model.root / name, folder / name)
    torch.save({"model": {}, "cfg": {}, "x": _OpensAFile(marker)}, folder / "checkpoint.pt")
    return folder


def moe_train_args(tiny: TinyModel, save_dir: Path, max_update: int = 5) -> list[str]:
    """Deterministic tiny MoE run: no dropout, second expert always kept, no capacity drops."""
    from mtkit.plugin import user_dir

    return [
        str(tiny.databin), "--user-dir", user_dir(), "--cpu", "--seed", "1",
        "--task", "translation_multi_simple_epoch", "--lang-dict", str(tiny.langs_file),
        "--lang-pairs", tiny.lang_pairs, "--encoder-langtok", "src", "--decoder-langtok",
        "--arch", "transformer_moe_tiny", "--encoder-normalize-before", "--decoder-normalize-before",
        "--share-all-embeddings", "--dropout", "0", "--moe-second-expert-policy", "all",
        "--moe-train-capacity-token-fraction", "1.0",
        "--criterion", "moe_label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--moe-log-lang-usage",
        "--optimizer", "adam", "--lr", "0.005", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
        "--max-tokens", "1000", "--num-workers", "0", "--log-format", "json", "--log-interval", "1",
        "--no-progress-bar", "--max-update", str(max_update), "--ddp-backend", "legacy_ddp",
        "--no-epoch-checkpoints", "--disable-validation", "--save-dir", str(save_dir),
    ]
