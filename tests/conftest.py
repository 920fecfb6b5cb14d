"""Shared fixtures. The tiny model is trained once per test session and shared by every test."""
from __future__ import annotations

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
    root = Path(cache) / "tiny" if cache else tmp_path_factory.mktemp("tiny")
    return build_tiny_model(root)
