"""PNG of a fit: the runs, the fitted law and its bootstrap band, extended past the data.

matplotlib's object API on the Agg canvas (no pyplot state, no display needed).
"""
from __future__ import annotations

import io

import numpy as np

from mtkit.scaling.fit import Bootstrap, Fit
from mtkit.scaling.laws import LAWS, log_inputs
from mtkit.scaling.runs import Runs

MAX_N_CURVES = 6  # Chinchilla: one curve per model size, at most this many sizes drawn; with
# more sizes, curves at spread sizes and each run drawn in the colour of the nearest


def _curve(fit: Fit, theta: np.ndarray, d: np.ndarray, n: float | None) -> np.ndarray:
    law = LAWS[fit.law]
    x = log_inputs(law, d, None if n is None else np.full_like(d, n))
    return np.exp(law.log_predict(theta, x, fit.anchor)[0])


def fit_png(fit: Fit, runs: Runs, fit_idx: np.ndarray, boot: Bootstrap | None = None,
            extend: float = 4.0, level: float = 0.95) -> bytes:
    """The runs (fitted: filled; held out: open), the fit from the smallest D to ``extend`` times
    the largest, and the ``level`` band of the bootstrap fits where there are any."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    law = LAWS[fit.law]
    held = np.setdiff1d(np.arange(len(runs)), fit_idx)
    d_lo, d_hi = float(runs.d.min()), float(runs.d.max()) * extend
    grid = np.geomspace(d_lo, d_hi, 200)
    sizes: list[float | None] = [None]
    nearest = np.zeros(len(runs), dtype=int)  # which curve each run is drawn with
    if runs.n is not None:
        distinct = np.unique(runs.n)
        if len(distinct) > MAX_N_CURVES:  # e.g. every run its own N: curves at spread sizes
            distinct = np.geomspace(distinct.min(), distinct.max(), MAX_N_CURVES)
        sizes = list(distinct)
        nearest = np.abs(np.log(runs.n)[:, None] - np.log(distinct)[None, :]).argmin(axis=1)
    fig = Figure(figsize=(7.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = [f"C{i}" for i in range(len(sizes))]
    for i, (size, colour) in enumerate(zip(sizes, colours)):
        pick = np.where(nearest == i)[0]
        f_pick, h_pick = np.intersect1d(pick, fit_idx), np.intersect1d(pick, held)
        ax.scatter(runs.d[f_pick], runs.y[f_pick], color=colour, s=18, zorder=3)
        ax.scatter(runs.d[h_pick], runs.y[h_pick], facecolors="none", edgecolors=colour, s=30,
                   zorder=3)
        ax.plot(grid, _curve(fit, np.asarray(fit.theta), grid, size), color=colour, lw=1.5,
                label="fit" if size is None else f"N={size:.3g}")
        if boot is not None and boot.thetas:
            curves = np.array([_curve(fit, np.asarray(t), grid, size) for t in boot.thetas])
            tail = (1 - level) / 2 * 100
            lo, hi = np.nanpercentile(curves, [tail, 100 - tail], axis=0)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.2, lw=0)
    ax.axvline(float(runs.d[fit_idx].max()), color="grey", ls=":", lw=1)
    ax.axvspan(float(runs.d[fit_idx].max()), d_hi, color="grey", alpha=0.07, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel(f"D ({runs.columns['d']})")
    ax.set_ylabel(runs.columns["y"])
    band = f", {level:.0%} bootstrap band ({boot.resamples} fits)" if boot else ""
    ax.set_title(f"{law.formula}: fit on {len(fit_idx)} runs{band}; shaded: extrapolation",
                 fontsize=9)
    ax.scatter([], [], color="grey", s=18, label="fitted runs")
    ax.scatter([], [], facecolors="none", edgecolors="grey", s=30, label="held-out runs")
    binned = runs.n is not None and not np.isin(sizes, runs.n).all()
    ax.legend(fontsize=7, frameon=False, ncol=2 if len(sizes) > 2 else 1,
              title="runs in the colour of the nearest N" if binned else None, title_fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()
