"""``mtkit scaling fit``: fit a scaling law to runs (CSV or JSON lines); a thin layer over
:mod:`mtkit.scaling`."""
from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
laws (Huber loss on log y, L-BFGS-B from a grid of starting points, the best fit kept):
  bleu        BLEU(D) = (log(A * D^alpha))^beta      Isik et al. 2024, Eq. 1
  ce          L(D) = E + A / D^alpha                 Isik et al. 2024, Eq. 3 (downstream cross-entropy)
  chinchilla  L(N, D) = E + A / N^alpha + B / D^beta Hoffmann et al. 2022 (needs --n)

Huber delta defaults: 1e-3 for ce and chinchilla (Hoffmann et al.); 0.1 for bleu, as Isik et al.
use for BLEU. On log BLEU, run-to-run noise of a few tenths of a BLEU point is a residual of
~0.01, so 0.1 keeps ordinary noise in the quadratic (least-squares) part and treats only runs off
by more than ~10 % as outliers; 1e-3 would make the BLEU fit a least-absolute-deviation fit.

examples:
  mtkit scaling fit runs.csv --law bleu --d pretrain_tokens --y bleu --fit-on 4
  mtkit scaling fit runs.jsonl --law ce --d tokens --y valid_ce --bootstrap 500 --json
  mtkit scaling fit chinchilla.csv --law chinchilla --n params --d tokens --y loss --plot fit.png

--fit-on K fits on the K runs with the smallest D and reports the prediction error on the rest
(Isik et al. fit on the 4 smallest). See docs/scaling.md.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="fit a scaling law to runs",
                         description="Fit a scaling law to runs (CSV or JSON lines) as the papers "
                                     "that proposed it do; report parameters, fit loss, held-out "
                                     "errors and bootstrap intervals.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("runs", metavar="RUNS", help="CSV file with a header, or JSON lines "
                     "(.jsonl / .json / .ndjson, or a file whose first line is a JSON object)")
    fit.add_argument("--law", required=True, choices=("bleu", "ce", "chinchilla"),
                     help="which law to fit (see below)")
    fit.add_argument("--d", required=True, metavar="COL",
                     help="column of D, the (pretraining) data size, e.g. tokens seen")
    fit.add_argument("--n", metavar="COL", help="column of N, the model size (chinchilla only)")
    fit.add_argument("--y", required=True, metavar="COL",
                     help="column of the measured value: BLEU for bleu, the loss for ce/chinchilla")
    fit.add_argument("--fit-on", type=int, metavar="K",
                     help="fit on the K smallest-D runs; report the error on the others "
                          "(default: fit on all)")
    fit.add_argument("--bootstrap", type=int, metavar="B",
                     help="refit on B resamples of the fitted runs for percentile intervals of "
                          "every parameter (default: 0; 200 with --plot, for the band)")
    fit.add_argument("--level", type=float, default=0.95,
                     help="confidence level of the intervals and the band (default: 0.95)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    fit.add_argument("--huber-delta", type=float, metavar="X",
                     help="Huber delta on log y (default: 0.1 for bleu, 1e-3 for ce and "
                          "chinchilla; see below)")
    fit.add_argument("--grid", choices=("full", "coarse"), default="full",
                     help="starting points of L-BFGS-B. full (default): for chinchilla Hoffmann et "
                          "al.'s 4500-point grid; for bleu and ce least-squares starts plus a "
                          "grid (86 / 156 starts). coarse: 32 / 6 / 6 starts, for quick looks")
    fit.add_argument("--plot", metavar="FILE",
                     help="write a PNG of the runs, the fit and its bootstrap band past the data")
    fit.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE")
    fit.add_argument("--json", action="store_true",
                     help="print the report as one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from mtkit.errors import InputError
    from mtkit.io import write_bytes, write_json
    from mtkit.scaling import fit_runs, format_report, read_runs

    if not 0 < args.level < 1:
        raise InputError(f"--level must be between 0 and 1, got {args.level}")
    resamples = args.bootstrap if args.bootstrap is not None else (200 if args.plot else 0)
    runs = read_runs(args.runs, d=args.d, y=args.y, n=args.n)
    report, fit, boot, fit_idx = fit_runs(
        runs, args.law, fit_on=args.fit_on, resamples=resamples, delta=args.huber_delta,
        seed=args.seed, level=args.level, coarse=args.grid == "coarse",
        progress=sys.stderr.isatty())
    if args.plot:
        from mtkit.scaling.plot import fit_png

        write_bytes(args.plot, fit_png(fit, runs, fit_idx, boot, level=args.level))
        report["plot"] = args.plot
    if args.out:
        write_json(args.out, report)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, allow_nan=False))
    else:
        print(format_report(report))
    return 0
