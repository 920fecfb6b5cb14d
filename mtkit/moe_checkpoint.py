"""MoE checkpoints in NLLB's layout: ``<prefix>-shared.pt`` + ``<prefix>-rank-{r}.pt``.

- ``-rank-{r}.pt`` (one per training rank): ``{"model": expert params of rank r with *local*
  expert numbers (``...moe_layer.experts.{j}.fc1.weight``), "last_optimizer_state": rank r's
  optimizer state, "moe": layout}``;
- ``-shared.pt`` (written by rank 0): every other key of fairseq's checkpoint (non-expert params,
  cfg, optimizer history, extra state) and ``"moe": {"world_size", "num_experts", "num_updates"}``.

Every part records the update it was saved at (``part["moe"]["num_updates"]``): the files of one
checkpoint are written separately (rank 0 the shared one, each rank its own), so a job killed between
them can leave a set whose parts come from different updates. Loading checks that first and names
the update each part holds (:class:`MixedUpdatesError`) instead of silently mixing them.

A key is an expert key when its name contains "expert" but not "expert_centroids" (NLLB's rule).
Loading merges the files for whatever layout the reading process has: expert ``g`` is looked up
in the file of the first rank that held it at save time, then renumbered to the reader's local
numbering, so one process can hold all experts (generation) or N ranks a slice each.

The ``moe_checkpoints`` patch (:mod:`mtkit.patches`) makes fairseq-train write and resume this layout
(every rank writes, suffix ``-rank-{r}``) and makes ``fairseq-generate --path <prefix>-shared.pt`` (or
any ``-rank-{r}.pt``) load it. Everything is read through :func:`mtkit.checkpoint.load`.
"""
from __future__ import annotations

import glob
import logging
import os
import re
from typing import Any

from mtkit import checkpoint
from mtkit.errors import MtkitError
from mtkit.io import atomic_copy
from mtkit.modules.moe.parallel import expert_layout

logger = logging.getLogger(__name__)

_EXPERT_RE = re.compile(r"(.*\.experts\.)(\d+)(\..*)")
_RANK_RE = re.compile(r"-rank-(\d+)\.pt$")


def is_expert_key(key: str) -> bool:
    """NLLB's rule for the parameters that live in the per-rank files."""
    return "expert" in key and "expert_centroids" not in key


def is_moe_state(model_state: Any) -> bool:
    """True when a model state dict (or its keys) holds MoE expert parameters."""
    return any(is_expert_key(k) for k in model_state)


def is_moe_checkpoint(path: str | os.PathLike) -> bool:
    """True for an MoE checkpoint in the NLLB layout (``-shared.pt`` / ``-rank-<r>.pt`` / prefix)."""
    return prefix_of(str(path)) is not None


def prefix_of(path: str) -> str | None:
    """``.../checkpoint_last`` for ``...-shared.pt`` / ``...-rank-3.pt`` / a bare prefix; else None."""
    path = str(path)
    if path.endswith("-shared.pt"):
        return path[: -len("-shared.pt")]
    m = _RANK_RE.search(path)
    if m:
        return path[: m.start()]
    if os.path.exists(path + "-shared.pt"):
        return path
    if path.endswith(".pt") and os.path.exists(path[:-3] + "-shared.pt"):
        return path[:-3]
    return None


def shared_path(prefix: str) -> str:
    return f"{prefix}-shared.pt"


def rank_path(prefix: str, rank: int) -> str:
    return f"{prefix}-rank-{rank}.pt"


class MixedUpdatesError(MtkitError):
    """The parts of an MoE checkpoint were saved at different updates (a save was interrupted)."""


def _num_updates(state: dict[str, Any]) -> int | None:
    history = state.get("optimizer_history") or []
    return history[-1].get("num_updates") if history else None


def split_state(state: dict[str, Any], world_size: int, rank: int, num_experts: int
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """fairseq's full training state of one rank -> (shared state, this rank's expert state)."""
    model = state["model"]
    updates = _num_updates(state)
    shared = {k: v for k, v in state.items() if k not in ("model", "last_optimizer_state")}
    shared["model"] = {k: v for k, v in model.items() if not is_expert_key(k)}
    shared["moe"] = {"world_size": world_size, "num_experts": num_experts, "num_updates": updates}
    layout = expert_layout(world_size, rank, num_experts)
    expert = {
        "model": {k: v for k, v in model.items() if is_expert_key(k)},
        "moe": {"world_size": world_size, "rank": rank, "num_experts": num_experts,
                "local_experts": layout.local_experts, "num_updates": updates},
    }
    if "last_optimizer_state" in state:
        expert["last_optimizer_state"] = state["last_optimizer_state"]
    return shared, expert


def save_split(state: dict[str, Any], prefix: str, world_size: int, rank: int, num_experts: int) -> None:
    """Write this rank's ``-rank-{rank}.pt`` and, on rank 0, ``-shared.pt`` (atomically)."""
    shared, expert = split_state(state, world_size, rank, num_experts)
    checkpoint.save(expert, rank_path(prefix, rank))
    if rank == 0:
        checkpoint.save(shared, shared_path(prefix))


def _renumber(key: str, offset_map: dict[int, int]) -> str | None:
    m = _EXPERT_RE.match(key)
    if not m:
        return key
    new = offset_map.get(int(m.group(2)))
    return None if new is None else f"{m.group(1)}{new}{m.group(3)}"


def _part_updates(prefix: str, saved_world: int, trust: bool) -> dict[str, Any]:
    """The update each part of a checkpoint was saved at (reads only their headers: mmap)."""
    out: dict[str, Any] = {}
    for path in [shared_path(prefix)] + [rank_path(prefix, r) for r in range(saved_world)]:
        if not os.path.exists(path):
            out[path] = "missing"
            continue
        try:
            part = checkpoint.load(path, trust=trust, mmap=True)
        except RuntimeError:  # not a zip checkpoint: no mmap
            part = checkpoint.load(path, trust=trust)
        out[path] = (part.get("moe") or {}).get("num_updates")
    return out


def check_same_update(prefix: str, saved_world: int, trust: bool = False) -> int | None:
    """Raise :class:`MixedUpdatesError` unless every part of the checkpoint holds the same update;
    return that update (None for checkpoints written before parts recorded it)."""
    held = _part_updates(prefix, saved_world, trust)
    known = {u for u in held.values() if u is not None}
    if len(known) <= 1 and "missing" not in known:
        return next(iter(known), None)
    parts = ", ".join(f"{os.path.basename(p)} holds {'nothing (missing)' if u == 'missing' else f'update {u}'}"
                      for p, u in held.items())
    raise MixedUpdatesError(
        f"MoE checkpoint {prefix}: its parts come from different saves ({parts}). A save was interrupted "
        "between the files (rank 0 writes -shared.pt, every rank its own -rank-<r>.pt). Resume from a "
        "complete set (e.g. a checkpoint_<epoch>_<updates> prefix whose parts all hold the same update) "
        "or remove this incomplete one.")


def _trust_whole_set(prefix: str, saved_world: int) -> None:
    msg = (f"{checkpoint.TRUST_ENV} names {shared_path(prefix)}: trusting the whole MoE checkpoint {prefix}, "
           f"i.e. -shared.pt and its {saved_world} -rank-<r>.pt files are loaded with full unpickling "
           "(they can run code); only do this for files whose origin you trust")
    logger.warning(msg)


def load_merged(path: str, world_size: int = 1, rank: int = 0, trust: bool = False,
                with_optimizer: bool = False) -> dict[str, Any]:
    """The state a process at (rank, world_size) needs: shared keys + its experts, renumbered
    to its local numbering. ``path``: a prefix, ``-shared.pt`` or ``-rank-{r}.pt``.

    ``trust=True`` trusts every file of the set; otherwise each file is loaded safely, except one
    that ``MTKIT_TRUST_CHECKPOINT`` names itself."""
    prefix = prefix_of(path) or str(path)
    if not os.path.exists(shared_path(prefix)):
        raise MtkitError(f"MoE checkpoint {prefix}: {shared_path(prefix)} is missing; an MoE checkpoint is "
                         "<prefix>-shared.pt plus <prefix>-rank-<r>.pt files")
    state = checkpoint.load(shared_path(prefix), trust=trust)
    meta = state.get("moe") or {}
    num_experts = int(meta.get("num_experts") or 0)
    saved_world = int(meta.get("world_size") or len(glob.glob(f"{glob.escape(prefix)}-rank-*.pt")))
    if num_experts <= 0:
        raise MtkitError(f"{shared_path(prefix)} has no 'moe' metadata; was it written by mtkit?")
    check_same_update(prefix, saved_world, trust)
    wanted = expert_layout(world_size, rank, num_experts).local_experts
    model = dict(state["model"])
    files: dict[int, list[int]] = {}  # saved rank -> global experts to take from it
    for g in wanted:
        files.setdefault(next(r for r in range(saved_world)
                              if g in expert_layout(saved_world, r, num_experts).local_experts), []).append(g)
    for r, globals_ in sorted(files.items()):
        fpath = rank_path(prefix, r)
        if not os.path.exists(fpath):
            raise MtkitError(f"MoE checkpoint {prefix}: {fpath} is missing (written by {saved_world} ranks)")
        part = checkpoint.load(fpath, trust=trust)
        held = expert_layout(saved_world, r, num_experts).local_experts
        local_of = {held.index(g): wanted.index(g) for g in globals_}
        for k, v in part["model"].items():
            new = _renumber(k, local_of)
            if new is not None:
                model[new] = v
        if with_optimizer and saved_world == world_size and r == rank and "last_optimizer_state" in part:
            state["last_optimizer_state"] = part["last_optimizer_state"]
    state["model"] = model
    return state


def load_moe_for_inference(path_prefix: str, trust: bool = False) -> dict[str, Any]:
    """A fairseq-style state dict with *all* experts (``experts.0 .. experts.{E-1}``) for one
    process. ``path_prefix``: ``.../checkpoint_last`` or its ``-shared.pt`` / ``-rank-{r}.pt``."""
    return load_merged(path_prefix, world_size=1, rank=0, trust=trust)


def reshard(path_prefix: str, out_prefix: str, num_ranks: int, trust: bool = False) -> None:
    """Rewrite a checkpoint for ``num_ranks`` files (e.g. one file per expert, as the HF NLLB-MoE
    converter expects: ``num_ranks = E``)."""
    full = load_moe_for_inference(path_prefix, trust=trust)
    E = int(full["moe"]["num_experts"])
    for r in range(num_ranks):
        layout = expert_layout(num_ranks, r, E)
        local = {g: j for j, g in enumerate(layout.local_experts)}
        part = {k: v for k, v in full["model"].items() if is_expert_key(k)}
        model = {}
        for k, v in part.items():
            m = _EXPERT_RE.match(k)
            if m and int(m.group(2)) in local:
                model[f"{m.group(1)}{local[int(m.group(2))]}{m.group(3)}"] = v
        checkpoint.save({"model": model, "moe": {"world_size": num_ranks, "rank": r, "num_experts": E,
                                                 "local_experts": layout.local_experts,
                                                 "num_updates": full["moe"].get("num_updates")}},
                        rank_path(out_prefix, r))
    shared = {k: v for k, v in full.items() if k != "model"}
    shared["model"] = {k: v for k, v in full["model"].items() if not is_expert_key(k)}
    shared["moe"] = {"world_size": num_ranks, "num_experts": E, "num_updates": full["moe"].get("num_updates")}
    checkpoint.save(shared, shared_path(out_prefix))


# ----------------------------------------------------------------------------- for fairseq's Trainer
# (mtkit.patches installs the Trainer and checkpoint_utils hooks that call these)


def dist_rank() -> tuple[int, int]:
    """(world size, rank) of torch.distributed, or (1, 0) outside a distributed run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def num_experts_of(model: Any) -> int:
    """Experts per MoE layer of a fairseq model (0 for a dense model)."""
    if not getattr(model, "is_moe", False):
        return 0
    return int(getattr(getattr(model, "args", None), "moe_expert_count", 0) or 0)


def trusted_set(prefix: str) -> bool:
    """Whether ``MTKIT_TRUST_CHECKPOINT`` names the set's ``-shared.pt`` (or its prefix): that trusts
    the whole set, every ``-rank-<r>.pt`` included (said in a warning). Naming only a ``-rank-<r>.pt``
    trusts that one file."""
    if not (checkpoint.trusted_by_env(shared_path(prefix)) or checkpoint.trusted_by_env(prefix)):
        return False
    _trust_whole_set(prefix, len(glob.glob(f"{glob.escape(prefix)}-rank-*.pt")))
    return True


def finish_fairseq_state(state: dict, arg_overrides: dict | None) -> dict:
    """What fairseq's load_checkpoint_to_cpu does after torch.load (overrides, cfg, upgrade)."""
    from fairseq import checkpoint_utils
    from fairseq.dataclass.utils import overwrite_args_by_name
    from omegaconf import OmegaConf

    if state.get("args") is not None and arg_overrides is not None:
        for name, val in arg_overrides.items():
            setattr(state["args"], name, val)
    if state.get("cfg") is not None:
        state["cfg"] = OmegaConf.create(state["cfg"], flags={"allow_objects": True})
        if arg_overrides is not None:
            overwrite_args_by_name(state["cfg"], arg_overrides)
    return checkpoint_utils._upgrade_state_dict(state)


def sync_shared_files(save_dir: str) -> None:
    """fairseq copies rank files to checkpoint_last/best names; give each rank-0 file its shared
    partner (copied from the newest shared file) and drop shared files whose rank-0 file is gone."""
    rank0 = {p[: -len("-rank-0.pt")]: p for p in glob.glob(os.path.join(glob.escape(save_dir), "*-rank-0.pt"))}
    shared = {p[: -len("-shared.pt")]: p for p in glob.glob(os.path.join(glob.escape(save_dir), "*-shared.pt"))}
    if not shared:
        return
    newest = max(shared.values(), key=os.path.getmtime)
    for prefix, rpath in rank0.items():
        spath = shared_path(prefix)
        if spath != newest and (not os.path.exists(spath) or os.path.getmtime(spath) < os.path.getmtime(rpath)):
            atomic_copy(newest, spath)
    for prefix, spath in shared.items():
        if prefix not in rank0:
            os.remove(spath)
