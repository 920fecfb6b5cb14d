"""`mtkit translate` of an MoE model: the MoE layer that runs every expert over all C slots of the
capacity rule (the code before commit 51cda46, as NLLB's layer does) vs today's layer, which cuts C
to the busiest expert's load. At inference the rule's C is every token of the batch
(``--moe-eval-capacity-token-fraction 1.0``, the default), so the old layer ran each of the E experts
over the whole batch.

Each repeat runs both, one after the other (whole processes: start-up, model load, translation,
output), alternating which goes first; the results give every wall time, the paired per-repeat
ratios (old / new) with their median and range, and whether both wrote the same bytes.

    git archive 7f95a07 mtkit | tar -x -C /tmp/moe_before      # the layer before the change
    python benchmarks/moe_speed/translate_capacity.py --before /tmp/moe_before \\
        -m CHECKPOINT-shared.pt --dict DICT --spm SPM --langs LANGS --src-lang en_XX --tgt-lang fr_XX \\
        --src TEST.en --repeats 3 --out benchmarks/moe_speed/results_translate_capacity.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mtkit.io import write_json

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "translate_speed"))
import common  # noqa: E402  (translate_speed/common.py: measure, paired, machine facts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="a folder holding the older `mtkit` package (git archive)")
    ap.add_argument("-m", "--model", required=True, help="MoE checkpoint (…-shared.pt) or model folder")
    ap.add_argument("--dict", dest="dict_path")
    ap.add_argument("--spm", dest="spm_path")
    ap.add_argument("--langs", dest="langs_path")
    ap.add_argument("--src-lang", required=True)
    ap.add_argument("--tgt-lang", required=True)
    ap.add_argument("--src", required=True, help="input text, one sentence per line")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    before = Path(args.before).resolve()
    if not (before / "mtkit" / "__init__.py").exists():
        ap.error(f"--before {before} holds no mtkit package (git archive COMMIT mtkit | tar -x -C {before})")
    files = [x for flag, value in (("--dict", args.dict_path), ("--spm", args.spm_path), ("--langs", args.langs_path))
             if value for x in (flag, value)]
    # -P: the current folder (this checkout) must not come before PYTHONPATH
    cmd = [sys.executable, "-P", "-m", "mtkit.cli", "translate", "-m", args.model, *files, "--src-lang", args.src_lang,
           "--tgt-lang", args.tgt_lang, "--beam", str(args.beam), "--threads", str(args.threads), "--no-progress",
           args.src]
    base = common.bench_env(args.threads)
    envs = {"before": dict(base, PYTHONPATH=str(before)), "today": dict(base, PYTHONPATH=str(REPO))}
    runs: dict[str, list[dict]] = {"before": [], "today": []}
    load = os.getloadavg()[0]
    for r in range(args.repeats):
        order = ("before", "today") if r % 2 == 0 else ("today", "before")
        for name in order:
            run = common.measure(cmd, envs[name])
            runs[name].append({"wall_s": round(run.wall_s, 3), "cpu_s": round(run.cpu_s, 3),
                               "peak_rss_mb": round(run.peak_rss_mb, 1), "lines": run.lines, "digest": run.digest})
            print(f"repeat {r} {name}: {run.wall_s:.2f} s", file=sys.stderr)
    digests = {x["digest"] for v in runs.values() for x in v}
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "translate_command": cmd[2:],
        "before": str(before), "load_average_1min_at_start": round(load, 2),
        "runs": runs,
        "ratio_before_over_today": common.paired([x["wall_s"] for x in runs["before"]],
                                                 [x["wall_s"] for x in runs["today"]]),
        "same_output": len(digests) == 1,
        "environment": common.machine(),
    }
    write_json(args.out, result)
    print(json.dumps({"ratio": result["ratio_before_over_today"], "same_output": result["same_output"]}))
    return 0 if result["same_output"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
