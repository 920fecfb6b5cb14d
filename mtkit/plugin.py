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
    _untie_bf16_from_tpu()
    for name in PLUGIN_PACKAGES:
        importlib.import_module(name)


def _xla_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_xla") is not None


def _untie_bf16_from_tpu() -> None:
    """Let ``--bf16`` / ``--memory-efficient-bf16`` train on GPUs (and CPUs) with fairseq 0.12.

    fairseq 0.12's argument parser turns on ``--tpu`` whenever bf16 is asked for, and the trainer then
    wants torch_xla (``get_tpu_device``) and crashes on any machine without it, although its bf16 code
    paths for CUDA are there. mtkit wraps the namespace -> config conversion that every fairseq command
    runs after parsing (the plugin is imported while parsing, before that conversion) and turns the
    implied ``tpu`` off again when torch_xla is not installed. With torch_xla installed nothing changes.
    """
    import sys

    from fairseq.dataclass import utils as dc_utils

    orig = dc_utils.convert_namespace_to_omegaconf
    if getattr(orig, "_mtkit_bf16", False):
        return

    def convert_namespace_to_omegaconf(args):  # noqa: ANN001, ANN202 - fairseq's signature
        if getattr(args, "bf16", False) and getattr(args, "tpu", False) and not _xla_available():
            logger.info("--bf16: fairseq 0.12 implies --tpu, but torch_xla is not installed: training "
                        "bf16 on %s instead", "CUDA" if not getattr(args, "cpu", False) else "the CPU")
            args.tpu = False
        return orig(args)

    convert_namespace_to_omegaconf._mtkit_bf16 = True  # type: ignore[attr-defined]
    dc_utils.convert_namespace_to_omegaconf = convert_namespace_to_omegaconf
    # fairseq's command modules imported the function by name before the plugin was loaded
    for mod in list(sys.modules.values()):
        if getattr(mod, "convert_namespace_to_omegaconf", None) is orig:
            mod.convert_namespace_to_omegaconf = convert_namespace_to_omegaconf


def add_arguments(parser) -> None:  # `mtkit user-dir` takes no options
    parser.description = (
        "Print the directory to pass to fairseq as --user-dir. fairseq then imports mtkit, which "
        "registers mtkit's models, tasks and criteria and installs the safe checkpoint loader."
    )


def run(args) -> int:
    print(user_dir())
    return 0
