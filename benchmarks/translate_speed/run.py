#!/usr/bin/env python
"""Whole-process CPU translation speed and BLEU: fairseq-interactive vs `mtkit translate` (fairseq
engine) vs `mtkit translate --engine ct2` (int8, float32) vs CTranslate2 called directly on the same
pieces (ct2_direct.py), same model, input, beam and references. Runs are interleaved and every ratio
is paired (repeat r of one system against repeat r of the other). See README.md."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import add_model_args, bench_env, machine, measure, paired

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
INTERACTIVE = "fairseq-interactive"
MT_FAIRSEQ = "mtkit translate (fairseq)"
CT2_RANKING = "--ct2-ranking ct2"


def fairseq_interactive_cmd(files, lm, src: str, tgt: str, beam: int, inp: Path, batch_size: int | None = None
                            ) -> list[str]:
    from mtkit.plugin import user_dir

    a = lm.args
    cmd = [str(BIN / "fairseq-interactive"), str(files.dictionary.parent), "--user-dir", user_dir(),
           "--path", str(files.checkpoint), "--task", a.task, "--source-lang", src, "--target-lang", tgt,
           "--beam", str(beam), "--buffer-size", "2000", "--max-tokens", "4000", "--cpu", "--input", str(inp)]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
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
    """The D- lines of fairseq-interactive by sentence id; every id must be there."""
    hyps: dict[int, str] = {}
    for line in stdout.splitlines():
        if line.startswith("D-"):
            head, _score, *text = line.split("\t")
            hyps[int(head[2:])] = text[0] if text else ""
    missing = sorted(set(range(n)) - set(hyps))
    if missing:
        raise SystemExit(f"fairseq-interactive gave no translation for {len(missing)} lines: {missing[:10]}")
    return [hyps[i] for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    add_model_args(ap, "model folder (see docs/translate.md)", 2000)
    ap.add_argument("--src", required=True, help="source file (one sentence a line, no blank lines)")
    ap.add_argument("--ref", required=True, help="reference file, line-aligned with --src")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs per system (default 3)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="thread counts to measure, each system given the same number (default 1)")
    ap.add_argument("--ct2-only", action="store_true",
                    help="time only the CTranslate2 systems (mtkit's overhead over calling CTranslate2 directly), "
                         "e.g. on an input too long to repeat fairseq-interactive on")
    ap.add_argument("--out", help="write results JSON here")
    args = ap.parse_args()

    import sacrebleu
    import sentencepiece as spm

    from mtkit.export.ct2 import export_ct2
    from mtkit.io import versions
    from mtkit.model_folder import build_model, find_files

    start = machine()
    work = Path(tempfile.mkdtemp(prefix="mtkit-bench-"))
    src_lines = Path(args.src).read_text(encoding="utf-8").split("\n")[: args.lines]
    refs = Path(args.ref).read_text(encoding="utf-8").split("\n")[: args.lines]
    if len(src_lines) != args.lines or len(refs) != args.lines or not all(s.strip() for s in src_lines):
        raise SystemExit(f"--src/--ref need {args.lines} lines each, no blank source line")
    src_file = work / "src.txt"
    src_file.write_text("\n".join(src_lines) + "\n", encoding="utf-8")
    files = find_files(args.model)
    lm = build_model(files)
    ct2 = {q: export_ct2(files, work / f"ct2-{q}", quantization=q) for q in ("int8", "float32")}
    sp = spm.SentencePieceProcessor(model_file=str(files.spm))
    pieces = [sp.encode(s.strip(), out_type=str) for s in src_lines]
    n_src_tok = sum(map(len, pieces))
    pieces_file = work / "pieces.txt"
    pieces_file.write_text("".join(" ".join(p) + "\n" for p in pieces), encoding="utf-8")
    info = lm.info
    src_tok = info.token(args.src_lang) if info.multilingual and info.encoder_langtok == "src" else ""
    tgt_tok = info.token(args.tgt_lang) if info.multilingual and info.decoder_langtok else ""

    def systems_for(threads: int) -> dict:
        mt = [str(BIN / "mtkit"), "translate", "--src-lang", args.src_lang, "--tgt-lang", args.tgt_lang,
              "--beam", str(args.beam), "--threads", str(threads), "--no-progress", str(src_file)]
        direct = [str(BIN / "python"), str(HERE / "ct2_direct.py"), "--beam", str(args.beam), "--threads",
                  str(threads), "--source-prefix", src_tok, "--target-prefix", tgt_tok]
        by_line = lambda out: out.split("\n")[:-1]  # noqa: E731
        from_pieces = lambda out: [sp.decode(x.split()) for x in out.split("\n")[:-1]]  # noqa: E731
        fairseq = {} if args.ct2_only else {
            INTERACTIVE: (fairseq_interactive_cmd(files, lm, args.src_lang, args.tgt_lang, args.beam, src_file),
                          lambda out: parse_interactive(out, len(src_lines))),
            MT_FAIRSEQ: (mt + ["-m", str(args.model)], by_line),
        }
        return {
            **fairseq,
            "mtkit translate --engine ct2 int8": (mt + ["-m", str(ct2["int8"]), "--engine", "ct2"], by_line),
            "mtkit translate --engine ct2 float32": (mt + ["-m", str(ct2["float32"]), "--engine", "ct2"], by_line),
            # CTranslate2's own ranking: the same work as calling it directly (no re-ranking pass)
            f"mtkit translate --engine ct2 int8 {CT2_RANKING}": (
                mt + ["-m", str(ct2["int8"]), "--engine", "ct2", "--ct2-ranking", "ct2"], by_line),
            f"mtkit translate --engine ct2 float32 {CT2_RANKING}": (
                mt + ["-m", str(ct2["float32"]), "--engine", "ct2", "--ct2-ranking", "ct2"], by_line),
            "ctranslate2 direct int8": (direct + [str(ct2["int8"]), str(pieces_file)], from_pieces),
            "ctranslate2 direct float32": (direct + [str(ct2["float32"]), str(pieces_file)], from_pieces),
        }

    results = []
    for threads in args.threads:
        env = bench_env(threads)
        systems = systems_for(threads)
        load_at_start = machine()["load_1min"]
        walls: dict[str, list[float]] = {k: [] for k in systems}
        cpus: dict[str, list[float]] = {k: [] for k in systems}
        hyps: dict[str, list[str]] = {}
        order = list(systems)
        if args.ct2_only:  # each mtkit system next to the direct CTranslate2 run it is paired with
            order = ["mtkit translate --engine ct2 float32", "ctranslate2 direct float32",
                     f"mtkit translate --engine ct2 float32 {CT2_RANKING}", f"mtkit translate --engine ct2 int8 {CT2_RANKING}",
                     "ctranslate2 direct int8", "mtkit translate --engine ct2 int8"]
            assert sorted(order) == sorted(systems)
        for r in range(args.repeats):  # interleaved so that machine noise hits every system alike,
            for name in order if r % 2 == 0 else order[::-1]:  # and every other repeat backwards
                cmd, parse = systems[name]
                run = measure(cmd, env, keep_stdout=True)
                walls[name].append(run.wall_s)
                cpus[name].append(run.cpu_s)
                hyps[name] = parse(run.stdout.decode("utf-8"))
        ref_h = hyps.get(INTERACTIVE)
        rows = []
        for name in systems:
            h = hyps[name]
            assert len(h) == len(src_lines), (name, len(h))
            w = statistics.median(walls[name])
            row = {"system": name, "threads": threads, "walls": [round(x, 3) for x in walls[name]],
                   "cpu_s": [round(x, 3) for x in cpus[name]], "wall_s_median": round(w, 3),
                   "src_tok_per_s": round(n_src_tok / w, 1),
                   "out_tok_per_s": round(sum(len(sp.encode(x)) for x in h) / w, 1),
                   "bleu": round(sacrebleu.corpus_bleu(h, [refs]).score, 2)}
            if ref_h is not None:
                row.update({
                    "x_interactive_paired": paired(walls[INTERACTIVE], walls[name]),
                    # the same pairs in CPU seconds (user + system), less moved by other jobs than wall time
                    "x_interactive_cpu_paired": paired(cpus[INTERACTIVE], cpus[name]),
                    "top1_same_as_interactive": sum(a == b for a, b in zip(ref_h, h)),
                    "lines_differing_from_interactive": [i for i, (a, b) in enumerate(zip(ref_h, h)) if a != b]})
            for q in ("int8", "float32"):
                if name in (f"mtkit translate --engine ct2 {q}", f"mtkit translate --engine ct2 {q} {CT2_RANKING}"):
                    direct_name = f"ctranslate2 direct {q}"
                    row["x_ctranslate2_direct_paired"] = paired(walls[name], walls[direct_name])
                    row["x_ctranslate2_direct_cpu_paired"] = paired(cpus[name], cpus[direct_name])
                    if MT_FAIRSEQ in hyps:
                        row["top1_same_as_fairseq_engine"] = sum(a == b for a, b in zip(hyps[MT_FAIRSEQ], h))
                    row["top1_same_as_ctranslate2_direct"] = sum(a == b for a, b in zip(hyps[direct_name], h))
            rows.append(row)
        results.append({"threads": threads, "load_1min_at_start": load_at_start, "rows": rows})
        print(f"{len(src_lines)} lines, {n_src_tok} source SPM tokens, beam {args.beam}, {threads} thread(s) per "
              f"system, {args.repeats} interleaved repeats, load {load_at_start} at start; ratios are paired: "
              "median [min-max] of the per-repeat ratios", flush=True)
        print(f"{'system':55s} {'wall s':>7s} {'BLEU':>6s} {'x interactive (wall)':>22s} {'(CPU)':>6s} "
              f"{'top-1 same':>11s} {'x direct ct2 (wall)':>22s} {'(CPU)':>6s}")
        for r in rows:
            x, xc = r.get("x_interactive_paired"), r.get("x_interactive_cpu_paired")
            d, dc = r.get("x_ctranslate2_direct_paired"), r.get("x_ctranslate2_direct_cpu_paired")
            xtxt = f"{x['median']:8.2f} [{x['min']:.2f}-{x['max']:.2f}] {xc['median']:6.2f}" if x else ""
            same = f"{r['top1_same_as_interactive']:>6d}/{len(src_lines)}" if x else ""
            dtxt = f"{d['median']:.2f} [{d['min']:.2f}-{d['max']:.2f}] {dc['median']:6.2f}" if d else ""
            print(f"{r['system']:55s} {r['wall_s_median']:7.2f} {r['bleu']:6.2f} {xtxt:>29s} {same:>11s} {dtxt:>29s}",
                  flush=True)
    if args.out:
        meta = {"lines": len(src_lines), "source_tokens": n_src_tok, "beam": args.beam, "model": str(args.model),
                "direction": f"{args.src_lang}-{args.tgt_lang}", "repeats": args.repeats,
                "machine_at_start": start,
                "versions": versions(("mtkit", "torch", "fairseq", "ctranslate2", "sentencepiece", "sacrebleu")),
                "command": " ".join(sys.argv), "ct2_only": args.ct2_only}
        Path(args.out).write_text(json.dumps({**meta, "by_threads": results}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
