"""``mtkit doctor``: what is installed and usable; non-zero exit when something required is broken."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Report Python, torch, CUDA, fairseq and its extensions, mtkit's fairseq patches and "
                          "the optional parts (apex, CTranslate2, transformers, Ray); exit 1 when a required part is broken.")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    from mtkit.doctor import broken, run_checks

    checks = run_checks()
    bad = broken(checks)
    if args.json:
        print(json.dumps({"ok": not bad, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = "ok " if c.ok else ("BAD" if c.required else "warn")
            print(f"[{mark:4}] {c.name:<{width}}  {c.detail}")
    if bad:
        print("mtkit doctor: required parts are broken: " + ", ".join(c.name for c in bad)
              + ". Re-run scripts/setup.sh, or see the README's install section.", file=sys.stderr)
        return 1
    return 0
