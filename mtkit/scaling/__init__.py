"""Scaling laws for translation: fit, bootstrap, held-out error, plots.

- :mod:`mtkit.scaling.laws`: the BLEU log-law, the cross-entropy power law and Chinchilla's L(N, D)
  as pure functions in the parameterisation they are fitted in.
- :mod:`mtkit.scaling.fit`: Huber loss on log values, multi-start L-BFGS-B, bootstrap, held-out error.
- :mod:`mtkit.scaling.runs`: reading runs from CSV / JSON lines with clear errors.
- :mod:`mtkit.scaling.report`: from runs to a report (dict and text table).
- :mod:`mtkit.scaling.plot`: the PNG of data, fit and extrapolation band.

See docs/scaling.md.
"""
from mtkit.scaling.fit import Bootstrap, Fit, bootstrap, fit_law, held_out_errors, huber
from mtkit.scaling.laws import LAWS, Law
from mtkit.scaling.report import fit_runs, format_report
from mtkit.scaling.runs import Runs, read_runs

__all__ = ["LAWS", "Bootstrap", "Fit", "Law", "Runs", "bootstrap", "fit_law", "fit_runs",
           "format_report", "held_out_errors", "huber", "read_runs"]
