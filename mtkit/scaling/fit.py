"""Fitting a scaling law as the papers do: Huber loss on log values, L-BFGS-B from a grid of
starting points, the best fit kept; bootstrap intervals; errors on held-out (larger-D) runs.

Everything here is plain numpy + scipy and works on arrays, so it can be called from Python without
the CLI (:func:`fit_law`, :func:`bootstrap`, :func:`held_out_errors`).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtkit.errors import InputError
from mtkit.scaling.laws import LAWS, Law, X, log_inputs

log = logging.getLogger(__name__)

Array = np.ndarray

# L-BFGS-B's default projected-gradient tolerance is absolute, while a Huber sum with a small delta
# is itself tiny, so with the defaults some starts stop before they converge (Besiroglu et al. 2024
# name a poor loss scale as one reason Hoffmann et al.'s optimiser stopped early). These are tight.
LBFGSB_OPTIONS = {"maxiter": 1000, "maxfun": 5000, "ftol": 1e-12, "gtol": 1e-9}


def huber(r: Array, delta: float) -> tuple[Array, Array]:
    """Huber loss of each residual and its derivative: r^2/2 inside |r| <= delta, linear outside."""
    slope = np.clip(r, -delta, delta)
    return slope * (r - 0.5 * slope), slope


def objective(theta: Array, law: Law, x: X, log_y: Array, delta: float,
              anchor: float) -> tuple[float, Array]:
    """Sum over runs of Huber(log y - log prediction), and its gradient in ``theta``."""
    pred, grad = law.log_predict(theta, x, anchor)
    loss, slope = huber(log_y - pred, delta)
    total = float(loss.sum())
    if not math.isfinite(total):
        return math.inf, np.zeros_like(theta)
    return total, -(grad @ slope)


@dataclass
class Fit:
    """The best fit of one law to a set of runs."""

    law: str
    params: dict[str, float]
    loss: float  # the minimised Huber sum
    n_points: int
    delta: float
    theta: list[float]  # the fitting parameterisation (see mtkit.scaling.laws)
    anchor: float
    starts: int
    converged: int  # starts whose L-BFGS-B run reported success
    start_of_best: list[float] = field(default_factory=list)


def _minimise(law: Law, theta0: Array, x: X, log_y: Array, delta: float, anchor: float):
    # scipy.optimize is imported before the limit is set, so that its BLAS is limited too
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    # one BLAS thread: scipy >= 1.15's L-BFGS-B makes tiny BLAS calls that wait on idle OpenBLAS
    # threads, many times slower on a machine whose other cores are busy (scipy issue #23191)
    with threadpool_limits(limits=1, user_api="blas"):
        return minimize(objective, theta0, args=(law, x, log_y, delta, anchor), jac=True,
                        method="L-BFGS-B", bounds=law.bounds or None, options=LBFGSB_OPTIONS)


def fit_law(law: Law | str, d: Sequence[float], y: Sequence[float],
            n: Sequence[float] | None = None, delta: float | None = None,
            starts: Sequence[Array] | None = None, anchor: float | None = None,
            coarse: bool = False, progress: bool = False) -> Fit:
    """Fit ``law`` to runs (D, [N,] y) from every start of its grid; keep the lowest loss.

    ``starts`` replaces the law's grid (fitting parameterisation; ``coarse`` picks its smaller
    grid); ``anchor`` fixes the BLEU law's reference log D (default: the smallest log D of these
    runs).
    """
    law = LAWS[law] if isinstance(law, str) else law
    delta = law.default_delta if delta is None else float(delta)
    x = log_inputs(law, d, n)
    log_y = np.log(np.asarray(y, dtype=float))
    anchor = float(x["d"].min()) if anchor is None else anchor
    starts = law.grid(x, log_y, coarse) if starts is None else [np.asarray(s, dtype=float) for s in starts]
    from tqdm import tqdm

    best, best_start, converged = None, None, 0
    for theta0 in tqdm(starts, desc=f"fit {law.name}", unit="start", disable=not progress,
                       leave=False):
        if not math.isfinite(objective(theta0, law, x, log_y, delta, anchor)[0]):
            continue
        res = _minimise(law, theta0, x, log_y, delta, anchor)
        converged += bool(res.success)
        if math.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best, best_start = res, theta0
    if best is None:
        raise InputError(f"the {law.name} law could not be fitted: no starting point gives a "
                         "finite loss on these runs")
    return Fit(law=law.name, params=law.to_params(best.x, anchor), loss=float(best.fun),
               n_points=len(log_y), delta=delta, theta=[float(v) for v in best.x], anchor=anchor,
               starts=len(starts), converged=converged,
               start_of_best=[float(v) for v in best_start])


@dataclass
class Bootstrap:
    """Parameter estimates refitted on resampled runs; percentile intervals."""

    samples: dict[str, list[float]]  # parameter -> one estimate per resample
    intervals: dict[str, tuple[float | None, float | None]]  # None: undetermined (non-finite)
    level: float
    resamples: int
    thetas: list[list[float]]


def _finite(v: float) -> float | None:
    """A bound, or None where the resampled estimates run off to infinity (e.g. A = exp(log A)
    overflowing for a degenerate fit): such an interval is undetermined, not a number."""
    v = float(v)
    return v if math.isfinite(v) else None


def bootstrap(fit: Fit, d: Sequence[float], y: Sequence[float], n: Sequence[float] | None = None,
              resamples: int = 200, level: float = 0.95, seed: int = 0,
              progress: bool = False) -> Bootstrap:
    """Resample the runs with replacement, refit from the best fit's parameters, and give
    percentile intervals for every parameter.

    A resample with fewer distinct runs than the law has parameters cannot identify them; it is
    drawn again.
    """
    from tqdm import tqdm

    law = LAWS[fit.law]
    d, y = np.asarray(d, dtype=float), np.asarray(y, dtype=float)
    n = None if n is None else np.asarray(n, dtype=float)
    rng = np.random.default_rng(seed)
    start = np.asarray(fit.theta)
    samples: dict[str, list[float]] = {p: [] for p in law.params}
    thetas: list[list[float]] = []
    for _ in tqdm(range(resamples), desc=f"bootstrap {law.name}", unit="fit",
                  disable=not progress):
        idx = rng.integers(0, len(d), len(d))
        while len(np.unique(idx)) < law.n_params:
            idx = rng.integers(0, len(d), len(d))
        b = fit_law(law, d[idx], y[idx], None if n is None else n[idx], delta=fit.delta,
                    starts=[start], anchor=fit.anchor)
        thetas.append(b.theta)
        for p in law.params:
            samples[p].append(b.params[p])
    tail = (1.0 - level) / 2.0 * 100.0
    intervals = {p: (_finite(np.percentile(v, tail)), _finite(np.percentile(v, 100.0 - tail)))
                 for p, v in samples.items()}
    return Bootstrap(samples=samples, intervals=intervals, level=level, resamples=resamples,
                     thetas=thetas)


def held_out_errors(fit: Fit, d: Sequence[float], y: Sequence[float],
                    n: Sequence[float] | None = None) -> dict[str, Any]:
    """Prediction errors of ``fit`` on runs it was not fitted on.

    Per run: observed, predicted, absolute and relative error, and the log residual; overall: mean
    and max absolute error, mean relative error and the Huber loss of the log residuals (the
    measure the fit minimised, with the same delta).
    """
    law = LAWS[fit.law]
    d, y = np.asarray(d, dtype=float), np.asarray(y, dtype=float)
    x = log_inputs(law, d, n)
    pred = np.exp(law.log_predict(np.asarray(fit.theta), x, fit.anchor)[0])
    err = pred - y
    points = []
    for i in range(len(y)):
        row = {"d": float(d[i]), "observed": float(y[i]), "predicted": float(pred[i]),
               "abs_error": float(abs(err[i])), "rel_error": float(abs(err[i]) / y[i])}
        if n is not None:
            row = {"n": float(np.asarray(n)[i]), **row}
        points.append(row)
    return {
        "n": len(y),
        "mean_abs_error": float(np.mean(np.abs(err))),
        "max_abs_error": float(np.max(np.abs(err))),
        "mean_rel_error": float(np.mean(np.abs(err) / y)),
        "huber_log": float(huber(np.log(y) - np.log(pred), fit.delta)[0].sum()),
        "points": points,
    }
