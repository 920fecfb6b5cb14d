"""Ray Tune schedulers and search for `mtkit tune`: PBT, PB2, grid and random search (+ ASHA).

PBT defaults follow Jaderberg et al. (2017): truncation selection of the bottom / top 20 %
(``quantile_fraction=0.2``; Ray's own default is 0.25), explore by ×0.8 / ×1.2, resample with
probability 0.25, members ready every ``perturbation_interval`` updates (``time_attr`` is the
``updates`` each trial reports).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtkit.errors import InputError
from mtkit.tune.space import SearchSpace

SCHEDULERS = ("pbt", "pb2", "grid", "random")
TIME_ATTR = "updates"


@dataclass
class SchedulerOptions:
    name: str = "pbt"
    perturbation_interval: int | None = None  # updates; default: the report interval
    quantile_fraction: float = 0.2
    resample_probability: float = 0.25
    perturbation_factors: tuple[float, float] = (1.2, 0.8)
    burn_in: int = 0  # updates before the first perturbation
    synch: bool = False
    asha: bool = False
    grace_period: int | None = None  # updates before ASHA may stop a trial; default: one interval
    reduction_factor: float = 3.0

    def check(self, space: SearchSpace, interval: int, budget: int) -> None:
        if self.name not in SCHEDULERS:
            raise InputError(f"unknown scheduler {self.name!r}: choose from {', '.join(SCHEDULERS)}")
        if not 0 < self.quantile_fraction <= 0.5:
            raise InputError(f"--quantile-fraction must be in (0, 0.5], not {self.quantile_fraction}")
        if not 0 <= self.resample_probability <= 1:
            raise InputError(f"--resample-probability must be in [0, 1], not {self.resample_probability}")
        pi = self.perturbation_interval or interval
        if pi % interval:
            raise InputError(f"--perturbation-interval {pi} must be a multiple of --interval {interval} "
                             "(members report, and so can be exploited, once per interval)")
        if self.name in ("pbt", "pb2"):
            if not space.mutable:
                raise InputError(f"{self.name} needs at least one sampled parameter (uniform, loguniform, "
                                 f"randint or choice) in {space.source} to explore")
            if pi >= budget:
                raise InputError(f"--perturbation-interval {pi} must be below the budget of {budget} updates, "
                                 "or PBT never exploits")
            if self.asha:
                raise InputError("--asha combines with grid or random search, not with PBT/PB2")


def make_scheduler(opts: SchedulerOptions, space: SearchSpace, interval: int, budget: int) -> Any:
    """The Ray Tune scheduler object (``None`` for plain grid / random search without ASHA).

    Metric and mode are given to the TuneConfig, not here.
    """
    opts.check(space, interval, budget)
    pi = opts.perturbation_interval or interval
    if opts.name == "pbt":
        from ray.tune.schedulers import PopulationBasedTraining

        return PopulationBasedTraining(
            time_attr=TIME_ATTR, perturbation_interval=pi, burn_in_period=opts.burn_in,
            hyperparam_mutations=space.mutations(), quantile_fraction=opts.quantile_fraction,
            resample_probability=opts.resample_probability,
            perturbation_factors=tuple(opts.perturbation_factors), synch=opts.synch)
    if opts.name == "pb2":
        from ray.tune.schedulers.pb2 import PB2

        return PB2(time_attr=TIME_ATTR, perturbation_interval=pi, hyperparam_bounds=space.bounds(),
                   quantile_fraction=opts.quantile_fraction, synch=opts.synch)
    if opts.asha:
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr=TIME_ATTR, max_t=budget, grace_period=opts.grace_period or interval,
                             reduction_factor=opts.reduction_factor)
    return None
