"""The three scaling laws, each as pure functions of the parameters it is fitted in.

Every law is fitted on ``log y`` (Huber loss on log values, as Hoffmann et al. 2022 and Isik et al.
2024 do), so each law gives ``log_predict(theta, x)`` and its gradient in the *fitting*
parameterisation ``theta``, where the optimiser works well, and converts ``theta`` to the published
parameters (``E``, ``A``, ``B``, ``alpha``, ``beta``) and back.

``x`` is a dict of log inputs: ``x["d"] = log D`` and, for Chinchilla, ``x["n"] = log N``.

- ``ce``: L(D) = E + A / D^alpha. Fitted as log L = LSE(e, a - alpha log D) with E = exp(e),
  A = exp(a) (log-sum-exp form, so E and A stay positive and the objective is smooth).
- ``chinchilla``: L(N, D) = E + A / N^alpha + B / D^beta, fitted as
  log L = LSE(a - alpha log N, b - beta log D, e) (Hoffmann et al.'s form).
- ``bleu``: f(D) = (log(A * D^alpha))^beta (Isik et al. Eq. 1). log f = beta * log(u) with
  u = log A + alpha log D. Fitted with u = exp(c) + alpha (log D - x0), alpha >= 0, where x0 is the
  smallest log D of the fitting data (an anchor, not a parameter): u stays positive for every D at
  or above the data, so the objective is defined everywhere the optimiser goes, and c and alpha are
  far less correlated than log A and alpha (log D is ~20 for token counts). log A = exp(c) - alpha x0.

Each law also gives ``log_value(params, x)`` from the published parameters, independent of the
fitting form (the tests check that the two agree).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from mtkit.errors import InputError

Array = np.ndarray
X = dict[str, Array]


def _lse2(p: Array, q: Array) -> tuple[Array, Array]:
    """log(exp(p) + exp(q)) and the share of exp(p) in the sum, computed without overflow."""
    top = np.maximum(p, q)
    ep, eq = np.exp(p - top), np.exp(q - top)
    total = ep + eq
    return top + np.log(total), ep / total


# ------------------------------------------------------------------------- ce: E + A / D^alpha

def ce_log_predict(theta: Array, x: X) -> tuple[Array, Array]:
    """log L(D) and d log L / d theta (rows: e, a, alpha) for theta = (e, a, alpha)."""
    e, a, alpha = theta
    lse, w_a = _lse2(a - alpha * x["d"], np.full_like(x["d"], e))
    return lse, np.stack([1.0 - w_a, w_a, -w_a * x["d"]])


def ce_to_params(theta: Array, anchor: float) -> dict[str, float]:
    e, a, alpha = theta
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "alpha": float(alpha)}


def ce_log_value(p: dict[str, float], x: X) -> Array:
    """log L(D) straight from the published parameters."""
    return np.log(p["E"] + p["A"] * np.exp(-p["alpha"] * x["d"]))


def ce_grid(x: X, log_y: Array, coarse: bool = False) -> list[Array]:
    """Starts: for E at fractions of the smallest loss, (a, alpha) from the straight line
    log(y - E) = a - alpha log D; plus (unless ``coarse``) Hoffmann et al.'s style of grid
    e in {-1, -.5, .., 1}, a in {0, 5, .., 25}, alpha in {0, .5, .., 2}."""
    y = np.exp(log_y)
    starts = []
    for frac in (0.0, 0.5, 0.8, 0.9, 0.95, 0.99):
        e_val = frac * y.min()
        slope, intercept = np.polyfit(x["d"], np.log(y - e_val), 1)
        starts.append(np.array([np.log(max(e_val, 1e-3 * y.min())), intercept, -slope]))
    if not coarse:
        starts += [np.array(t, dtype=float) for t in product(
            np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.1, 5.0), np.arange(0.0, 2.01, 0.5))]
    return starts


# -------------------------------------------------------- chinchilla: E + A/N^alpha + B/D^beta

def chinchilla_log_predict(theta: Array, x: X) -> tuple[Array, Array]:
    """log L(N, D) and its gradient (rows: a, b, e, alpha, beta) for theta = (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = theta
    ta, tb = a - alpha * x["n"], b - beta * x["d"]
    top = np.maximum(np.maximum(ta, tb), e)
    ea, eb, ee = np.exp(ta - top), np.exp(tb - top), np.exp(e - top)
    total = ea + eb + ee
    w_a, w_b = ea / total, eb / total
    return top + np.log(total), np.stack([w_a, w_b, ee / total, -w_a * x["n"], -w_b * x["d"]])


def chinchilla_to_params(theta: Array, anchor: float) -> dict[str, float]:
    a, b, e, alpha, beta = theta
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
            "alpha": float(alpha), "beta": float(beta)}


def chinchilla_log_value(p: dict[str, float], x: X) -> Array:
    """log L(N, D) straight from the published parameters."""
    return np.log(p["E"] + p["A"] * np.exp(-p["alpha"] * x["n"]) + p["B"] * np.exp(-p["beta"] * x["d"]))


def chinchilla_grid(x: X, log_y: Array, coarse: bool = False) -> list[Array]:
    """Hoffmann et al.'s grid: alpha, beta in {0, .5, .., 2}, e in {-1, -.5, .., 1},
    a, b in {0, 5, .., 25} (4500 starts); ``coarse``: alpha, beta in {.25, .75}, e in {-.5, .5},
    a, b in {5, 15} (32 starts)."""
    if coarse:
        ab, ee, ch = (0.25, 0.75), (-0.5, 0.5), (5.0, 15.0)
    else:
        ab, ee, ch = np.arange(0.0, 2.01, 0.5), np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.1, 5.0)
    return [np.array((a, b, e, alpha, beta), dtype=float)
            for alpha, beta, e, a, b in product(ab, ab, ee, ch, ch)]


# ------------------------------------------------------------ bleu: (log(A * D^alpha))^beta

def bleu_inner(theta: Array, x: X, anchor: float) -> Array:
    """u = log(A * D^alpha) in the anchored form exp(c) + alpha (log D - anchor)."""
    c, alpha, _ = theta
    return np.exp(c) + alpha * (x["d"] - anchor)


def bleu_log_predict(theta: Array, x: X, anchor: float) -> tuple[Array, Array]:
    """log f(D) = beta log u and its gradient (rows: c, alpha, beta) for theta = (c, alpha, beta).

    Where u <= 0 (D below the data with alpha > 0) the law is undefined; the value there is nan.
    """
    c, alpha, beta = theta
    u = bleu_inner(theta, x, anchor)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_u = np.where(u > 0, np.log(np.where(u > 0, u, 1.0)), np.nan)
        grad = np.stack([beta * np.exp(c) / u, beta * (x["d"] - anchor) / u, log_u])
    return beta * log_u, grad


def bleu_to_params(theta: Array, anchor: float) -> dict[str, float]:
    c, alpha, beta = theta
    log_a = float(np.exp(c) - alpha * anchor)
    return {"A": float(np.exp(log_a)), "alpha": float(alpha), "beta": float(beta), "log_A": log_a}


def bleu_log_value(p: dict[str, float], x: X) -> Array:
    """log f(D) = beta log(log A + alpha log D) from the published parameters; nan where the
    inner logarithm is not positive (the law is undefined there)."""
    log_a = p["log_A"] if "log_A" in p else float(np.log(p["A"]))
    u = log_a + p["alpha"] * x["d"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(u > 0, p["beta"] * np.log(np.where(u > 0, u, 1.0)), np.nan)


def bleu_grid(x: X, log_y: Array, coarse: bool = False) -> list[Array]:
    """Starts: for beta in {1/4, 1/2, 1, 2, 4, 8}, u = BLEU^(1/beta) is a straight line in log D,
    fitted by least squares for exp(c) and alpha; plus (unless ``coarse``) a grid of u at the
    smallest D in {1, 3, 10, 30}, alpha in {0, .1, .3, 1, 3}, beta in {.5, 1, 2, 4}."""
    x0 = x["d"].min()
    starts = []
    for beta in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
        slope, intercept = np.polyfit(x["d"] - x0, np.exp(log_y / beta), 1)
        starts.append(np.array([np.log(max(intercept, 1e-3)), max(slope, 0.0), beta]))
    if not coarse:
        starts += [np.array((np.log(u0), alpha, beta)) for u0, alpha, beta in product(
            (1.0, 3.0, 10.0, 30.0), (0.0, 0.1, 0.3, 1.0, 3.0), (0.5, 1.0, 2.0, 4.0))]
    return starts


# ----------------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Law:
    """One scaling law: what it is called, how it is fitted and what it reports."""

    name: str
    formula: str
    params: tuple[str, ...]  # the published parameters, in report order
    fit_names: tuple[str, ...]  # the fitting parameterisation theta
    inputs: tuple[str, ...]  # "d" or ("n", "d")
    default_delta: float
    log_predict: Callable[[Array, X, float], tuple[Array, Array]]
    to_params: Callable[[Array, float], dict[str, float]]
    log_value: Callable[[dict[str, float], X], Array]
    grid: Callable[[X, Array, bool], list[Array]]
    bounds: tuple[tuple[float | None, float | None], ...] = field(default=())

    def predict(self, params: dict[str, float], d: Array, n: Array | None = None) -> Array:
        """y for the published parameters at the given D (and N)."""
        return np.exp(self.log_value(params, log_inputs(self, d, n)))

    @property
    def n_params(self) -> int:
        return len(self.fit_names)


def log_inputs(law: Law, d: Array, n: Array | None = None) -> X:
    x = {"d": np.log(np.asarray(d, dtype=float))}
    if "n" in law.inputs:
        if n is None:
            raise InputError(f"the {law.name} law needs N (model size) as well as D")
        x["n"] = np.log(np.asarray(n, dtype=float))
    return x


def _no_anchor(fn: Callable[[Array, X], tuple[Array, Array]]):
    def wrapped(theta: Array, x: X, anchor: float) -> tuple[Array, Array]:
        return fn(theta, x)
    return wrapped


LAWS: dict[str, Law] = {
    "bleu": Law(
        name="bleu", formula="BLEU(D) = (log(A * D^alpha))^beta",
        params=("A", "alpha", "beta"), fit_names=("c", "alpha", "beta"), inputs=("d",),
        default_delta=0.1, log_predict=bleu_log_predict, to_params=bleu_to_params,
        log_value=bleu_log_value, grid=bleu_grid,
        bounds=((None, None), (0.0, None), (None, None))),
    "ce": Law(
        name="ce", formula="L(D) = E + A / D^alpha",
        params=("E", "A", "alpha"), fit_names=("e", "a", "alpha"), inputs=("d",),
        default_delta=1e-3, log_predict=_no_anchor(ce_log_predict), to_params=ce_to_params,
        log_value=ce_log_value, grid=ce_grid),
    "chinchilla": Law(
        name="chinchilla", formula="L(N, D) = E + A / N^alpha + B / D^beta",
        params=("E", "A", "B", "alpha", "beta"), fit_names=("a", "b", "e", "alpha", "beta"),
        inputs=("n", "d"), default_delta=1e-3, log_predict=_no_anchor(chinchilla_log_predict),
        to_params=chinchilla_to_params, log_value=chinchilla_log_value, grid=chinchilla_grid),
}
