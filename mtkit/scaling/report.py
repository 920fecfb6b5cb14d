"""One call from runs to a report: fit (on the K smallest-D runs), held-out errors, bootstrap
intervals; and the report as a text table. The CLI prints what these return."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from mtkit.errors import InputError
from mtkit.scaling.fit import Bootstrap, Fit, bootstrap, fit_law, held_out_errors
from mtkit.scaling.laws import LAWS, Law
from mtkit.scaling.runs import Runs


def get_law(name: str) -> Law:
    try:
        return LAWS[name]
    except KeyError:
        raise InputError(f"unknown law {name!r}: choose one of {', '.join(LAWS)}") from None


def check_inputs(law: Law, runs: Runs) -> None:
    """The law's inputs are there (N for Chinchilla only)."""
    if "n" in law.inputs and runs.n is None:
        raise InputError(f"the {law.name} law needs the model size N: name its column with --n")
    if "n" not in law.inputs and runs.n is not None:
        raise InputError(f"the {law.name} law depends on D only; --n is for the chinchilla law")


def smallest_d(runs: Runs, k: int | None, law: Law) -> np.ndarray:
    """Indices of the ``k`` runs with the smallest D (all runs when ``k`` is None), checked to be
    enough to fit the law's parameters."""
    total = len(runs)
    k = total if k is None else k
    if not 0 < k <= total:
        raise InputError(f"{runs.path}: --fit-on {k} but the file has {total} runs")
    idx = np.sort(np.argsort(runs.d, kind="stable")[:k])
    need = law.n_params + 1
    if k < need:
        where = f"--fit-on {k}" if k < total else f"{runs.path} has {total} runs"
        raise InputError(f"too few runs to fit: {where}, and the {law.name} law has "
                         f"{law.n_params} parameters; fit on at least {need} runs")
    points = runs.d[idx, None] if runs.n is None else np.stack([runs.d[idx], runs.n[idx]], 1)
    distinct = len(np.unique(points, axis=0))
    if distinct < law.n_params:
        raise InputError(f"{runs.path}: the runs to fit have only {distinct} distinct "
                         f"D{'/N' if runs.n is not None else ''} values; the {law.name} law needs "
                         f"at least {law.n_params}")
    return idx


def fit_runs(runs: Runs, law_name: str, fit_on: int | None = None, resamples: int = 0,
             delta: float | None = None, seed: int = 0, level: float = 0.95,
             coarse: bool = False, progress: bool = False) -> tuple[dict[str, Any], Fit, Bootstrap | None, np.ndarray]:
    """Fit ``law_name`` to ``runs`` and build the report (a JSON-ready dict).

    Returns the report, the fit, the bootstrap (None when ``resamples`` is 0) and the indices of
    the fitted runs.
    """
    law = get_law(law_name)
    check_inputs(law, runs)
    if delta is not None and not delta > 0:
        raise InputError(f"--huber-delta must be > 0, got {delta}")
    if resamples < 0:
        raise InputError(f"--bootstrap must be >= 0, got {resamples}")
    idx = smallest_d(runs, fit_on, law)
    part = runs.subset(idx)
    fit = fit_law(law, part.d, part.y, part.n, delta=delta, coarse=coarse, progress=progress)
    boot = (bootstrap(fit, part.d, part.y, part.n, resamples=resamples, level=level, seed=seed,
                      progress=progress) if resamples else None)
    held = np.setdiff1d(np.arange(len(runs)), idx)
    out = runs.subset(held)
    report: dict[str, Any] = {
        "law": law.name,
        "formula": law.formula,
        "input": runs.path,
        "columns": runs.columns,
        "n_runs": len(runs),
        "n_fit": len(idx),
        "fit_on": fit_on,
        "huber_delta": fit.delta,
        "grid": "coarse" if coarse else "full",
        "starts": fit.starts,
        "converged_starts": fit.converged,
        "params": fit.params,
        "loss": fit.loss,
        "bootstrap": None if boot is None else {
            "resamples": boot.resamples, "level": boot.level, "seed": seed,
            "intervals": {p: list(v) for p, v in boot.intervals.items()}},
        "held_out": held_out_errors(fit, out.d, out.y, out.n) if len(held) else None,
    }
    return json_safe(report), fit, boot, idx


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (a prediction where the BLEU law is undefined, a bound of
    a degenerate fit) as None, so that the report is strict JSON (null, never NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.floating):
        return json_safe(float(obj))
    return obj


def _g(v: float | None) -> str:
    return "undetermined" if v is None else f"{v:.6g}"


def format_report(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    law = LAWS[report["law"]]
    boot = report["bootstrap"]
    lines = [
        f"{law.name} law   {report['formula']}",
        f"runs: {report['n_runs']} in {report['input']}; fitted on "
        + ("all" if report["n_fit"] == report["n_runs"] else f"the {report['n_fit']} smallest-D")
        + f" | Huber delta {_g(report['huber_delta'])} on log y | L-BFGS-B from "
        f"{report['starts']} starts, best kept",
        f"fit loss (Huber sum): {_g(report['loss'])}",
        "",
    ]
    head = f"   {boot['level']:.0%} interval ({boot['resamples']} bootstrap fits)" if boot else ""
    lines.append(f"{'parameter':<10} {'estimate':>12}{head}")
    for p in law.params:
        iv = boot["intervals"][p] if boot else None
        lines.append(f"{p:<10} {_g(report['params'][p]):>12}"
                     + (f"   [{_g(iv[0])}, {_g(iv[1])}]" if iv else ""))
    held = report["held_out"]
    if held:
        lines += ["", f"held out: {held['n']} runs with larger D"]
        cols = (["n"] if "n" in law.inputs else []) + ["d", "observed", "predicted", "abs_error",
                                                        "rel_error"]
        names = {"n": "N", "d": "D", "abs_error": "abs error", "rel_error": "rel error"}
        lines.append("  ".join(f"{names.get(c, c):>12}" for c in cols))
        for point in held["points"]:
            lines.append("  ".join(f"{_g(point[c]):>12}" for c in cols))
        lines.append(f"mean abs error {_g(held['mean_abs_error'])} | max abs error "
                     f"{_g(held['max_abs_error'])} | mean rel error "
                     f"{'undetermined' if held['mean_rel_error'] is None else format(held['mean_rel_error'], '.3%')} "
                     f"| Huber of log residuals {_g(held['huber_log'])}")
    return "\n".join(lines)
