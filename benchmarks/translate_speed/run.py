#!/usr/bin/env python
"""Whole-process CPU translation speed and BLEU: fairseq-interactive vs `mtkit translate` (fairseq engine)
vs `mtkit translate --engine ct2` (int8), same model, inputs, beam and references. See README.md."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def tiny_inputs(n: int, tgt: str, work: Path) -> tuple[Path, Path]:
    """n English lines of the tiny test model's synthetic language and their cipher references."""
    from mtkit.testing import english_sentences, translate_words

    src = english_sentences(n, seed=2026)
    (work / "src.txt").write_text("\n".join(src) + "\n", encoding="utf-8")
    (work / "ref.txt").write_text("\n".join(translate_words(s, tgt) for s in src) + "\n", encoding="utf-8")
    return work / "src.txt", work / "ref.txt"


def fairseq_interactive_cmd(files, lm, src: str, tgt: str, beam: int, inp: Path) -> list[str]:
    from mtkit.plugin import user_dir

    a = lm.args
    cmd = [str(BIN / "fairseq-interactive"), str(files.dictionary.parent), "--user-dir", user_dir(),
           "--path", str(files.checkpoint), "--task", a.task, "--source-lang", src, "--target-lang", tgt,
           "--beam", str(beam), "--buffer-size", "2000", "--max-tokens", "4000", "--cpu", "--input", str(inp)]
    if lm.info.multilingual:
        cmd += ["--lang-dict", str(files.langs), "--lang-pairs", ",".join(lm.info.lang_pairs),
                "--fixed-dictionary", str(files.dictionary), "--lang-tok-style", lm.info.style]
        if lm.info.encoder_langtok:
            cmd += ["--encoder-langtok", lm.info.encoder_langtok]
        if lm.info.decoder_langtok:
            cmd += ["--decoder-langtok"]
    if files.spm:
        cmd += ["--bpe", "sentencepiece", "--sentencepiece-model", str(files.spm)]
    return cmd


def parse_interactive(stdout: str, n: int) -> list[str]:
    hyps = [""] * n
    for line in stdout.splitlines():
        if line.startswith("D-"):
            head, _score, *text = line.split("\t")
            hyps[int(head[2:])] = text[0] if text else ""
    return hyps


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return wall, res.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-m", "--model", required=True, help="model folder (see docs/translate.md)")
    ap.add_argument("--src-lang", default="en_XX")
    ap.add_argument("--tgt-lang", default="de_DE")
    ap.add_argument("--src", help="source file (default: 2,000 lines of the tiny model's synthetic language)")
    ap.add_argument("--ref", help="reference file (with --src)")
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1, help="runs per system; medians reported")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="thread counts to measure, each system given the same number (default 1)")
    ap.add_argument("--out", help="write results JSON here")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import sacrebleu
    import sentencepiece as spm

    from mtkit.export.ct2 import export_ct2
    from mtkit.io import cpu_name
    from mtkit.model_folder import build_model, find_files

    work = Path(tempfile.mkdtemp(prefix="mtkit-bench-"))
    if args.src:
        src_file, ref_file = Path(args.src), Path(args.ref)
    else:
        src_file, ref_file = tiny_inputs(args.lines, args.tgt_lang, work)
    files = find_files(args.model)
    lm = build_model(files)
    ct2_dir = export_ct2(files, work / "ct2-int8", quantization="int8")
    ct2_f32 = export_ct2(files, work / "ct2-float32", quantization="float32")
    src_lines = src_file.read_text(encoding="utf-8").splitlines()
    refs = ref_file.read_text(encoding="utf-8").splitlines()
    sp = spm.SentencePieceProcessor(model_file=str(files.spm))
    n_src_tok = sum(len(sp.encode(s)) for s in src_lines)

    def systems_for(threads: int) -> dict:
        mt = [str(BIN / "mtkit"), "translate", "--src-lang", args.src_lang, "--tgt-lang", args.tgt_lang,
              "--beam", str(args.beam), "--threads", str(threads), "--no-progress", str(src_file)]
        by_line = lambda out: out.split("\n")[:-1]  # noqa: E731
        return {
            "fairseq-interactive": (fairseq_interactive_cmd(files, lm, args.src_lang, args.tgt_lang, args.beam,
                                                            src_file),
                                    lambda out: parse_interactive(out, len(src_lines))),
            "mtkit translate (fairseq)": (mt + ["-m", str(args.model)], by_line),
            "mtkit translate --engine ct2 int8": (mt + ["-m", str(ct2_dir), "--engine", "ct2"], by_line),
            "mtkit translate --engine ct2 float32": (mt + ["-m", str(ct2_f32), "--engine", "ct2"], by_line),
        }

    results = []
    for threads in args.threads:
        # every system gets the same cores: torch intra-op threads for fairseq, workers for ct2
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OMP_WAIT_POLICY="PASSIVE")
        systems = systems_for(threads)
        walls: dict[str, list[float]] = {k: [] for k in systems}
        hyps: dict[str, list[str]] = {}
        for _ in range(args.repeats):  # interleaved so that machine noise hits every system alike
            for name, (cmd, parse) in systems.items():
                wall, out = timed(cmd, env)
                walls[name].append(wall)
                hyps[name] = parse(out)
        base = statistics.median(walls["fairseq-interactive"])
        rows = []
        ref_h = hyps["fairseq-interactive"]
        for name in systems:
            w = statistics.median(walls[name])
            h = hyps[name]
            assert len(h) == len(src_lines), (name, len(h))
            out_tok = sum(len(sp.encode(x)) for x in h)
            bleu = sacrebleu.corpus_bleu(h, [refs]).score
            rows.append({"system": name, "threads": threads, "wall_s": round(w, 3),
                         "src_tok_per_s": round(n_src_tok / w, 1), "out_tok_per_s": round(out_tok / w, 1),
                         "bleu": round(bleu, 2), "speedup_vs_interactive": round(base / w, 2),
                         "top1_same_as_interactive": sum(a == b for a, b in zip(ref_h, h)),
                         "walls": [round(x, 3) for x in walls[name]]})
        results.extend(rows)
        print(f"{len(src_lines)} lines, {n_src_tok} source SPM tokens, beam {args.beam}, {threads} thread(s) "
              f"per system, OMP_WAIT_POLICY=PASSIVE, whole process, median of {args.repeats}", flush=True)
        print(f"{'system':40s} {'wall s':>8s} {'src tok/s':>10s} {'out tok/s':>10s} {'BLEU':>7s} "
              f"{'x interactive':>14s} {'top-1 same':>11s}")
        for r in rows:
            print(f"{r['system']:40s} {r['wall_s']:8.2f} {r['src_tok_per_s']:10.1f} {r['out_tok_per_s']:10.1f} "
                  f"{r['bleu']:7.2f} {r['speedup_vs_interactive']:14.2f} {r['top1_same_as_interactive']:>6d}/"
                  f"{len(src_lines)}", flush=True)
    if args.out:
        import ctranslate2
        import torch

        meta = {"lines": len(src_lines), "source_tokens": n_src_tok, "beam": args.beam, "model": str(args.model),
                "direction": f"{args.src_lang}-{args.tgt_lang}", "repeats": args.repeats,
                "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "cores": os.cpu_count(),
                "versions": {"torch": torch.__version__, "ctranslate2": ctranslate2.__version__,
                             "sacrebleu": sacrebleu.__version__}}
        Path(args.out).write_text(json.dumps({"rows": results, **meta}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
