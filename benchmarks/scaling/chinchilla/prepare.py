"""Turn Epoch AI's re-extraction of the Chinchilla data into runs for `mtkit scaling fit`.

Input: data/svg_extracted_data.csv of github.com/epoch-research/analyzing-chinchilla at commit
92258837425e1b5f2851d624287f0120583a3d0e (provenance and checksum: PROVENANCE.md beside this file).
Output: a CSV with columns params, tokens, loss, where tokens = FLOP / (6 N) (Besiroglu et al.'s
conversion) and, as they do, without the 5 runs of highest loss (their outliers).

    python benchmarks/scaling/chinchilla/prepare.py SVG_EXTRACTED_DATA.csv work/chinchilla/runs.csv
"""
from __future__ import annotations

import argparse
import csv
import sys

from mtkit.errors import InputError
from mtkit.io import atomic_write, file_digest

SHA256 = "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30"
EXCLUDED_HIGHEST_LOSS = 5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="svg_extracted_data.csv from the commit named above")
    ap.add_argument("out", help="runs CSV to write")
    args = ap.parse_args()
    digest = file_digest(args.source, "sha256")
    if digest != SHA256:
        raise InputError(f"{args.source}: sha256 {digest}, expected {SHA256}; fetch the file at "
                         "the commit named in PROVENANCE.md")
    with open(args.source, encoding="utf-8", newline="") as f:
        rows = [(float(r["Model Size"]), float(r["Training FLOP"]), float(r["loss"]))
                for r in csv.DictReader(f)]
    cutoff = sorted(loss for _, _, loss in rows)[-EXCLUDED_HIGHEST_LOSS]
    kept = [(n, flop / (6.0 * n), loss) for n, flop, loss in rows if loss < cutoff]
    with atomic_write(args.out) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["params", "tokens", "loss"])
        w.writerows((repr(n), repr(d), repr(loss)) for n, d, loss in kept)
    print(f"{len(kept)} of {len(rows)} runs written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
