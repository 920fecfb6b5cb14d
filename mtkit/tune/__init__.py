"""`mtkit tune`: Population Based Training, PB2 and grid / random sweeps of fairseq runs on Ray Tune.

Python API (Ray is imported only when an experiment runs)::

    from mtkit.tune import TuneSpec, run, run_configs, load_space
    # a sweep: every configuration for 2000 updates, results table back
    res = run_configs(["data-bin", "--arch", "transformer", ...],
                      {"lr": [5e-4, 1e-3], "seed": [1, 2, 3]}, updates=2000, out="runs/sweep")
    for row in res.final: print(row["hp"], row["fitness"])
    # PBT
    spec = TuneSpec(train_args=[...], out="runs/pbt", budget=4000, interval=500,
                    space=load_space("space.yaml").to_dict())
    res = run(spec)

Modules: :mod:`~mtkit.tune.space` (search-space files), :mod:`~mtkit.tune.fairseq_run` (one
fairseq-train interval), :mod:`~mtkit.tune.fitness`, :mod:`~mtkit.tune.trial` (the trainable),
:mod:`~mtkit.tune.schedulers`, :mod:`~mtkit.tune.outputs` / :mod:`~mtkit.tune.plots`,
:mod:`~mtkit.tune.runner`. See docs/tune.md.
"""
from __future__ import annotations

import importlib
from typing import Any

from mtkit.tune.schedulers import SchedulerOptions
from mtkit.tune.space import SearchSpace, load_space, parse_space

_RUNNER = ("TuneResult", "TuneSpec", "grid_configs", "load_spec", "read_rows", "run", "run_configs",
           "write_results")
__all__ = ["SchedulerOptions", "SearchSpace", "load_space", "parse_space", *_RUNNER]


def __getattr__(name: str) -> Any:
    if name in _RUNNER:  # imports Ray
        return getattr(importlib.import_module("mtkit.tune.runner"), name)
    raise AttributeError(f"module 'mtkit.tune' has no attribute {name!r}")
