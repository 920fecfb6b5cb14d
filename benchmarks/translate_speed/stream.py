#!/usr/bin/env python
"""Streaming `mtkit translate` vs the whole-file mode on the same files: time to the first output
line, wall time (paired, interleaved runs), peak RSS, and whether the outputs are identical.
See README.md ("Streaming")."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from itertools import cycle, islice
from pathlib import Path

from common import bench_env, machine, measure, paired

BIN = Path(sys.executable).parent


def make_input(text: Path, lines: int, work: Path) -> Path:
    """``lines`` lines taken from ``text`` over and over (non-blank lines only)."""
    out = work / f"in_{lines}.txt"
    if not out.exists():
        with open(text, encoding="utf-8") as f:
            pool = [line for line in f.read().split("\n") if line.strip()]
        with open(out, "w", encoding="utf-8") as f:
            for line in islice(cycle(pool), lines):
                f.write(line + "\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-m", "--model", required=True, help="model folder, or a ct2 export with --engine ct2")
    ap.add_argument("--engine", default="ct2", choices=("ct2", "fairseq"))
    ap.add_argument("--src-lang", default="en_XX")
    ap.add_argument("--tgt-lang", default="fr_XX")
    ap.add_argument("--text", required=True, help="source sentences; inputs cycle through them")
    ap.add_argument("--sizes", nargs="+", default=["10000:3", "1000000:1"],
                    help="LINES:REPEATS for each input size (default 10000:3 1000000:1)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--before", help="a checkout of mtkit before streaming (e.g. `git archive 476808a mtkit "
                                     "| tar -x -C DIR`): also run its `mtkit translate` on the same files")
    ap.add_argument("--whole-up-to", type=int, default=None, metavar="LINES",
                    help="run the whole-file mode of the new code only on inputs of at most LINES lines "
                         "(it is the old behaviour, which --before measures on every size)")
    ap.add_argument("--work", help="folder for the input files (default: a temporary folder)")
    ap.add_argument("--out", help="write results JSON here")
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="mtkit-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    env = bench_env(args.threads)
    base = [str(BIN / "mtkit"), "translate", "-m", args.model, "--engine", args.engine, "--src-lang", args.src_lang,
            "--tgt-lang", args.tgt_lang, "--beam", str(args.beam), "--threads", str(args.threads), "--no-progress"]
    systems = {"whole file (--buffer-size 0)": (base + ["--buffer-size", "0"], env),
               "streaming (default chunks)": (base, env)}
    if args.before:
        old_env = dict(env, PYTHONPATH=os.path.abspath(args.before))
        systems = {"before (whole file, old code)": (base, old_env), **systems}
    info = {"machine_at_start": machine(), "engine": args.engine, "model": args.model, "threads": args.threads,
            "beam": args.beam, "direction": f"{args.src_lang}-{args.tgt_lang}", "before": args.before,
            "sizes": []}
    for spec in args.sizes:
        lines, repeats = (int(x) for x in spec.split(":"))
        src = make_input(Path(args.text), lines, work)
        here = {name: v for name, v in systems.items()
                if not (name.startswith("whole file") and args.whole_up_to is not None and lines > args.whole_up_to)}
        runs: dict[str, list] = {name: [] for name in here}
        for _ in range(repeats):  # interleaved: each repeat runs every system once, side by side
            for name, (cmd, e) in here.items():
                r = measure(cmd + [str(src)], e)
                if r.lines != lines:
                    raise SystemExit(f"{name}: {r.lines} output lines for {lines} input lines")
                runs[name].append(r)
                print(f"{lines:>9d} lines  {name:32s} wall {r.wall_s:8.2f} s  first output {r.first_output_s:8.2f} s  "
                      f"peak RSS {r.peak_rss_mb:7.1f} MB  load {os.getloadavg()[0]:.1f}", flush=True)
        whole, stream = "whole file (--buffer-size 0)", "streaming (default chunks)"
        block = {
            "lines": lines, "repeats": repeats, "load_1min_at_start": machine()["load_1min"],
            "runs": {name: [{k: round(v, 3) if isinstance(v, float) else v for k, v in vars(r).items()
                             if k != "stdout"} for r in rs] for name, rs in runs.items()},
            "identical_outputs": len({r.digest for rs in runs.values() for r in rs}) == 1,
        }
        if whole in runs:  # > 1: streaming is faster; whole-file wall / streaming wall of the same repeat
            block["throughput_stream_vs_whole"] = paired([r.wall_s for r in runs[whole]],
                                                         [r.wall_s for r in runs[stream]])
            # CPU seconds (user + system) of the same pairs: less moved by other jobs than wall time
            block["cpu_whole_over_stream"] = paired([r.cpu_s for r in runs[whole]], [r.cpu_s for r in runs[stream]])
        if args.before:
            old = runs["before (whole file, old code)"]
            block["throughput_stream_vs_before"] = paired([r.wall_s for r in old], [r.wall_s for r in runs[stream]])
            block["cpu_before_over_stream"] = paired([r.cpu_s for r in old], [r.cpu_s for r in runs[stream]])
        info["sizes"].append(block)
        print(json.dumps({k: v for k, v in block.items() if k != "runs"}), flush=True)
    if len(info["sizes"]) >= 2:
        small, large = info["sizes"][0], info["sizes"][-1]
        name = "streaming (default chunks)"
        peak = lambda b: max(r["peak_rss_mb"] for r in b["runs"][name])  # noqa: E731
        info["stream_peak_rss_large_over_small"] = round(peak(large) / peak(small), 3)
    if args.out:
        Path(args.out).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
