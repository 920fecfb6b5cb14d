#!/usr/bin/env python3
"""CPU and wall seconds to compile each of fairseq-fixed's extensions alone, then the text set at once.

Run with a venv's interpreter that has torch, numpy, Cython and setuptools (e.g. one made by
scripts/setup.sh); it downloads fairseq-fixed's sdist once with pip:

    VENV/bin/python benchmarks/install/extensions.py --out benchmarks/install/extensions.json

Each build is fairseq's setup.py through scripts/setup_helper.py in its own process (so each
includes setup.py's start-up: importing torch), one compiler (``--jobs 1``) unless stated.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import setup_helper  # noqa: E402

ALL = ("fairseq.libbleu", "fairseq.data.data_utils_fast", "fairseq.data.token_block_utils_fast",
       "fairseq.libbase", "fairseq.libnat", "alignment_train_cpu_binding")
BUILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import setup_helper
only = tuple(sys.argv[4].split(","))
setup_helper.build_wheel(Path(sys.argv[2]), Path(sys.argv[3]), "all", int(sys.argv[5]), only=only)
"""


def timed_build(sdist: Path, only: tuple[str, ...], jobs: int) -> dict:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as wh:
        res = subprocess.run([sys.executable, "-c", BUILD, str(REPO / "scripts"), str(sdist), wh, ",".join(only),
                              str(jobs)], capture_output=True, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"extensions": list(only), "jobs": jobs, "rc": res.returncode, "wall_s": round(time.monotonic() - t0, 2),
            "cpu_s": round(cpu, 2), "load1_at_start": None, "log_tail": res.stderr.splitlines()[-3:]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "install" / "extensions.json")
    a = p.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        sdist = setup_helper.fetch_sdist(Path(tmp))
        builds = []
        plan = [((e,), 1) for e in ALL] + [(setup_helper.TEXT_EXTENSIONS, os.cpu_count() or 1)]
        for only, jobs in plan:
            load = os.getloadavg()[0]
            b = timed_build(sdist, only, jobs)
            b["load1_at_start"] = round(load, 2)
            print(json.dumps(b), file=sys.stderr)
            builds.append(b)
    out = {"command": " ".join(sys.argv), "python": platform.python_version(), "torch": torch.__version__,
           "cpus": os.cpu_count(), "builds": builds}
    a.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0 if all(b["rc"] == 0 for b in builds) else 1


if __name__ == "__main__":
    sys.exit(main())
