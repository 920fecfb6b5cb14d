"""Run fairseq-preprocess (``fairseq_cli.preprocess``) for several argument lists in ONE process.

``fairseq-preprocess`` pays several seconds of imports per call; one call per direction would
dominate small and medium builds. Usage: ``python -m data_prep._preprocess_many < jobs.json`` where
the JSON is a list of argument lists, exactly as they would be given to ``fairseq-preprocess``.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    jobs = json.load(sys.stdin)
    from fairseq import options
    from fairseq_cli import preprocess

    for argv in jobs:
        parser = options.get_preprocessing_parser()
        preprocess.main(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
