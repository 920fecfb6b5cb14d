"""Safe checkpoint loading and atomic saving for fairseq checkpoints on torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default, and fairseq checkpoints fail there because
they pickle a few ordinary Python objects (``argparse.Namespace``, numpy arrays and scalars). The
common fix, ``weights_only=False``, lets a checkpoint run arbitrary code while it is unpickled. We
keep ``weights_only=True`` and allow exactly the extra types that checkpoints written by
``fairseq-train`` contain (:data:`ALLOWED_GLOBALS`, derived by scanning real checkpoints; see the
README). Anything else is refused before a single byte of the payload is unpickled, with an error
that names the offending global and the file.

A trusted legacy checkpoint can still be loaded with ``trust=True`` (``--trust-checkpoint`` on the
command line, or the environment variable ``MTKIT_TRUST_CHECKPOINT`` holding the trusted paths,
separated by ``os.pathsep``, for fairseq's own commands). That path logs a warning every time.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import pickle
import pickletools
import re
import types
import warnings
import zipfile
from typing import IO, Any

import numpy as np
import torch

from mtkit.errors import MtkitError
from mtkit.io import atomic_write

logger = logging.getLogger(__name__)

TRUST_ENV = "MTKIT_TRUST_CHECKPOINT"


class UnsafeCheckpointError(MtkitError, pickle.UnpicklingError):
    """The checkpoint references a Python global outside the allow-list; nothing in it was run."""

    def __init__(self, path: str, offending: list[str], detail: str = ""):
        self.path, self.offending = path, offending
        names = ", ".join(offending) if offending else "(unknown)"
        msg = (
            f"refusing to load checkpoint {path}: its pickle references {names}, which is not "
            "among the types that fairseq checkpoints contain, so loading it could run code. "
            "Nothing in it was executed. If you trust the file's origin, load it with "
            f"--trust-checkpoint (or set {TRUST_ENV}={path} for fairseq commands)."
        )
        if detail:
            msg += f" [{detail}]"
        super().__init__(msg)


def _numpy_globals() -> list[Any]:
    """numpy objects needed to rebuild arrays and scalars pickled by numpy 1.x and 2.x."""
    out: list[Any] = [np.ndarray, np.dtype]
    for modname in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            mod = __import__(modname, fromlist=["_reconstruct", "scalar"])
        except ImportError:
            continue
        for attr in ("_reconstruct", "scalar"):
            fn = getattr(mod, attr, None)
            if fn is not None:
                out.append((fn, f"{modname}.{attr}"))
    # numpy >= 1.25 pickles dtypes as instances of numpy.dtypes.*DType classes
    dtypes_mod = getattr(np, "dtypes", None)
    if dtypes_mod is not None:
        for name in dir(dtypes_mod):
            obj = getattr(dtypes_mod, name)
            if isinstance(obj, type) and name.endswith("DType"):
                out.append(obj)
    return out


def _omegaconf_globals() -> list[Any]:
    """omegaconf containers, for checkpoints whose ``cfg`` was saved as a DictConfig."""
    try:
        import omegaconf
        from omegaconf import base, nodes
    except ImportError:
        return []
    out: list[Any] = [omegaconf.DictConfig, omegaconf.ListConfig, base.ContainerMetadata, base.Metadata]
    for name in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode"):
        if hasattr(nodes, name):
            out.append(getattr(nodes, name))
    import typing

    out.append((typing.Any, "typing.Any"))
    return out


def allowed_globals() -> list[Any]:
    """Everything beyond torch's own weights-only set that a fairseq checkpoint may reference.

    - ``argparse.Namespace``: ``args`` and ``cfg[...]`` of every fairseq checkpoint (found by
      scanning checkpoints written by fairseq-train 0.12.3 here);
    - numpy arrays, scalars and dtypes: older fairseq versions store ``best``/``val_loss`` and
      meter values as numpy scalars;
    - omegaconf containers: fairseq 0.10-era checkpoints stored ``cfg`` as a DictConfig.
    None of these can execute code when rebuilt.
    """
    return [argparse.Namespace, *_numpy_globals(), *_omegaconf_globals()]


ALLOWED_GLOBALS = allowed_globals()


def _global_name(obj: Any) -> str:
    if isinstance(obj, tuple):
        return obj[1]
    return f"{obj.__module__}.{obj.__qualname__}"


ALLOWED_NAMES = frozenset(_global_name(g) for g in ALLOWED_GLOBALS)

def trusted_by_env(path: str) -> bool:
    value = os.environ.get(TRUST_ENV, "")
    if not value:
        return False
    wanted = {os.path.realpath(p) for p in value.split(os.pathsep) if p}
    return os.path.realpath(path) in wanted


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _py3_name(name: str) -> str:
    """Protocol-2 pickles name builtins ``__builtin__.x``; report the Python 3 name."""
    module, _, attr = name.rpartition(".")
    return f"{_PY2_MODULES.get(module, module)}.{attr}" if module else name


def _globals_in_pickle(stream: IO[bytes]) -> set[str]:
    """Every global one pickle references, by static disassembly (nothing is executed).

    Handles GLOBAL and STACK_GLOBAL (whose module/name come from the two preceding strings).
    """
    found: set[str] = set()
    recent: list[str] = []
    for opcode, arg, _pos in pickletools.genops(stream):
        if opcode.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            found.add(_py3_name(f"{module}.{name}"))
        elif opcode.name == "STACK_GLOBAL":
            found.add(".".join(recent[-2:]) if len(recent) >= 2 else "<dynamic STACK_GLOBAL>")
        elif isinstance(arg, str) and "UNICODE" in opcode.name or opcode.name.endswith("STRING"):
            recent.append(str(arg))
        elif opcode.name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
            continue
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append("<memo>")
    return found


def _torch_safe_names() -> set[str]:
    try:
        from torch import _weights_only_unpickler as wou

        return set(wou._get_allowed_globals().keys()) | set(wou._get_user_allowed_globals().keys())
    except Exception:  # noqa: BLE001 - private API; fall back to "nothing is pre-approved"
        return set()


def scan_globals(f: str | os.PathLike | IO[bytes]) -> list[str]:
    """Globals a checkpoint references that are neither torch-safe nor on our allow-list.

    A static scan of the pickle (``data.pkl`` of a zip checkpoint, or the leading pickles of the
    legacy format); nothing is executed. The weights-only unpickler enforces the same rule again
    while loading, so this scan is for the error message, not the only guard.
    """
    opened = None
    if isinstance(f, (str, os.PathLike)):
        opened = f = open(f, "rb")  # noqa: SIM115 - closed below
    start = f.tell() if hasattr(f, "tell") else 0
    try:
        head = f.read(4)
        f.seek(start)
        found: set[str] = set()
        if head == b"PK\x03\x04":
            with zipfile.ZipFile(f) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                for name in names:
                    found |= _globals_in_pickle(io.BytesIO(zf.read(name)))
        else:
            # legacy format: magic number, protocol version, sys info, then the object itself
            for _ in range(4):
                try:
                    found |= _globals_in_pickle(f)
                except Exception:  # noqa: BLE001 - unreadable stream: let the unpickler decide
                    break
    finally:
        if opened is not None:
            opened.close()
        else:
            f.seek(start)
    safe = {_py3_name(n) for n in _torch_safe_names() | set(ALLOWED_NAMES)}
    return sorted(g for g in found if g not in safe)


def _name_of(f: Any) -> str:
    if isinstance(f, (str, os.PathLike)):
        return str(f)
    return str(getattr(f, "name", "<stream>"))


def load(
    f: str | os.PathLike | IO[bytes],
    map_location: Any = "cpu",
    trust: bool = False,
    **kwargs: Any,
) -> Any:
    """Load a checkpoint with ``weights_only=True`` and the fairseq allow-list.

    ``trust=True`` (or the file named in ``MTKIT_TRUST_CHECKPOINT``) loads with full unpickling
    after a warning; only do that for files whose origin you trust.
    """
    name = _name_of(f)
    kwargs.pop("weights_only", None)
    if trust or trusted_by_env(name):
        msg = (f"loading {name} with full unpickling (trusted checkpoint): it can run code; "
               "only do this for files whose origin you trust")
        warnings.warn(msg, stacklevel=2)
        logger.warning(msg)
        return torch.load(f, map_location=map_location, weights_only=False, **kwargs)
    bad = scan_globals(f)
    if bad:
        raise UnsafeCheckpointError(name, bad)
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(f, map_location=map_location, weights_only=True, **kwargs)
    except pickle.UnpicklingError as e:
        text = str(e)
        m = re.search(r"GLOBAL ([\w.]+)", text)
        offending = [m.group(1)] if m else []
        detail = "" if m else re.sub(r"\x1b\[[0-9;]*m", "", text).strip()[-300:]
        raise UnsafeCheckpointError(name, offending, detail=detail) from None


def save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def _fairseq_loader(f: Any, map_location: Any = None, **kwargs: Any) -> Any:
    if kwargs.get("weights_only") is False and not trusted_by_env(_name_of(f)):
        raise UnsafeCheckpointError(_name_of(f), [], detail="caller asked for weights_only=False")
    return load(f, map_location=map_location, **kwargs)


class SafeTorch(types.ModuleType):
    """Stands in for ``torch`` inside fairseq.checkpoint_utils (installed by :mod:`mtkit.patches`):
    ``load`` is the safe loader, everything else is torch itself."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def load(self, f: Any, map_location: Any = None, **kwargs: Any) -> Any:
        return _fairseq_loader(f, map_location=map_location, **kwargs)
