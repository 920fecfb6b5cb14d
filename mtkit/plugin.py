"""Registration of mtkit with fairseq (models, tasks, criteria) and the safe checkpoint loader."""
from __future__ import annotations

import importlib
import logging
import os

logger = logging.getLogger(__name__)

#: Sub-packages whose import registers things with fairseq's registries. Each package's
#: ``__init__`` imports its own modules.
PLUGIN_PACKAGES = ("mtkit.models", "mtkit.criterions", "mtkit.tasks")

_registered = False


def user_dir() -> str:
    """The directory to pass to fairseq as ``--user-dir`` (the ``mtkit`` package itself)."""
    return os.path.dirname(os.path.abspath(__file__))


def register() -> None:
    """Install the safe loader into fairseq and import mtkit's fairseq registrations (idempotent)."""
    global _registered
    if _registered:
        return
    _registered = True
    from mtkit import checkpoint

    checkpoint.install_into_fairseq()
    for name in PLUGIN_PACKAGES:
        importlib.import_module(name)


def add_arguments(parser) -> None:  # `mtkit user-dir` takes no options
    parser.description = (
        "Print the directory to pass to fairseq as --user-dir. fairseq then imports mtkit, which "
        "registers mtkit's models, tasks and criteria and installs the safe checkpoint loader."
    )


def run(args) -> int:
    print(user_dir())
    return 0
