"""mtkit as a fairseq plugin: :func:`register` installs mtkit's patches to fairseq (see
:mod:`mtkit.patches`) and imports the modules that register mtkit's models, criteria and tasks.

fairseq calls it through ``--user-dir "$(mtkit user-dir)"`` (fairseq imports the ``mtkit`` package,
whose ``__init__`` calls :func:`register`); code that uses fairseq in-process calls it itself.
"""
from __future__ import annotations

import importlib
import os

#: Sub-packages whose import registers things with fairseq's registries.
PLUGIN_PACKAGES = ("mtkit.models", "mtkit.criterions", "mtkit.tasks")

_registered = False


def user_dir() -> str:
    """The directory to pass to fairseq as ``--user-dir`` (the ``mtkit`` package itself)."""
    return os.path.dirname(os.path.abspath(__file__))


def register() -> None:
    """Install mtkit's fairseq patches and registrations (idempotent; retried if a call failed)."""
    global _registered
    if _registered:
        return
    from mtkit import patches

    patches.install_all()
    for name in PLUGIN_PACKAGES:
        importlib.import_module(name)
    _registered = True
