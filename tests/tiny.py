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
