"""mtkit's data steps against fairseq's own ML50 data scripts, side by side, same input, same outputs.

Input (documented synthetic source built from real text): a ``mtkit data gettext`` corpus of this
machine's catalogs gives real (English, xx) sentence pairs for four directions (en_XX-fr_XX,
de_DE, es_XX, ru_RU) and their held-out valid/test sets. Training pairs are drawn from the
gettext training pairs with a fixed seed: 1 to 3 pairs joined into one line (both sides in the
same order), 10% exact repeats of a recent pair, 1% a held-out pair (to be removed), 0.5% with an
empty side. Lines holding characters that fairseq's scripts split differently from each other
(CR, VT, FF, U+001C-U+001E, U+0085, U+2028, U+2029) are left out of the pool, so both pipelines
see the same lines.

The two pipelines (each run in its own process tree, one after the other, alternating which goes
first; peak memory is the largest sum of RSS over the tree, sampled every 50 ms):

- fairseq: ``examples/multilingual/data_scripts`` from the installed fairseq package, as
  ``preprocess_ML50_v1.sh`` chains them: ``dedup_all.py`` (valid/test copied next to its output, as
  the next script needs them), ``remove_valid_test_in_train.py --directions ...``, then
  ``binarize.py``'s own ``encode_spm`` (fairseq's ``scripts/spm_encode.py``, which is not shipped
  in the fairseq package: pass ``--spm-encode``) and ``binarize`` (``fairseq-preprocess --workers 8``,
  as the script has it) once per direction. (``binarize.py``'s ``__main__`` lists each direction
  once per file, i.e. six times; the driver calls its functions once per direction instead.)
- mtkit: ``run_steps`` dedup, then clean (overlap removal; length and ratio filters off, LID off,
  so that both do the same work), then ``binarize --spm-model --dict`` with ``--workers``.

Both use the same SentencePiece model and dictionary. Checked equal after every round: the
deduplicated training text and every ``.bin``/``.idx`` file of the final databin.
Results: ``results_<pairs>.json`` (per-round paired ratios, their median and range, per-step
times, versions, CPU, load average). See README.md for the command and the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

LANGS = ("fr_XX", "de_DE", "es_XX", "ru_RU")
EN = "en_XX"
SPLIT_CHARS = set("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------ input


def _pairs(folder: Path, split: str, lang: str) -> list[tuple[str, str]]:
    a = (folder / f"{split}.{EN}-{lang}.{EN}").read_text(encoding="utf-8").split("\n")[:-1]
    b = (folder / f"{split}.{EN}-{lang}.{lang}").read_text(encoding="utf-8").split("\n")[:-1]
    return [(x, y) for x, y in zip(a, b) if not (SPLIT_CHARS & set(x) or SPLIT_CHARS & set(y))]


def generate(gettext_raw: Path, raw: Path, pairs: int, seed: int = 1) -> dict:
    """Write raw/{train,valid,test}.en_XX-xx.* from the gettext corpus (see the module docstring)."""
    rng = random.Random(seed)
    raw.mkdir(parents=True, exist_ok=True)
    info = {}
    for lang in LANGS:
        pool = _pairs(gettext_raw, "train", lang)
        held = []
        for split in ("valid", "test"):
            rows = _pairs(gettext_raw, split, lang)
            held += rows
            for side, lang_ in ((0, EN), (1, lang)):
                with open(raw / f"{split}.{EN}-{lang}.{lang_}", "w", encoding="utf-8") as f:
                    f.writelines(r[side] + "\n" for r in rows)
        recent: list[tuple[str, str]] = []
        with open(raw / f"train.{EN}-{lang}.{EN}", "w", encoding="utf-8") as fe, \
                open(raw / f"train.{EN}-{lang}.{lang}", "w", encoding="utf-8") as fx:
            for i in range(pairs // len(LANGS)):
                r = rng.random()
                if r < 0.10 and recent:
                    e, x = rng.choice(recent)
                elif r < 0.11:
                    e, x = rng.choice(held)
                elif r < 0.115:
                    e, x = ("", rng.choice(pool)[1]) if rng.random() < 0.5 else (rng.choice(pool)[0], "")
                else:
                    chosen = [rng.choice(pool) for _ in range(rng.randint(1, 3))]
                    e, x = " ".join(c[0] for c in chosen), " ".join(c[1] for c in chosen)
                if len(recent) < 5000:
                    recent.append((e, x))
                else:
                    recent[i % 5000] = (e, x)
                fe.write(e + "\n")
                fx.write(x + "\n")
        info[lang] = {"pool_pairs": len(pool), "heldout_pairs": len(held)}
    return info


def make_vocab(raw: Path, folder: Path, vocab_size: int) -> tuple[Path, Path]:
    """A SentencePiece model trained on the generated training text, and its fairseq dictionary."""
    from data_prep.steps import databin, spm

    files = {lang: [raw / f"train.{EN}-{x}.{lang}" for x in LANGS if lang in (EN, x)] for lang in (EN, *LANGS)}
    spm.train(files, folder, vocab_size, input_sentences=400_000)
    databin.write_dict_from_spm(spm.load(folder / "spm.model"), folder / "dict.txt")
    return folder / "spm.model", folder / "dict.txt"


# ------------------------------------------------------------------------------------------ the two sides


def run_mtkit(raw: Path, work: Path, model: Path, dict_path: Path, workers: int) -> dict:
    from data_prep.binarize import binarize
    from data_prep.steps.filters import FilterSettings
    from data_prep.steps.pipeline import run_steps

    no_filters = FilterSettings(min_chars=1, max_chars=10**9, max_words=10**9, max_ratio=1e9)
    steps = {}
    t = time.perf_counter()
    run_steps(raw, work, steps=("dedup",), workers=workers, max_memory_mb=256)
    steps["dedup"], t = time.perf_counter() - t, time.perf_counter()
    run_steps(raw, work, steps=("clean",), filters=no_filters, workers=workers)
    steps["overlap"], t = time.perf_counter() - t, time.perf_counter()
    binarize(work / "clean", work / "bin", spm_model=str(model), fairseq_dict=str(dict_path), workers=workers)
    steps["encode+binarise"] = time.perf_counter() - t
    return steps


_BINARIZE_DRIVER = r"""
import importlib.util, json, os, sys, time
scripts, data, directions = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
spec = importlib.util.spec_from_file_location("ml50_binarize", os.path.join(scripts, "binarize.py"))
b = importlib.util.module_from_spec(spec)
spec.loader.exec_module(b)
b.RAW_DIR, b.BPE_DIR = f"{data}/clean", f"{data}/bpe"
os.makedirs(f"{data}/databin", exist_ok=True)
t = {"spm_encode": 0.0, "fairseq-preprocess": 0.0}
for direction in directions:  # binarize.py's __main__ body, once per direction
    os.makedirs(f"{b.BPE_DIR}/{direction}", exist_ok=True)
    s = time.perf_counter()
    b.encode_spm(b.SPM_MODEL, direction=direction, splits=["train", "valid", "test"])
    m = time.perf_counter()
    b.binarize(f"{data}/databin", direction, spm_vocab=b.SPM_VOCAB, splits=["train", "valid", "test"])
    t["spm_encode"] += m - s
    t["fairseq-preprocess"] += time.perf_counter() - m
print(json.dumps(t))
"""


def run_fairseq(raw: Path, work: Path, model: Path, dict_path: Path, spm_encode: Path) -> dict:
    import importlib.util

    # located, not imported: importing fairseq (and torch) here would add to fairseq's time and memory
    fairseq_dir = Path(importlib.util.find_spec("fairseq").submodule_search_locations[0])
    scripts = fairseq_dir / "examples" / "multilingual" / "data_scripts"
    data = work / "ML50"
    data.mkdir(parents=True)
    shutil.copyfile(model, work / "sentence.bpe.model")
    shutil.copyfile(dict_path, work / "dict_250k.txt")
    env = dict(os.environ, WORKDIR_ROOT=str(work), SPM_PATH=str(spm_encode),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    directions = ",".join(f"{EN}-{x}" for x in LANGS)
    log = open(work / "fairseq.log", "w")

    def call(*args: str) -> str:
        return subprocess.run([sys.executable, *args], cwd=scripts, env=env, check=True, text=True,
                              stdout=subprocess.PIPE, stderr=log).stdout

    steps = {}
    (data / "dedup").mkdir()  # preprocess_ML50_v1.sh: mkdir -p $ML50/dedup
    t = time.perf_counter()
    call("dedup_all.py", "--from-folder", str(raw), "--to-folder", str(data / "dedup"))
    for p in raw.iterdir():  # dedup_all.py writes train files only; the next script reads valid/test too
        if not p.name.startswith("train."):
            shutil.copyfile(p, data / "dedup" / p.name)
    steps["dedup"], t = time.perf_counter() - t, time.perf_counter()
    call("remove_valid_test_in_train.py", "--from-folder", str(data / "dedup"), "--to-folder", str(data / "clean"),
         "--directions", directions)
    steps["overlap"] = time.perf_counter() - t
    out = call("-c", _BINARIZE_DRIVER, str(scripts), str(data), directions)
    steps.update(json.loads(out.strip().splitlines()[-1]))
    return steps


# ------------------------------------------------------------------------------------------ measuring


class TreeMemory(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_sum, self.peak_one, self._halt = pid, 0, 0, threading.Event()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += children.get(p, [])
        return out

    @staticmethod
    def _kb(pid: int, field: str) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while not self._halt.is_set():
            pids = self._tree()
            self.peak_sum = max(self.peak_sum, sum(self._kb(p, "VmRSS:") for p in pids))
            self.peak_one = max([self.peak_one] + [self._kb(p, "VmHWM:") for p in pids])
            time.sleep(0.05)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def measure(side: str, args: list[str]) -> dict:
    """Run one side in a child process (this script, ``--_side``); time it and sample its memory."""
    load = os.getloadavg()[0]
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, __file__, "--_side", side, *args], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    mem = TreeMemory(p.pid)
    mem.start()
    out, _ = p.communicate()
    mem.stop()
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{side} failed (exit {p.returncode}); see its log in the work folder")
    return {"seconds": round(seconds, 2), "steps": {k: round(v, 2) for k, v in json.loads(out).items()},
            "peak_rss_mb": round(mem.peak_sum / 1024, 1), "largest_process_mb": round(mem.peak_one / 1024, 1),
            "load_1min_at_start": load}


def same_outputs(ours: Path, theirs: Path) -> dict:
    """Deduplicated training text and every databin .bin/.idx compared byte for byte."""
    files = sorted(p.name for p in (theirs / "ML50" / "databin").iterdir() if p.suffix in (".bin", ".idx"))
    databin = all((ours / "bin" / "databin" / n).read_bytes() == (theirs / "ML50" / "databin" / n).read_bytes()
                  for n in files)
    dedup = all((ours / "dedup" / p.name).read_bytes() == p.read_bytes()
                for p in (theirs / "ML50" / "dedup").glob("train.*"))
    return {"databin_files": len(files), "databin_equal": databin and len(files) == 12 * len(LANGS),
            "dedup_text_equal": dedup}


def _spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "values": [round(v, 3) for v in values]}


def this_command() -> str:
    return f"nice -n {os.nice(0)} python benchmarks/data_prep_speed/bench.py " + " ".join(sys.argv[1:])


def git_commit() -> str:
    res = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else "unknown"


def previous_rounds(out: Path, a: argparse.Namespace, inputs: Path) -> list[dict]:
    """--resume: the rounds already in ``out``, if they were run on the same input and settings."""
    if not out.exists():
        return []
    prev = json.loads(out.read_text(encoding="utf-8"))
    same = {"pairs": a.pairs, "workers": a.workers, "input": json.loads((inputs / "generated.json").read_text())}
    differ = [k for k, v in same.items() if prev.get(k) != v]
    if differ:
        raise SystemExit(f"--resume: {out} was written with other {', '.join(differ)}; use another --out or no --resume")
    return [{"command": prev["command"], **x} for x in prev["rounds"]]  # files from before rounds kept theirs


def summarise(a: argparse.Namespace, rounds: list[dict], inputs: Path) -> dict:
    from mtkit.io import cpu_name, versions

    per_step = {side: {k: statistics.median(x[side]["steps"][k] for x in rounds) for k in rounds[0][side]["steps"]}
                for side in ("mtkit", "fairseq")}
    result = {
        "rounds_planned": a.repeats,
        "command": this_command(),
        # every invocation that added rounds (--resume continues a file), in order
        "commands": list(dict.fromkeys(x["command"] for x in rounds)),
        "pairs": a.pairs, "directions": [f"{EN}-{x}" for x in LANGS], "workers": a.workers, "vocab": a.vocab,
        "input": json.loads((inputs / "generated.json").read_text()),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_1min_at_start": rounds[0]["mtkit"][
            "load_1min_at_start"]},
        "versions": versions(("mtkit", "fairseq", "sentencepiece", "numpy", "pandas", "torch")),
        "rounds": rounds,
        "summary": {
            "speed_ratio_fairseq_over_mtkit": _spread([x["speed_ratio"] for x in rounds]),
            "memory_ratio_mtkit_over_fairseq": _spread([x["memory_ratio"] for x in rounds]),
            "mtkit_pairs_per_s": _spread([a.pairs / x["mtkit"]["seconds"] for x in rounds]),
            "fairseq_pairs_per_s": _spread([a.pairs / x["fairseq"]["seconds"] for x in rounds]),
            "mtkit_peak_rss_mb": _spread([x["mtkit"]["peak_rss_mb"] for x in rounds]),
            "fairseq_peak_rss_mb": _spread([x["fairseq"]["peak_rss_mb"] for x in rounds]),
            "median_step_seconds": per_step,
        },
    }
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1_000_000, help="training pairs generated (all directions)")
    ap.add_argument("--repeats", type=int, default=3, help="paired rounds (the order alternates)")
    ap.add_argument("--workers", type=int, default=2, help="mtkit's --workers")
    ap.add_argument("--spm-encode", required=False, help="fairseq's scripts/spm_encode.py (not in the package)")
    ap.add_argument("--gettext", default=None, help="a `mtkit data gettext` output folder (default: built here)")
    ap.add_argument("--work", default="work/data_prep_speed", help="work folder (inputs kept, outputs removed)")
    ap.add_argument("--vocab", type=int, default=8000, help="SentencePiece vocabulary size")
    ap.add_argument("--vocab-from", default=None,
                    help="reuse spm.model and dict.txt from this folder (e.g. another size's input folder)")
    ap.add_argument("--out", default=None, help="results file (default: results_<pairs>.json beside this script)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the rounds already in the results file (same input and settings) and run only "
                         "the missing ones up to --repeats")
    ap.add_argument("--_side", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._side:
        side, raw, work, model, dict_path, extra = a._side[0], *map(Path, a._side[1:5]), a._side[5]
        steps = (run_mtkit(raw, work, model, dict_path, int(extra)) if side == "mtkit"
                 else run_fairseq(raw, work, model, dict_path, Path(extra)))
        print(json.dumps(steps))
        return 0
    if not a.spm_encode or not Path(a.spm_encode).is_file():
        raise SystemExit("--spm-encode: give the path of fairseq's scripts/spm_encode.py (see README.md)")
    from mtkit.io import write_json

    work = Path(a.work).resolve()
    inputs = work / f"input_{a.pairs}"
    gettext = Path(a.gettext) if a.gettext else work / "gettext"
    if not (gettext / "raw").is_dir():
        subprocess.run([sys.executable, "-m", "mtkit.cli", "data", "gettext", "--out", str(gettext),
                        "--langs", ",".join(LANGS), "--workers", "2"], check=True)
    if not (inputs / "dict.txt").exists():
        t = time.perf_counter()
        gen = generate(gettext / "raw", inputs / "raw", a.pairs)
        if a.vocab_from:
            for name in ("spm.model", "dict.txt"):
                shutil.copyfile(Path(a.vocab_from) / name, inputs / name)
        else:
            make_vocab(inputs / "raw", inputs, a.vocab)
        (inputs / "generated.json").write_text(json.dumps(gen))
        print(f"input: {a.pairs} pairs in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    model, dict_path, raw = inputs / "spm.model", inputs / "dict.txt", inputs / "raw"
    out = Path(a.out) if a.out else HERE / f"results_{a.pairs}.json"
    rounds = previous_rounds(out, a, inputs) if a.resume else []
    for r in range(len(rounds), a.repeats):
        order = ("fairseq", "mtkit") if r % 2 == 0 else ("mtkit", "fairseq")
        res, dirs = {}, {}
        for side in order:
            dirs[side] = work / f"run_{side}"
            shutil.rmtree(dirs[side], ignore_errors=True)
            dirs[side].mkdir(parents=True)
            extra = str(a.workers) if side == "mtkit" else str(Path(a.spm_encode).resolve())
            res[side] = measure(side, [str(raw), str(dirs[side]), str(model), str(dict_path), extra])
            print(f"round {r + 1} {side}: {res[side]}", file=sys.stderr)
        check = same_outputs(dirs["mtkit"], dirs["fairseq"])
        if not (check["databin_equal"] and check["dedup_text_equal"]):
            raise SystemExit(f"outputs differ in round {r + 1}: {check}; kept in {work}")
        rounds.append({"round": r + 1, "order": list(order), "command": this_command(), "commit": git_commit(),
                       "date": time.strftime("%Y-%m-%d %H:%M"), **res, "outputs": check,
                       "speed_ratio": round(res["fairseq"]["seconds"] / res["mtkit"]["seconds"], 3),
                       "memory_ratio": round(res["mtkit"]["peak_rss_mb"] / res["fairseq"]["peak_rss_mb"], 3)})
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
        write_json(out, summarise(a, rounds, inputs))  # after every round
    result = summarise(a, rounds, inputs)
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
