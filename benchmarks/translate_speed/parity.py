#!/usr/bin/env python
"""Where `mtkit translate` (fairseq engine) and fairseq-interactive differ, and why.

Runs both on the same lines with their default batching (fairseq-interactive: --buffer-size 2000
--max-tokens 4000; mtkit: its chunks and batches), then both with one sentence per batch, and mtkit
with fairseq-interactive's batches' size limits. Writes which lines differ in each pairing, with
both outputs and fairseq-interactive's score, so every difference can be looked at.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import add_model_args, bench_env, machine, measure
from run import fairseq_interactive_cmd

BIN = Path(sys.executable).parent


def interactive_hyps(stdout: str, n: int) -> tuple[list[str], list[float]]:
    hyps: dict[int, tuple[str, float]] = {}
    for line in stdout.splitlines():
        if line.startswith("D-"):
            head, score, *text = line.split("\t")
            hyps[int(head[2:])] = (text[0] if text else "", float(score))
    if sorted(hyps) != list(range(n)):
        raise SystemExit(f"fairseq-interactive translated {len(hyps)} of {n} lines")
    return [hyps[i][0] for i in range(n)], [hyps[i][1] for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    add_model_args(ap, "model folder", 2000)
    ap.add_argument("--src", required=True)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--out", help="results JSON")
    args = ap.parse_args()

    from mtkit.model_folder import build_model, find_files

    files = find_files(args.model)
    lm = build_model(files)
    lines = Path(args.src).read_text(encoding="utf-8").split("\n")[: args.lines]
    src = Path(tempfile.mkdtemp(prefix="mtkit-parity-")) / "src.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = bench_env(1)
    mt = [str(BIN / "mtkit"), "translate", "-m", args.model, "--src-lang", args.src_lang, "--tgt-lang",
          args.tgt_lang, "--beam", str(args.beam), "--no-progress", str(src)]
    inter = fairseq_interactive_cmd(files, lm, args.src_lang, args.tgt_lang, args.beam, src)
    runs = {
        "interactive default": (inter, "i"),
        "interactive batch 1": (inter + ["--batch-size", "1"], "i"),
        "mtkit default": (mt, "m"),
        "mtkit whole file": (mt + ["--buffer-size", "0"], "m"),
        "mtkit batch 1": (mt + ["--batch-size", "1"], "m"),
    }
    out: dict[str, list[str]] = {}
    scores: dict[str, list[float]] = {}
    for name, (cmd, kind) in runs.items():
        r = measure(cmd, env, keep_stdout=True)
        text = r.stdout.decode("utf-8")
        if kind == "i":
            out[name], scores[name] = interactive_hyps(text, len(lines))
        else:
            out[name] = text.split("\n")[:-1]
        print(f"{name:22s} {r.wall_s:7.1f} s", flush=True)
    pairs = [("interactive default", "mtkit default"), ("interactive default", "mtkit whole file"),
             ("interactive batch 1", "mtkit batch 1"), ("interactive default", "interactive batch 1"),
             ("mtkit default", "mtkit batch 1"), ("mtkit default", "mtkit whole file")]
    report = {"machine": machine(), "model": args.model, "lines": len(lines), "beam": args.beam,
              "direction": f"{args.src_lang}-{args.tgt_lang}", "pairs": []}
    for a, b in pairs:
        diff = [i for i, (x, y) in enumerate(zip(out[a], out[b])) if x != y]
        entry = {"a": a, "b": b, "identical": len(lines) - len(diff), "differ": diff,
                 "examples": [{"line": i, "source": lines[i], a: out[a][i], b: out[b][i],
                               **({f"{a} score": scores[a][i]} if a in scores else {})} for i in diff[:20]]}
        report["pairs"].append(entry)
        print(f"{a:22s} vs {b:22s}: {entry['identical']}/{len(lines)} identical; differ at {diff[:20]}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
