"""Search spaces for `mtkit tune`: a YAML or JSON file mapping fairseq options to distributions.

Each key is a fairseq-train option without its leading dashes (``lr``, ``dropout``,
``attention-dropout``, ``warmup-updates``, ``seed``, ...); each value is a constant or a one-key
mapping that names a distribution::

    lr: {loguniform: [1.0e-4, 3.0e-3]}
    dropout: {uniform: [0.0, 0.3]}
    attention-dropout: {choice: [0.0, 0.1, 0.2]}
    warmup-updates: {randint: [100, 1000]}     # integers, high bound excluded (as Ray Tune)
    seed: {grid: [1, 2, 3]}                    # every value, crossed with the other grid axes
    label-smoothing: 0.1                       # a constant, passed to every trial

This module only parses and checks; it does not import Ray. :meth:`SearchSpace.param_space`,
:meth:`SearchSpace.mutations` and :meth:`SearchSpace.bounds` turn it into what Ray Tune's Tuner, PBT
and PB2 take.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtkit.errors import InputError

KINDS = ("const", "uniform", "loguniform", "randint", "choice", "grid")
_OPTION = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# options that mtkit tune sets itself for every interval; a search space may not vary them
RESERVED = frozenset({
    "save-dir", "restore-file", "max-update", "max-epoch", "stop-time-hours", "log-format",
    "log-file", "no-save", "save-interval", "save-interval-updates", "validate-interval",
    "validate-interval-updates", "reset-optimizer", "reset-lr-scheduler", "reset-dataloader",
    "reset-meters", "optimizer-overrides", "user-dir",
})


@dataclass(frozen=True)
class Param:
    """One searched fairseq option: ``kind`` is one of :data:`KINDS`; ``values`` its arguments."""

    name: str
    kind: str
    values: tuple[Any, ...]

    @property
    def continuous(self) -> bool:
        return self.kind in ("uniform", "loguniform", "randint")

    @property
    def low(self) -> float:
        return float(self.values[0])

    @property
    def high(self) -> float:
        return float(self.values[1])

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this parameter's support (bounds inclusive for ranges)."""
        if self.kind in ("uniform", "loguniform"):
            return self.low * (1 - 1e-9) <= float(value) <= self.high * (1 + 1e-9)
        if self.kind == "randint":
            return self.low <= int(value) < self.high
        return value in self.values


@dataclass
class SearchSpace:
    params: dict[str, Param] = field(default_factory=dict)
    source: str = "<dict>"

    @property
    def searched(self) -> list[Param]:
        return [p for p in self.params.values() if p.kind != "const"]

    @property
    def mutable(self) -> list[Param]:
        """Parameters PBT may perturb or resample (grid axes and constants stay fixed)."""
        return [p for p in self.params.values() if p.kind not in ("const", "grid")]

    @property
    def grid_size(self) -> int:
        return math.prod(len(p.values) for p in self.params.values() if p.kind == "grid")

    def to_dict(self) -> dict[str, Any]:
        """The file form (round-trips through :func:`parse_space`)."""
        return {p.name: (p.values[0] if p.kind == "const" else {p.kind: list(p.values)})
                for p in self.params.values()}

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` starting configurations of the sampled parameters, reproducible from ``seed``.

        Searches that should start from the same members (PBT vs random search) get the same list.
        Grid axes and constants are left to :meth:`param_space`.
        """
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            point: dict[str, Any] = {}
            for p in self.mutable:
                if p.kind == "uniform":
                    point[p.name] = rng.uniform(p.low, p.high)
                elif p.kind == "loguniform":
                    point[p.name] = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
                elif p.kind == "randint":
                    point[p.name] = rng.randrange(int(p.low), int(p.high))
                else:
                    point[p.name] = rng.choice(p.values)
            out.append(point)
        return out

    def param_space(self) -> dict[str, Any]:
        """Ray Tune's ``param_space``: Domains for sampled parameters, grid_search for grid axes."""
        from ray import tune

        out: dict[str, Any] = {}
        for p in self.params.values():
            if p.kind == "const":
                out[p.name] = p.values[0]
            elif p.kind == "grid":
                out[p.name] = tune.grid_search(list(p.values))
            elif p.kind == "choice":
                out[p.name] = tune.choice(list(p.values))
            else:
                out[p.name] = getattr(tune, p.kind)(*p.values)
        return out

    def mutations(self) -> dict[str, Any]:
        """PBT's ``hyperparam_mutations``.

        Ranges become Domains (perturbed by the factors, resampled with the resample probability);
        a ``choice`` becomes a list, so PBT moves to a neighbouring value or resamples (Ray treats
        a list as ordered, as the paper does for discrete values).
        """
        from ray import tune

        out: dict[str, Any] = {}
        for p in self.mutable:
            out[p.name] = list(p.values) if p.kind == "choice" else getattr(tune, p.kind)(*p.values)
        return out

    def bounds(self) -> dict[str, list[float]]:
        """PB2's ``hyperparam_bounds`` (continuous parameters only)."""
        bad = [p.name for p in self.mutable if not p.continuous]
        if bad:
            raise InputError(f"PB2 explores continuous ranges only; {', '.join(bad)} in {self.source} "
                             "is a choice: make it uniform/loguniform/randint, a grid axis or a constant")
        return {p.name: [p.low, p.high] for p in self.mutable}


def _number(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise InputError(f"{where}: {x!r} is not a number")
    return float(x)


def _parse_param(name: str, spec: Any, where: str) -> Param:
    if not isinstance(name, str) or not _OPTION.match(name):
        raise InputError(f"{where}: {name!r} is not a fairseq option name (write e.g. 'attention-dropout', "
                         "without the leading dashes)")
    if name in RESERVED:
        raise InputError(f"{where}: --{name} is set by mtkit tune for every interval and cannot be searched")
    if not isinstance(spec, dict):
        if isinstance(spec, (list, tuple)):
            raise InputError(f"{where}: {name}: a list is ambiguous; write {{choice: [...]}} or {{grid: [...]}}")
        return Param(name, "const", (spec,))
    if len(spec) != 1:
        raise InputError(f"{where}: {name}: give exactly one of {', '.join(KINDS[1:])}, not {sorted(spec)}")
    kind, args = next(iter(spec.items()))
    if kind not in KINDS[1:]:
        raise InputError(f"{where}: {name}: unknown distribution {kind!r}; use one of {', '.join(KINDS[1:])}")
    if not isinstance(args, (list, tuple)) or not args:
        raise InputError(f"{where}: {name}: {kind} takes a non-empty list")
    if kind in ("choice", "grid"):
        return Param(name, kind, tuple(args))
    if len(args) != 2:
        raise InputError(f"{where}: {name}: {kind} takes [low, high], not {args!r}")
    low, high = (_number(a, f"{where}: {name}") for a in args)
    if not low < high:
        raise InputError(f"{where}: {name}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise InputError(f"{where}: {name}: loguniform needs a positive low bound, got {low}")
    if kind == "randint":
        if low != int(low) or high != int(high):
            raise InputError(f"{where}: {name}: randint takes integer bounds, got [{low}, {high}]")
        return Param(name, kind, (int(low), int(high)))
    return Param(name, kind, (low, high))


def parse_space(data: Any, source: str = "<dict>") -> SearchSpace:
    """Check a search space given as a mapping (the content of a YAML/JSON file)."""
    if not isinstance(data, dict) or not data:
        raise InputError(f"{source}: a search space is a non-empty mapping of fairseq option -> distribution")
    return SearchSpace({n: _parse_param(n, s, source) for n, s in data.items()}, source)


def load_space(path: str | os.PathLike) -> SearchSpace:
    """Read a ``.yaml``/``.yml`` or ``.json`` search-space file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"search space {p}: {e.strerror}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (ValueError, ImportError) as e:
        raise InputError(f"search space {p} is not valid {p.suffix.lstrip('.') or 'YAML'}: {e}") from None
    except Exception as e:  # yaml.YAMLError does not derive from ValueError
        raise InputError(f"search space {p} is not valid YAML: {e}") from None
    return parse_space(data, str(p))
