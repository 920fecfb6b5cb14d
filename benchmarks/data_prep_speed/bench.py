"""data_prep speed and memory: streaming steps vs a straightforward in-memory implementation.

Generates a synthetic parallel corpus (two directions, ~10% duplicate pairs, training pairs that
overlap the valid/test sets, empty / over-long / badly-ratioed lines), then runs, each in its own
child process so peak RSS is measured separately:

- ``stream``: data_prep's steps (dedup in bounded memory -> clean: overlap removal + filters) and
  SentencePiece encoding of the clean training text (data_prep.binarize's encoder);
- ``memory``: what fairseq's scripts do: read every line into lists, dedup with a set of pairs,
  drop pairs in the held-out set, filter, encode line by line (spm_encode.py style), write.

Both must produce identical clean, encoded training files (checked). Prints lines/s, peak RSS and
the ratios. Usage: python benchmarks/data_prep_speed/bench.py [--pairs 10000000] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIRECTIONS = (("en_XX", "fr_XX"), ("en_XX", "de_DE"))


def generate(raw: Path, pairs: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(8000)]
    raw.mkdir(parents=True, exist_ok=True)
    per = pairs // len(DIRECTIONS)
    held = [" ".join(rng.choices(vocab, k=rng.randint(5, 20))) for _ in range(2000)]
    for s, t in DIRECTIONS:
        for split, rows in (("valid", held[:1000]), ("test", held[1000:])):
            for lang in (s, t):
                with open(raw / f"{split}.{s}-{t}.{lang}", "w") as f:
                    f.writelines(f"{lang[:2]} {r}\n" if lang != "en_XX" else f"{r}\n" for r in rows)
        recent: list[tuple[str, str]] = []
        with open(raw / f"train.{s}-{t}.{s}", "w") as fs, open(raw / f"train.{s}-{t}.{t}", "w") as ft:
            for i in range(per):
                r = rng.random()
                if r < 0.10 and recent:
                    a, b = rng.choice(recent)  # duplicate pair
                elif r < 0.11:
                    a, b = rng.choice(held), "x"  # overlaps a held-out sentence
                elif r < 0.115:
                    a, b = "", "vide"
                elif r < 0.12:
                    a, b = "w1 " * 400, "long"
                else:
                    n = rng.randint(3, 30)
                    a = " ".join(rng.choices(vocab, k=n))
                    b = f"{t[:2]} " + " ".join(rng.choices(vocab, k=max(1, n + rng.randint(-3, 3))))
                if len(recent) < 5000:
                    recent.append((a, b))
                else:
                    recent[i % 5000] = (a, b)
                fs.write(a + "\n")
                ft.write(b + "\n")


def train_spm(raw: Path, out: Path) -> Path:
    import sentencepiece as spm

    sample = out / "sample.txt"
    with open(sample, "w") as f:
        for s, t in DIRECTIONS:
            for lang in (s, t):
                with open(raw / f"train.{s}-{t}.{lang}") as g:
                    for i, line in enumerate(g):
                        if i >= 50000:
                            break
                        f.write(line)
    spm.SentencePieceTrainer.train(input=str(sample), model_prefix=str(out / "spm"), vocab_size=4000,
                                   minloglevel=2, num_threads=1)
    return out / "spm.model"


def run_stream(raw: Path, out: Path, model: str) -> int:
    from data_prep.binarize import _encode_file_pair
    from data_prep.steps.pipeline import run_steps

    run_steps(raw, out, workers=1, max_memory_mb=256)
    n = 0
    for s, t in DIRECTIONS:
        c = _encode_file_pair(model, out / "clean" / f"train.{s}-{t}.{s}", out / "clean" / f"train.{s}-{t}.{t}",
                              out / "spm" / f"train.{s}-{t}.{s}", out / "spm" / f"train.{s}-{t}.{t}", None, False)
        n += c["out"]
    return n


def run_memory(raw: Path, out: Path, model: str) -> int:
    """The fairseq-scripts approach: everything in lists and sets."""
    import sentencepiece as spm

    from data_prep.steps.filters import FilterSettings

    fs = FilterSettings()
    sp = spm.SentencePieceProcessor(model_file=model)
    held = set()
    for p in raw.iterdir():
        if p.name.startswith(("valid.", "test.")):
            held |= {x.strip() for x in p.read_text(encoding="utf-8").split("\n") if x.strip()}
    (out / "spm").mkdir(parents=True, exist_ok=True)
    n = 0
    for s, t in DIRECTIONS:
        src = (raw / f"train.{s}-{t}.{s}").read_text(encoding="utf-8").split("\n")[:-1]
        tgt = (raw / f"train.{s}-{t}.{t}").read_text(encoding="utf-8").split("\n")[:-1]
        seen, rows = set(), []
        for a, b in zip(src, tgt):
            key = (a.strip(), b.strip())
            if key in seen:
                continue
            seen.add(key)
            rows.append(key)
        kept = []
        for a, b in rows:
            la, lb = len(a), len(b)
            if a in held or b in held or not a or not b:
                continue
            if min(la, lb) < fs.min_chars or max(la, lb) > fs.max_chars:
                continue
            if len(a.split()) > fs.max_words or len(b.split()) > fs.max_words:
                continue
            if max(la, lb) >= fs.ratio_min_chars and max(la, lb) > fs.max_ratio * min(la, lb):
                continue
            kept.append((a, b))
        enc_a = [" ".join(sp.encode(a, out_type=str)) for a, _ in kept]
        enc_b = [" ".join(sp.encode(b, out_type=str)) for _, b in kept]
        (out / "spm" / f"train.{s}-{t}.{s}").write_text("".join(x + "\n" for x in enc_a), encoding="utf-8")
        (out / "spm" / f"train.{s}-{t}.{t}").write_text("".join(x + "\n" for x in enc_b), encoding="utf-8")
        n += len(kept)
    return n


def child(mode: str, raw: str, out: str, model: str) -> None:
    t0 = time.time()
    n = (run_stream if mode == "stream" else run_memory)(Path(raw), Path(out), model)
    dt = time.time() - t0
    print(json.dumps({"mode": mode, "seconds": dt, "kept": n, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a
    child would report at least the parent's RSS at the time it was started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000_000, help="training pairs generated (all directions)")
    ap.add_argument("--work", default=None, help="work folder (default: a temporary folder, removed)")
    ap.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        child(*a._child)
        return 0
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="dp_bench."))
    try:
        raw = work / "raw"
        t0 = time.time()
        generate(raw, a.pairs)
        print(f"generated {a.pairs} pairs in {time.time() - t0:.0f} s", file=sys.stderr)
        model = str(train_spm(raw, work))
        res = {}
        for mode in ("stream", "memory"):
            env = dict(os.environ, OMP_NUM_THREADS="1")
            p = subprocess.run([sys.executable, __file__, "--_child", mode, str(raw), str(work / mode), model],
                               capture_output=True, text=True, env=env, check=True)
            res[mode] = json.loads(p.stdout.strip().splitlines()[-1])
        for s, t in DIRECTIONS:
            for lang in (s, t):
                name = f"train.{s}-{t}.{lang}"
                if (work / "stream" / "spm" / name).read_bytes() != (work / "memory" / "spm" / name).read_bytes():
                    raise SystemExit(f"outputs differ: {name}")
        st, me = res["stream"], res["memory"]
        print(f"pairs: {a.pairs}  kept after dedup+overlap+filters: {st['kept']} (identical outputs: yes)")
        for r in (st, me):
            print(f"{r['mode']:>7}: {a.pairs / r['seconds']:>10.0f} input pairs/s  {r['seconds']:7.1f} s  "
                  f"peak RSS {r['peak_rss_mb']:8.1f} MB")
        print(f"ratio stream/memory: speed {me['seconds'] / st['seconds']:.2f}x, "
              f"peak memory {st['peak_rss_mb'] / me['peak_rss_mb']:.2f}x")
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
