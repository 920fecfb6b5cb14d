"""Runs drawn from a law with known parameters, for checking that the fitter recovers them.

The cases below are the ones the tests and ``benchmarks/scaling/synthetic_recovery.py`` use: the
parameters are of the size the papers report, the designs are what a small sweep would have, and the
noise is multiplicative (log-normal), as the fit works on log y.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtkit.scaling.laws import LAWS


@dataclass(frozen=True)
class Case:
    """A law, its true parameters, where the runs are (D, and N for Chinchilla) and the noise."""

    law: str
    params: dict[str, float]
    d: tuple[float, ...]
    n: tuple[float, ...] | None = None  # Chinchilla: every N is crossed with every D
    noise: float = 0.01  # standard deviation of the log-normal factor on y

    def design(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self.n is None:
            return np.asarray(self.d, dtype=float), None
        nn, dd = np.meshgrid(np.asarray(self.n, dtype=float), np.asarray(self.d, dtype=float))
        return dd.ravel(), nn.ravel()


def draw(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(D, y, N) for ``case``: the law's values times exp(noise * standard normal)."""
    d, n = case.design()
    clean = LAWS[case.law].predict(case.params, d, n)
    rng = np.random.default_rng(seed)
    return d, clean * np.exp(case.noise * rng.standard_normal(len(d))), n


def true_value(law: str, params: dict[str, float], name: str) -> float:
    """A parameter of ``params`` as the fit reports it (the BLEU law's A from its log_A)."""
    if law == "bleu" and name == "A" and "A" not in params:
        return float(np.exp(params["log_A"]))
    return float(params[name])


CASES: dict[str, Case] = {
    # BLEU from ~5 at 1e7 tokens to ~15 at 1e10: u = log A + alpha log D runs from 2.5 to 4.6.
    "bleu": Case("bleu", {"log_A": 2.5 - 0.3 * np.log(1e7), "alpha": 0.3, "beta": 1.8},
                 d=tuple(np.geomspace(1e7, 1e10, 10)), noise=0.005),
    # downstream cross-entropy from ~3.6 to ~1.85 over the same D.
    "ce": Case("ce", {"E": 1.6, "A": 250.0, "alpha": 0.3},
               d=tuple(np.geomspace(1e7, 1e10, 10)), noise=0.002),
    # Hoffmann et al.'s published estimates on a 5 x 6 grid of N and D.
    "chinchilla": Case("chinchilla", {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34,
                                      "beta": 0.28},
                       d=tuple(np.geomspace(1e8, 1e11, 6)), n=tuple(np.geomspace(1e7, 1e9, 5)),
                       noise=0.002),
}
