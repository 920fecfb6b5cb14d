"""Safe checkpoint loading and atomic saving for fairseq checkpoints on torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default, and fairseq checkpoints fail there because
they pickle a few ordinary Python objects (``argparse.Namespace``, sometimes an omegaconf
``DictConfig`` or numpy scalars). The common fix, ``weights_only=False``, lets a checkpoint run
arbitrary code while it is unpickled. We keep ``weights_only=True`` and allow exactly the extra
globals listed in :data:`ALLOWED` (each with the reason it is needed; every entry is exercised by a
test). numpy globals are not handed to numpy: the names map to small validators here that accept
only what numpy itself writes for plain numeric data (no object dtypes, a dtype state of the one
shape numpy writes, array bytes that match the declared shape) and build the value from checked
inputs. Anything else is refused before a single byte of the payload is unpickled, with an error
that names the offending global and the file.

The same rules cover what fairseq's rank 0 broadcasts to the other ranks after loading a checkpoint
(:func:`load_broadcast`, installed by :mod:`mtkit.patches`), so the broadcast is no way around them.

A trusted legacy checkpoint can still be loaded with ``trust=True`` (``--trust-checkpoint`` on the
command line, or the environment variable ``MTKIT_TRUST_CHECKPOINT`` holding the trusted paths,
separated by ``os.pathsep``, for fairseq's own commands). That path logs a warning every time.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import contextvars
import io
import logging
import os
import pickle
import pickletools
import re
import types
import typing
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import torch

from mtkit.errors import MtkitError
from mtkit.io import atomic_write

logger = logging.getLogger(__name__)

TRUST_ENV = "MTKIT_TRUST_CHECKPOINT"


class UnsafeCheckpointError(MtkitError, pickle.UnpicklingError):
    """The checkpoint references a Python global outside the allow-list, or abuses an allowed one;
    nothing in it was run."""

    def __init__(self, path: str, offending: list[str], detail: str = "", misuse: bool = False):
        self.path, self.offending = path, offending
        names = ", ".join(offending) if offending else "(unknown)"
        if misuse:
            what = (f"its pickle uses {names} in a way that fairseq, omegaconf and numpy never write "
                    f"({detail})")
        else:
            what = (f"its pickle references {names}, which is not among the types that fairseq "
                    "checkpoints contain, so loading it could run code")
        msg = (
            f"refusing to load checkpoint {path}: {what}. Nothing in it was executed. If you trust "
            f"the file's origin, load it with --trust-checkpoint (or set {TRUST_ENV}={path} for "
            "fairseq commands)."
        )
        if detail and not misuse:
            msg += f" [{detail}]"
        super().__init__(msg)


class _Refused(Exception):  # noqa: N818 - internal signal, not an error type users see
    """Raised inside the unpickler by a validator below; becomes an :class:`UnsafeCheckpointError`.
    (Not an UnpicklingError: torch.load would rewrap that into its own message.)"""

    def __init__(self, glob: str, why: str):
        self.glob, self.why = glob, why
        super().__init__(f"{glob}: {why}")


# ------------------------------------------------------------------------------ numpy, validated
#
# numpy pickles a scalar as ``scalar(dtype, raw_bytes)`` and an array as
# ``_reconstruct(ndarray, (0,), b"b")`` followed by BUILD ``(1, shape, dtype, is_fortran, raw)``; a
# dtype is ``dtype(spec, False, True)`` followed by BUILD ``(3, endian, None, None, None, -1, -1, 0)``
# (numpy 1.x and 2.x alike). The names below map to validators that accept exactly those shapes for
# plain numeric dtypes and never call numpy's C ``scalar`` (numpy #28316: crash on object dtypes up to
# 2.2) or ``dtype.__setstate__`` (numpy #30476: malformed state lengths read uninitialised memory).

_NUMERIC_SPEC = re.compile(r"[biufc]\d{1,2}")  # what dtype.__reduce__ writes: 'f8', 'i4', 'b1', 'c16'
_ENDIANS = ("<", ">", "|", "=")
_load_scope: contextvars.ContextVar[list | None] = contextvars.ContextVar("mtkit_checkpoint_dtypes", default=None)


class NumpyDtype:
    """``numpy.dtype(spec, align, copy)`` from a checkpoint: a plain numeric dtype, checked; it only
    ever feeds the scalar and array validators below (a bare dtype elsewhere is refused)."""

    __slots__ = ("spec", "dtype", "used")

    def __init__(self, spec: Any = None, align: Any = False, copy: Any = True):
        if not (isinstance(spec, str) and _NUMERIC_SPEC.fullmatch(spec)) or align is not False:
            raise _Refused("numpy.dtype", f"only plain numeric dtypes are allowed, not {spec!r} (align={align!r})")
        try:
            np.dtype(spec)
        except TypeError as e:
            raise _Refused("numpy.dtype", f"unknown dtype {spec!r}") from e
        self.spec, self.dtype, self.used = spec, None, False
        scope = _load_scope.get()
        if scope is not None:
            scope.append(self)

    def __setstate__(self, state: Any) -> None:
        if not hasattr(self, "spec"):
            raise _Refused("numpy.dtype", "dtype state without a dtype")
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in _ENDIANS
                and state[2:] == (None, None, None, -1, -1, 0)):
            raise _Refused("numpy.dtype", f"dtype state {state!r:.120} is not what numpy writes for {self.spec}")
        dt = np.dtype(self.spec)
        self.dtype = dt.newbyteorder(state[1]) if state[1] in "<>" else dt

    def __repr__(self) -> str:
        return f"NumpyDtype({getattr(self, 'spec', None)!r})"


def _checked_dtype(glob: str, d: Any) -> np.dtype:
    if not isinstance(d, NumpyDtype) or getattr(d, "dtype", None) is None:
        raise _Refused(glob, f"expected a numeric numpy dtype, got {type(d).__name__}")
    d.used = True
    return d.dtype


class _NdarrayToken:
    """What the name ``numpy.ndarray`` resolves to: only a marker for :func:`_reconstruct`, never
    constructible (an attacker cannot allocate an array of any declared size through it)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _NdarrayToken:
        raise _Refused("numpy.ndarray", "arrays are only rebuilt through numpy's _reconstruct")


class CheckedArray(np.ndarray):
    """An array rebuilt from a checkpoint after its state was checked (shape, numeric dtype, byte
    count). It is a plain ``ndarray`` in every use and pickles as one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> CheckedArray:
        raise _Refused("numpy.ndarray", "arrays are only rebuilt through numpy's _reconstruct")

    def __setstate__(self, state: Any) -> None:
        glob = "numpy.ndarray"
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise _Refused(glob, f"array state {state!r:.120} is not what numpy writes")
        _, shape, dtype, fortran, raw = state
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise _Refused(glob, f"bad array shape {shape!r:.80}")
        dt = _checked_dtype(glob, dtype)
        if type(fortran) is not bool or not isinstance(raw, bytes):
            raise _Refused(glob, "array data must be bytes with a bool order flag")
        count = 1
        for n in shape:
            count *= n
        if count * dt.itemsize != len(raw):
            raise _Refused(glob, f"shape {shape} of {dt} needs {count * dt.itemsize} bytes, the data has {len(raw)}")
        super().__setstate__((1, shape, dt, fortran, raw))

    def __reduce__(self) -> Any:
        return np.asarray(self).__reduce__()

    def __repr__(self) -> str:
        return repr(np.asarray(self))


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> CheckedArray:
    if subtype is not _NdarrayToken or shape != (0,) or dtype != b"b":
        raise _Refused("numpy.core.multiarray._reconstruct", "only numpy's own (ndarray, (0,), b'b') form is allowed")
    return np.ndarray.__new__(CheckedArray, (0,), np.int8)


def _scalar(dtype: Any, data: Any = None) -> Any:
    dt = _checked_dtype("numpy.core.multiarray.scalar", dtype)
    if not isinstance(data, bytes) or len(data) != dt.itemsize:
        raise _Refused("numpy.core.multiarray.scalar", f"a {dt} scalar needs {dt.itemsize} bytes")
    return np.frombuffer(data, dtype=dt)[0]


# ------------------------------------------------------------------------------ argparse.Namespace

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CheckedNamespace(argparse.Namespace):
    """``argparse.Namespace`` from a checkpoint (fairseq's ``args``, ``cfg['model']``): its state must
    be a dict of plain attribute names (no ``__dunder__`` keys such as ``__reduce_ex__``, no
    ``(state, slotstate)`` pair that could set ``__class__``). Pickles as a plain Namespace."""

    def __setstate__(self, state: Any) -> None:
        if type(state) is not dict or not all(
                type(k) is str and _IDENTIFIER.fullmatch(k) and not k.startswith("__") for k in state):
            raise _Refused("argparse.Namespace", "its state must map plain attribute names to values")
        self.__dict__.update(state)

    def __reduce__(self) -> Any:
        return (argparse.Namespace, (), dict(vars(self)))

    def __repr__(self) -> str:
        return repr(argparse.Namespace(**vars(self)))


# ------------------------------------------------------------------------------ the allow-list


@dataclass(frozen=True)
class Allowed:
    """One global a checkpoint may reference: the name pickles use, what the unpickler gets for it,
    and why it is there."""

    name: str  # without a dot for objects no pickle can name (BUILD targets only)
    obj: Any
    why: str


def _omegaconf_entries() -> list[Allowed]:
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    why = ("an untyped omegaconf config: fairseq's load_checkpoint_to_cpu turns cfg into one before rank 0 "
           "broadcasts it, and fairseq master saved cfg as one from 2020-10-20 to 2021-03-03 (save_state)")
    out = [Allowed(f"{c.__module__}.{c.__qualname__}", c, why)
           for c in (DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode)]
    out += [Allowed("typing.Any", typing.Any, "key/element type of an untyped omegaconf config"),
            Allowed("typing.Dict", typing.Dict, "ref_type of a DictConfig that omegaconf >= 2.1 read from an "  # noqa: UP006
                    "omegaconf 2.0 pickle (a 2020-era cfg that rank 0 loaded and broadcasts)"),
            Allowed("builtins.dict", dict, "object type of a DictConfig"),
            Allowed("builtins.list", list, "object type of a ListConfig"),
            Allowed("builtins.int", int, "key type of a ListConfig (pickled as __builtin__.long)"),
            Allowed("collections.defaultdict", collections.defaultdict,
                    "omegaconf's per-config resolver cache (ContainerMetadata.resolver_cache)")]
    return out


def _numpy_entries() -> list[Allowed]:
    out = [Allowed("numpy.ndarray", _NdarrayToken, "marker argument of numpy's _reconstruct"),
           Allowed("numpy.dtype", NumpyDtype, "dtype of a numpy scalar or array (validated)"),
           Allowed("<numpy array rebuilt by mtkit>", CheckedArray, "what _reconstruct returns; the BUILD that "
                   "follows checks the array state (no pickle can name it)")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x, 2.x
        out += [Allowed(f"{module}._reconstruct", _reconstruct, "numpy array in extra_state (validated)"),
                Allowed(f"{module}.scalar", _scalar, "numpy scalar (older fairseq best/val_loss, meters; validated)")]
    return out


def allowed_globals() -> list[Allowed]:
    """Everything beyond torch's own weights-only set that a fairseq checkpoint may reference."""
    return [Allowed("argparse.Namespace", CheckedNamespace,
                    "args of fairseq <= 0.10 checkpoints, cfg['model'/'task'/...] of 0.12 checkpoints (validated)"),
            *_numpy_entries(), *_omegaconf_entries()]


ALLOWED: tuple[Allowed, ...] = tuple(allowed_globals())
ALLOWED_NAMES = frozenset(a.name for a in ALLOWED)

#: Only in what rank 0 broadcasts (fairseq's broadcast_object sends tensors separately).
BROADCAST_EXTRA = ("fairseq.distributed.utils._TensorPlaceholder",)


def _safe_globals(extra: tuple[str, ...] = ()) -> list[tuple[Any, str]]:
    out = [(a.obj, a.name) for a in ALLOWED]
    if extra:
        from fairseq.distributed.utils import _TensorPlaceholder

        known = {"fairseq.distributed.utils._TensorPlaceholder": _TensorPlaceholder}
        out += [(known[n], n) for n in extra]
    return out


# ------------------------------------------------------------------------------ trust


def trusted_by_env(path: str) -> bool:
    value = os.environ.get(TRUST_ENV, "")
    if not value:
        return False
    wanted = {os.path.realpath(p) for p in value.split(os.pathsep) if p}
    return os.path.realpath(path) in wanted


# ------------------------------------------------------------------------------ static scan (messages)

_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _py3_name(name: str) -> str:
    """Protocol-2 pickles name builtins ``__builtin__.x``; report the Python 3 name."""
    from _compat_pickle import NAME_MAPPING

    module, _, attr = name.rpartition(".")
    if (module, attr) in NAME_MAPPING:
        return ".".join(NAME_MAPPING[(module, attr)])
    return f"{_PY2_MODULES.get(module, module)}.{attr}" if module else name


def _globals_in_pickle(stream: IO[bytes]) -> set[str]:
    """Every global one pickle references, by static disassembly (nothing is executed).

    Handles GLOBAL and INST (module and name in the argument) and STACK_GLOBAL (module and name
    from the two preceding strings; a memo reference there is reported as ``<memo>``).
    """
    found: set[str] = set()
    recent: list[str] = []
    for opcode, arg, _pos in pickletools.genops(stream):
        if opcode.name in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
            found.add(_py3_name(f"{module}.{name}"))
        elif opcode.name == "STACK_GLOBAL":
            found.add(".".join(recent[-2:]) if len(recent) >= 2 else "<dynamic STACK_GLOBAL>")
        elif opcode.name.startswith("EXT"):
            found.add(f"<copyreg extension {arg}>")
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

        return set(wou._get_allowed_globals().keys())
    except Exception:  # noqa: BLE001 - private API; fall back to "nothing is pre-approved"
        return set()


def _scan(f: str | os.PathLike | IO[bytes], extra: tuple[str, ...] = ()) -> list[str]:
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
    safe = {_py3_name(n) for n in _torch_safe_names()} | set(ALLOWED_NAMES) | set(extra)
    return sorted(g for g in found if g not in safe)


def scan_globals(f: str | os.PathLike | IO[bytes]) -> list[str]:
    """Globals a checkpoint references that are neither torch-safe nor on our allow-list.

    A static scan of the pickle (``data.pkl`` of a zip checkpoint, or the leading pickles of the
    legacy format); nothing is executed. The weights-only unpickler enforces the same rule again
    while loading, so this scan is for the error message, not the only guard.
    """
    return _scan(f)


# ------------------------------------------------------------------------------ load / save


def _name_of(f: Any) -> str:
    if isinstance(f, (str, os.PathLike)):
        return str(f)
    return str(getattr(f, "name", "<stream>"))


def _warn_trusted(name: str) -> None:
    msg = (f"loading {name} with full unpickling (trusted checkpoint): it can run code; "
           "only do this for files whose origin you trust")
    warnings.warn(msg, stacklevel=3)
    logger.warning(msg)


def _load(f: Any, name: str, trust: bool, extra: tuple[str, ...], map_location: Any, kwargs: dict) -> Any:
    kwargs.pop("weights_only", None)
    if trust:
        _warn_trusted(name)
        return torch.load(f, map_location=map_location, weights_only=False, **kwargs)
    bad = _scan(f, extra)
    if bad:
        raise UnsafeCheckpointError(name, bad)
    dtypes: list[NumpyDtype] = []
    token = _load_scope.set(dtypes)
    try:
        with torch.serialization.safe_globals(_safe_globals(extra)):
            state = torch.load(f, map_location=map_location, weights_only=True, **kwargs)
    except _Refused as e:
        raise UnsafeCheckpointError(name, [e.glob], detail=e.why, misuse=True) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, AssertionError, RecursionError) as e:
        # an allowed global called or rebuilt with arguments nothing ever writes
        raise UnsafeCheckpointError(name, ["an allowed global"], detail=f"{type(e).__name__}: {e}"[:300],
                                    misuse=True) from None
    except pickle.UnpicklingError as e:
        text = str(e)
        m = re.search(r"GLOBAL ([\w.]+)", text)
        op = re.search(r"Unsupported operand (\d+)", text)
        if m:
            raise UnsafeCheckpointError(name, [m.group(1)]) from None
        if op:
            code = chr(int(op.group(1)))
            opname = next((o.name for o in pickletools.opcodes if o.code == code), op.group(1))
            raise UnsafeCheckpointError(name, [f"pickle opcode {opname}"], misuse=True,
                                        detail="torch.save never writes it") from None
        detail = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()[-300:]
        raise UnsafeCheckpointError(name, [], detail=detail) from None
    finally:
        _load_scope.reset(token)
    if any(not d.used for d in dtypes):
        raise UnsafeCheckpointError(name, ["numpy.dtype"], detail="a numpy dtype outside a numpy scalar or array",
                                    misuse=True)
    return state


def load(
    f: str | os.PathLike | IO[bytes],
    map_location: Any = "cpu",
    trust: bool = False,
    **kwargs: Any,
) -> Any:
    """Load a checkpoint with ``weights_only=True`` and the fairseq allow-list.

    ``trust=True`` (or the file named in ``MTKIT_TRUST_CHECKPOINT``) loads with full unpickling
    after a warning; only do this for files whose origin you trust.
    """
    name = _name_of(f)
    return _load(f, name, trust or trusted_by_env(name), (), map_location, kwargs)


# the checkpoint file whose state rank 0 is broadcasting (set on every rank by Trainer.load_checkpoint)
_broadcast_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("mtkit_broadcast_source", default=None)


@contextlib.contextmanager
def broadcasting_from(path: str | os.PathLike | None) -> Iterator[None]:
    """While fairseq's Trainer loads ``path`` (on rank 0) and broadcasts it, name it on every rank:
    the ranks that receive the state apply the same trust rule to it as rank 0 did to the file."""
    token = _broadcast_source.set(None if path is None else str(path))
    try:
        yield
    finally:
        _broadcast_source.reset(token)


def load_broadcast(buffer: IO[bytes], map_location: Any = "cpu", **kwargs: Any) -> Any:
    """What fairseq's ``broadcast_object`` sends to ranks > 0, read under the checkpoint allow-list
    (plus fairseq's ``_TensorPlaceholder``). Trusted only if the file being loaded is trusted by
    ``MTKIT_TRUST_CHECKPOINT`` (then rank 0 read it with full unpickling too)."""
    source = _broadcast_source.get()
    name = f"{source} (as broadcast by rank 0)" if source else "an object broadcast by rank 0"
    trust = source is not None and trusted_by_env(source)
    return _load(buffer, name, trust, BROADCAST_EXTRA, map_location, kwargs)


def save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def _fairseq_loader(f: Any, map_location: Any = None, **kwargs: Any) -> Any:
    if kwargs.get("weights_only") is False and not trusted_by_env(_name_of(f)):
        raise UnsafeCheckpointError(_name_of(f), [], detail="caller asked for weights_only=False")
    return load(f, map_location=map_location, **kwargs)


def _broadcast_loader(f: Any, map_location: Any = None, **kwargs: Any) -> Any:
    return load_broadcast(f, map_location=map_location, **kwargs)


class SafeTorch(types.ModuleType):
    """Stands in for ``torch`` inside one fairseq module (installed by :mod:`mtkit.patches`):
    ``load`` is a safe loader, everything else is torch itself."""

    def __init__(self, loader: Any = _fairseq_loader) -> None:
        super().__init__("torch")
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def load(self, f: Any, map_location: Any = None, **kwargs: Any) -> Any:
        return self._loader(f, map_location=map_location, **kwargs)
