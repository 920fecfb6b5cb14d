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

import functools
import importlib.util
import logging
import os
import socket
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


# ------------------------------------------------------------------------------ broadcast to ranks > 0


def _install_safe_broadcast() -> None:
    from fairseq.distributed import utils as dist_utils
    from fairseq.trainer import Trainer

    from mtkit.checkpoint import SafeTorch, _broadcast_loader, broadcasting_from

    if not _safe_broadcast_loader_installed():
        dist_utils.torch = SafeTorch(_broadcast_loader)
    orig = Trainer.load_checkpoint
    if _marked(orig, "safe_broadcast"):
        return

    def load_checkpoint(self, filename, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        with broadcasting_from(filename):  # every rank: the file rank 0 reads and broadcasts
            return orig(self, filename, *args, **kwargs)

    load_checkpoint.__wrapped__ = orig  # type: ignore[attr-defined]
    Trainer.load_checkpoint = _mark(load_checkpoint, "safe_broadcast")


def _safe_broadcast_loader_installed() -> bool:
    from fairseq.distributed import utils as dist_utils

    from mtkit.checkpoint import SafeTorch, _broadcast_loader

    t = getattr(dist_utils, "torch", None)
    return isinstance(t, SafeTorch) and t._loader is _broadcast_loader


def _safe_broadcast_installed() -> bool:
    from fairseq.trainer import Trainer

    return _safe_broadcast_loader_installed() and _marked(Trainer.load_checkpoint, "safe_broadcast")


# ------------------------------------------------------------------------------ atomic checkpoint copies


def _install_atomic_checkpoint_copy() -> None:
    from fairseq import checkpoint_utils

    from mtkit.io import atomic_copy

    base = checkpoint_utils.PathManager
    if _marked(base, "atomic_checkpoint_copy"):
        return

    class AtomicCopyPathManager(base):  # type: ignore[misc, valid-type]
        """fairseq's PathManager inside checkpoint_utils, with copies through a temporary file."""

        @staticmethod
        def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
            if base.path_requires_pathmanager(src_path) or base.path_requires_pathmanager(dst_path):
                return base.copy(src_path, dst_path, overwrite)
            atomic_copy(src_path, dst_path)
            return True

    AtomicCopyPathManager.__wrapped__ = base  # type: ignore[attr-defined]
    checkpoint_utils.PathManager = _mark(AtomicCopyPathManager, "atomic_checkpoint_copy")


def _atomic_checkpoint_copy_installed() -> bool:
    from fairseq import checkpoint_utils

    return _marked(checkpoint_utils.PathManager, "atomic_checkpoint_copy")


# ------------------------------------------------------------------------------ torch DDP on the CPU


def _install_ddp_on_cpu() -> None:
    from fairseq.models import distributed_fairseq_model as dfm

    ddp = dfm.DistributedDataParallel
    if _marked(ddp, "ddp_on_cpu"):
        return

    def DistributedDataParallel(module, device_ids=None, output_device=None, **kwargs):  # noqa: ANN001, ANN003, ANN202, N802
        if all(p.device.type == "cpu" for p in module.parameters()):
            device_ids = output_device = None  # torch DDP takes no device ids for a CPU module
        return ddp(module, device_ids=device_ids, output_device=output_device, **kwargs)

    DistributedDataParallel.__wrapped__ = ddp  # type: ignore[attr-defined]
    dfm.DistributedDataParallel = _mark(DistributedDataParallel, "ddp_on_cpu")


def _ddp_on_cpu_installed() -> bool:
    from fairseq.models import distributed_fairseq_model as dfm

    return _marked(dfm.DistributedDataParallel, "ddp_on_cpu")


# ------------------------------------------------------------------------------ torchrun and CPU launches

TORCHRUN_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")


def _torchrun_world() -> int:
    """WORLD_SIZE when this process was started by torchrun (or torch.distributed.launch), else 0."""
    if all(k in os.environ for k in TORCHRUN_ENV):
        return int(os.environ["WORLD_SIZE"])
    return 0


def _install_launchers() -> None:
    import torch
    from fairseq.distributed import utils as dist_utils

    orig_infer = dist_utils.infer_init_method
    if not _marked(orig_infer, "launchers"):

        def infer_init_method(cfg, force_distributed=False):  # noqa: ANN001, ANN202
            world = _torchrun_world()
            if (world > 1 and cfg.distributed_init_method is None and not cfg.tpu
                    and not cfg.pipeline_model_parallel):
                cfg.distributed_init_method = "env://"
                cfg.distributed_world_size = world
                cfg.distributed_rank = int(os.environ["RANK"])
                cfg.device_id = int(os.environ.get("LOCAL_RANK", 0))
                cfg.distributed_no_spawn = True
                logger.info("torchrun: rank %d of %d (local rank %d)", cfg.distributed_rank, world, cfg.device_id)
                return None
            if torch.cuda.is_available():
                return orig_infer(cfg, force_distributed)
            # no CUDA (a CPU job under SLURM): fairseq's SLURM branch would still select CUDA device
            # SLURM_LOCALID for ranks > 0, which fails on a CPU build of torch
            set_device = torch.cuda.set_device
            torch.cuda.set_device = lambda device: None
            try:
                return orig_infer(cfg, force_distributed)
            finally:
                torch.cuda.set_device = set_device

        infer_init_method.__wrapped__ = orig_infer  # type: ignore[attr-defined]
        dist_utils.infer_init_method = _mark(infer_init_method, "launchers")

    orig_call = dist_utils.call_main
    if not _marked(orig_call, "launchers"):

        def call_main(cfg, main, **kwargs):  # noqa: ANN001, ANN003, ANN202
            dt = cfg.distributed_training
            if (cfg.common.cpu and dt.distributed_world_size > 1 and dt.distributed_init_method is None
                    and not dt.distributed_no_spawn and not _torchrun_world()
                    and "SLURM_JOB_NODELIST" not in os.environ and "SLURM_STEP_NODELIST" not in os.environ):
                # fairseq sizes its process pool by the number of GPUs: on the CPU it started none
                port = dt.distributed_port if dt.distributed_port > 0 else _free_port()
                dt.distributed_init_method = f"tcp://localhost:{port}"
                kwargs["start_rank"] = dt.distributed_rank
                dt.distributed_rank = None
                logger.info("--cpu: starting %d processes (%s)", dt.distributed_world_size, dt.distributed_init_method)
                torch.multiprocessing.spawn(fn=dist_utils.distributed_main, args=(main, cfg, kwargs),
                                            nprocs=dt.distributed_world_size, join=True)
                return None
            return orig_call(cfg, main, **kwargs)

        call_main.__wrapped__ = orig_call  # type: ignore[attr-defined]
        dist_utils.call_main = _mark(call_main, "launchers")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launchers_installed() -> bool:
    from fairseq.distributed import utils as dist_utils

    return _marked(dist_utils.infer_init_method, "launchers") and _marked(dist_utils.call_main, "launchers")


# ------------------------------------------------------------------------------ MoE checkpoints


def _install_moe_checkpoints() -> None:
    """fairseq's Trainer saves and resumes MoE models in NLLB's layout (:mod:`mtkit.moe_checkpoint`);
    dense models take fairseq's own code paths unchanged."""
    from fairseq import checkpoint_utils
    from fairseq.trainer import Trainer

    from mtkit import moe_checkpoint as moe

    if _moe_checkpoints_installed():
        return
    orig_suffix = Trainer.checkpoint_suffix
    orig_should_save = Trainer.should_save_checkpoint_on_current_rank
    orig_save = Trainer.save_checkpoint
    orig_load = Trainer.load_checkpoint
    orig_save_cu = checkpoint_utils.save_checkpoint
    orig_load_cpu = checkpoint_utils.load_checkpoint_to_cpu

    def is_moe(trainer: Trainer) -> bool:
        return moe.num_experts_of(trainer.get_model()) > 0

    def checkpoint_suffix(self: Trainer) -> str:
        base = orig_suffix.fget(self)
        return f"{base}-rank-{self.data_parallel_rank}" if is_moe(self) else base

    def should_save(self: Trainer) -> bool:
        return True if is_moe(self) else orig_should_save.fget(self)

    def save_checkpoint(self: Trainer, filename: str, extra_state: dict) -> str | None:
        if not is_moe(self):
            return orig_save(self, filename, extra_state)
        from fairseq import utils

        state = utils.move_to_cpu(self.state_dict())
        state["extra_state"].update(extra_state)
        prefix = moe.prefix_of(filename) or filename[:-3]
        world, rank = moe.dist_rank()
        moe.save_split(state, prefix, world, rank, moe.num_experts_of(self.get_model()))
        logger.info("saved MoE checkpoint %s-{shared,rank-%d}.pt", prefix, rank)
        return os.path.abspath(filename)

    def load_checkpoint(self: Trainer, filename: str, *args: Any, **kwargs: Any) -> Any:
        if not is_moe(self):
            return orig_load(self, filename, *args, **kwargs)
        ck = self.cfg.checkpoint
        old = ck.load_checkpoint_on_all_dp_ranks
        ck.load_checkpoint_on_all_dp_ranks = True  # every rank reads its own experts
        try:
            return orig_load(self, filename, *args, **kwargs)
        finally:
            ck.load_checkpoint_on_all_dp_ranks = old

    def save_cu(cfg: Any, trainer: Trainer, epoch_itr: Any, val_loss: Any) -> Any:
        out = orig_save_cu(cfg, trainer, epoch_itr, val_loss)
        if is_moe(trainer) and trainer.data_parallel_rank == 0:
            moe.sync_shared_files(cfg.save_dir)
        return out

    def load_cpu(path: str, arg_overrides: dict | None = None, load_on_all_ranks: bool = False) -> dict:
        prefix = moe.prefix_of(str(path))
        if prefix is None:
            return orig_load_cpu(path, arg_overrides, load_on_all_ranks)
        world, rank = moe.dist_rank()
        state = moe.load_merged(prefix, world, rank, with_optimizer=True, trust=moe.trusted_set(prefix))
        return moe.finish_fairseq_state(state, arg_overrides)

    for wrapper, orig in ((save_checkpoint, orig_save), (load_checkpoint, orig_load), (save_cu, orig_save_cu),
                          (load_cpu, orig_load_cpu)):
        functools.update_wrapper(wrapper, orig)
        _mark(wrapper, "moe_checkpoints")
    Trainer.checkpoint_suffix = property(checkpoint_suffix)
    Trainer.should_save_checkpoint_on_current_rank = property(should_save)
    Trainer.save_checkpoint = save_checkpoint
    Trainer.load_checkpoint = load_checkpoint
    checkpoint_utils.save_checkpoint = save_cu
    checkpoint_utils.load_checkpoint_to_cpu = load_cpu


def _moe_checkpoints_installed() -> bool:
    from fairseq import checkpoint_utils

    return _marked(checkpoint_utils.load_checkpoint_to_cpu, "moe_checkpoints")


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
        "safe_broadcast", "fairseq.distributed.utils.torch.load (in _broadcast_object_slow), "
        "fairseq.trainer.Trainer.load_checkpoint",
        "with several data-parallel ranks, rank 0 loads a checkpoint and broadcast_object sends the state "
        "to the others, which read it with a plain torch.load: weights-only on torch >= 2.6, so every "
        "dense multi-rank --restore-file/--finetune-from-model/resume failed there. The other ranks now "
        "read it through mtkit.checkpoint.load_broadcast: the same allow-list (plus fairseq's "
        "_TensorPlaceholder), trusted only if MTKIT_TRUST_CHECKPOINT names the file being loaded",
        "fairseq 0.12.x; torch >= 2.6", _install_safe_broadcast, _safe_broadcast_installed),
    Patch(
        "atomic_checkpoint_copy", "fairseq.checkpoint_utils.PathManager.copy",
        "fairseq writes the first checkpoint name atomically (.tmp + rename) but copies it to the others "
        "(checkpoint_last.pt, checkpoint_best.pt, ...) with shutil.copyfile: a kill during that copy "
        "left a truncated checkpoint_last.pt that the next run could not resume from. Local copies now "
        "go through a temporary file and a rename",
        "fairseq 0.12.x", _install_atomic_checkpoint_copy, _atomic_checkpoint_copy_installed),
    Patch(
        "ddp_on_cpu", "fairseq.models.distributed_fairseq_model.DistributedDataParallel",
        "--ddp-backend c10d/pytorch_ddp passes device_ids=[device_id] to torch DDP, which refuses them "
        "for a CPU module; they are dropped when the model is on the CPU (GPU runs are unchanged)",
        "fairseq 0.12.x", _install_ddp_on_cpu, _ddp_on_cpu_installed),
    Patch(
        "launchers", "fairseq.distributed.utils.infer_init_method, call_main",
        "under torchrun fairseq only used the torchrun environment when --distributed-world-size "
        "(default: the number of local GPUs) was above 1, so a 1-GPU-per-node or CPU job ran as "
        "independent single processes, and its device id (rank modulo the GPU count) divided by zero on the CPU; "
        "now WORLD_SIZE/RANK/LOCAL_RANK are used whenever torchrun set WORLD_SIZE > 1. fairseq's own "
        "--distributed-world-size N spawn path started min(GPUs, N) processes (none on the CPU); with "
        "--cpu it now starts N. Under SLURM without CUDA, fairseq's SLURM detection no longer selects a "
        "CUDA device for ranks > 0",
        "fairseq 0.12.x", _install_launchers, _launchers_installed),
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
