"""Shared fixtures. The tiny model is trained once per test session and shared by every test."""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest

from mtkit.testing import TinyModel, build_tiny_model

sys.path.insert(0, str(Path(__file__).parent))  # the tests' own helpers (tiny.py)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> TinyModel:
    """A real multilingual fairseq model (en_XX<->de_DE, en_XX<->fr_XX) trained in this run.

    Set MTKIT_TEST_CACHE to a folder to keep it between runs while developing.
    """
    cache = os.environ.get("MTKIT_TEST_CACHE")
    if cache:
        root = Path(cache) / "tiny"
    elif os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N: one model for all workers (the run's base folder)
        root = tmp_path_factory.getbasetemp().parent / "tiny"
    else:
        root = tmp_path_factory.mktemp("tiny")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / "tiny.lock", "w") as lock:  # one process builds, the others wait for it
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_tiny_model(root)
