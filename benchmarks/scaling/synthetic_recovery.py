"""How well does `mtkit scaling fit` recover known parameters? Fit many noisy draws of each case
in mtkit.scaling.synthetic.CASES and record the error of every parameter and of the prediction at
10x the largest D.

    python benchmarks/scaling/synthetic_recovery.py --seeds 20 \
        --out benchmarks/scaling/results/synthetic_recovery.json

The tolerances in tests/test_scaling.py are set from this file (see docs/scaling.md).
"""
from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from tqdm import tqdm

from mtkit.io import versions, write_json
from mtkit.scaling import LAWS, fit_law
from mtkit.scaling.synthetic import CASES, draw, true_value


def prediction_point(case) -> tuple[np.ndarray, np.ndarray | None]:
    d, n = case.design()
    return np.array([10.0 * d.max()]), None if n is None else np.array([n.max()])


def study(name: str, seeds: int, coarse: bool) -> dict:
    case = CASES[name]
    law = LAWS[name]
    d_far, n_far = prediction_point(case)
    true_far = float(law.predict(case.params, d_far, n_far)[0])
    errors: dict[str, list[float]] = {p: [] for p in law.params}
    far: list[float] = []
    start = time.time()
    for seed in tqdm(range(seeds), desc=name, unit="fit"):
        d, y, n = draw(case, seed)
        fit = fit_law(law, d, y, n, coarse=coarse)
        for p in law.params:
            errors[p].append(abs(fit.params[p] / true_value(case.law, case.params, p) - 1.0))
        far.append(abs(float(law.predict(fit.params, d_far, n_far)[0]) / true_far - 1.0))
    summary = {p: {"median_rel_error": float(np.median(v)), "max_rel_error": float(np.max(v))}
               for p, v in errors.items()}
    return {
        "law": name, "true": case.params, "n_runs": len(case.design()[0]), "noise": case.noise,
        "grid": "coarse" if coarse else "full", "seeds": seeds,
        "params": summary,
        "prediction_10x_d": {"d": float(d_far[0]), "true": true_far,
                             "median_rel_error": float(np.median(far)),
                             "max_rel_error": float(np.max(far))},
        "seconds": round(time.time() - start, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--laws", default="bleu,ce,chinchilla")
    ap.add_argument("--coarse", default="chinchilla",
                    help="laws fitted from the coarse grid (default: chinchilla, whose full grid "
                         "has 4500 starts)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    coarse = set(filter(None, args.coarse.split(",")))
    results = {name: study(name, args.seeds, name in coarse) for name in args.laws.split(",")}
    write_json(args.out, {"command": "python benchmarks/scaling/synthetic_recovery.py "
                                     f"--seeds {args.seeds} --out {args.out}",
                          "versions": versions(("mtkit", "numpy", "scipy")), "results": results})


if __name__ == "__main__":
    main()
