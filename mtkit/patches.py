"""Every change mtkit makes to the behaviour of fairseq, torch or numpy, in one place.

fairseq 0.12 predates torch >= 2.6, numpy 2 and Python 3.11, and it has no sparse MoE. mtkit keeps
fairseq's own commands (``fairseq-train``, ``fairseq-generate``, ...) working on today's stack by
patching a few functions. Each patch is one :class:`Patch` in :data:`PATCHES`: what it changes, why,
the versions it is for, and an ``install`` function that is idempotent (safe to call twice) and
leaves a marker so :func:`installed` can tell whether it is in place. :func:`mtkit.plugin.register`
installs them all, explicitly; nothing in mtkit patches anything when it is merely imported.
``mtkit doctor`` lists them.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MARK = "_mtkit_patch"


@dataclass(frozen=True)
class Patch:
    name: str
    target: str
    why: str
    versions: str
    install: Callable[[], None]
    is_installed: Callable[[], bool]


def _marked(obj: Any, name: str) -> bool:
    """Whether ``obj``, or a function it wraps (``__wrapped__`` chain), carries the patch's marker."""
    while obj is not None:
        if getattr(obj, MARK, None) == name:
            return True
        obj = getattr(obj, "__wrapped__", None)
    return False


def _mark(obj: Any, name: str) -> Any:
    setattr(obj, MARK, name)
    return obj


# ------------------------------------------------------------------------------ safe checkpoint loader


def _install_safe_loader() -> None:
    from fairseq import checkpoint_utils

    from mtkit.checkpoint import SafeTorch

    if not isinstance(getattr(checkpoint_utils, "torch", None), SafeTorch):
        checkpoint_utils.torch = SafeTorch()


def _safe_loader_installed() -> bool:
    from fairseq import checkpoint_utils

    from mtkit.checkpoint import SafeTorch

    return isinstance(getattr(checkpoint_utils, "torch", None), SafeTorch)


# ------------------------------------------------------------------------------ bf16 without torch_xla


def _xla_available() -> bool:
    return importlib.util.find_spec("torch_xla") is not None


def _install_bf16_untie() -> None:
    from fairseq.dataclass import utils as dc_utils

    orig = dc_utils.convert_namespace_to_omegaconf
    if _marked(orig, "bf16_without_tpu"):
        return

    def convert_namespace_to_omegaconf(args):  # noqa: ANN001, ANN202 - fairseq's signature
        if getattr(args, "bf16", False) and getattr(args, "tpu", False) and not _xla_available():
            logger.info("--bf16: fairseq 0.12 implies --tpu, but torch_xla is not installed: training "
                        "bf16 on %s instead", "CUDA" if not getattr(args, "cpu", False) else "the CPU")
            args.tpu = False
        return orig(args)

    convert_namespace_to_omegaconf.__wrapped__ = orig  # type: ignore[attr-defined]
    _mark(convert_namespace_to_omegaconf, "bf16_without_tpu")
    dc_utils.convert_namespace_to_omegaconf = convert_namespace_to_omegaconf
    # fairseq's command modules imported the function by name before the plugin was loaded
    for mod in list(sys.modules.values()):
        if getattr(mod, "convert_namespace_to_omegaconf", None) is orig:
            mod.convert_namespace_to_omegaconf = convert_namespace_to_omegaconf


def _bf16_untie_installed() -> bool:
    from fairseq.dataclass import utils as dc_utils

    return _marked(dc_utils.convert_namespace_to_omegaconf, "bf16_without_tpu")


# ------------------------------------------------------------------------------ numpy.compat


def _install_numpy_compat() -> None:
    import numpy as np

    try:
        np.compat.long  # noqa: B018 - numpy < 2 still has it: nothing to do
    except AttributeError:
        np.compat = _mark(types.SimpleNamespace(long=np.int64), "numpy_compat")  # type: ignore[attr-defined]


def _numpy_compat_installed() -> bool:
    import numpy as np

    try:
        return np.compat.long is np.int64
    except AttributeError:
        return False


# ------------------------------------------------------------------------------ --stop-time-hours


def _install_reset_training_time() -> None:
    import time

    from fairseq.trainer import Trainer

    orig = Trainer.load_checkpoint
    if _marked(orig, "reset_meters_resets_training_time"):
        return

    def load_checkpoint(self, filename, reset_optimizer=False, reset_lr_scheduler=False,  # noqa: ANN001, ANN202
                        optimizer_overrides=None, reset_meters=False):
        extra_state = orig(self, filename, reset_optimizer, reset_lr_scheduler, optimizer_overrides,
                           reset_meters=reset_meters)
        if reset_meters:
            self._previous_training_time = 0
            self._start_time = time.time()
        return extra_state

    load_checkpoint.__wrapped__ = orig  # type: ignore[attr-defined]
    Trainer.load_checkpoint = _mark(load_checkpoint, "reset_meters_resets_training_time")


def _reset_training_time_installed() -> bool:
    from fairseq.trainer import Trainer

    return _marked(Trainer.load_checkpoint, "reset_meters_resets_training_time")


# ------------------------------------------------------------------------------ MoE checkpoints


def _install_moe_checkpoints() -> None:
    from mtkit import moe_checkpoint

    moe_checkpoint.install_trainer_hooks()


def _moe_checkpoints_installed() -> bool:
    from mtkit import moe_checkpoint

    return moe_checkpoint.trainer_hooks_installed()


PATCHES: tuple[Patch, ...] = (
    Patch(
        "safe_checkpoint_loader", "fairseq.checkpoint_utils.torch.load",
        "torch >= 2.6 loads weights-only and refuses every fairseq checkpoint; the usual fix "
        "(weights_only=False) lets a checkpoint run code. Every torch.load in checkpoint_utils "
        "(train --restore-file/--finetune-from-model, generate, interactive, hub) goes through "
        "mtkit.checkpoint.load: weights-only plus an allow-list of what fairseq checkpoints hold",
        "fairseq 0.12.x; torch >= 2.6", _install_safe_loader, _safe_loader_installed),
    Patch(
        "bf16_without_tpu", "fairseq.dataclass.utils.convert_namespace_to_omegaconf",
        "fairseq 0.12's parser turns --bf16 into --tpu and its trainer then needs torch_xla; without "
        "torch_xla the implied --tpu is turned off again so bf16 trains on CUDA (and the CPU)",
        "fairseq 0.12.x", _install_bf16_untie, _bf16_untie_installed),
    Patch(
        "numpy_compat", "numpy.compat.long",
        "numpy 2 removed numpy.compat; fairseq 0.12's TokenBlockDataset and LanguagePairDataset "
        "use np.compat.long (every denoising run); restores exactly that alias (numpy.int64)",
        "fairseq 0.12.x; numpy >= 2", _install_numpy_compat, _numpy_compat_installed),
    Patch(
        "reset_meters_resets_training_time", "fairseq.trainer.Trainer.load_checkpoint",
        "fairseq restores the wall-clock training time of the checkpoint a run starts from even with "
        "--finetune-from-model / --reset-meters, and --stop-time-hours counts it: a stage started "
        "from a checkpoint trained longer than its budget stopped after one update. With reset "
        "meters (which --finetune-from-model implies) the time now starts at zero; --restore-file "
        "resumes keep counting as before",
        "fairseq 0.12.x", _install_reset_training_time, _reset_training_time_installed),
    Patch(
        "moe_checkpoints", "fairseq.trainer.Trainer (checkpoint_suffix, should_save_checkpoint_on_"
        "current_rank, save_checkpoint, load_checkpoint), fairseq.checkpoint_utils.save_checkpoint "
        "and load_checkpoint_to_cpu",
        "sparse MoE is not in any fairseq release: MoE models save and resume NLLB's layout "
        "(<prefix>-shared.pt + <prefix>-rank-<r>.pt, every rank writes its experts) and "
        "fairseq-generate loads it; dense models take fairseq's own code paths unchanged",
        "fairseq 0.12.x", _install_moe_checkpoints, _moe_checkpoints_installed),
)


def install_all() -> None:
    """Install every patch (idempotent)."""
    for patch in PATCHES:
        patch.install()
        logger.debug("mtkit patch %s installed (%s)", patch.name, patch.target)


def installed() -> dict[str, bool]:
    """Which patches are in place in this process (imports fairseq)."""
    return {p.name: p.is_installed() for p in PATCHES}
