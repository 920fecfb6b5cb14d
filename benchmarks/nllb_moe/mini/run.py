"""CPU mini comparison on ML50-mini (gettext): dense vs MoE at equal active compute, micro vs
global balance, EOM on/off, every setting trained for the same number of updates. Writes a
results.json with valid loss, chrF++ and a language-specialisation score per setting, plus the
commands, date and versions.

    python benchmarks/nllb_moe/mini/run.py [--max-update 400] [--out benchmarks/nllb_moe/mini/results.json]

Environment: DATABIN [work/mini/bin/databin, the ML50-mini recipe's; built with `mtkit data gettext`
+ `mtkit data binarize` when missing], MOE_MINI_WORK [work/nllb_moe_mini], OMP_NUM_THREADS.

Equal active compute: the dense model has FFN dim F in every layer; the MoE model replaces every
2nd FFN by E=4 experts of dim F/2 with top-2 routing (2 x F/2 = F active per token).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from mtkit.io import versions, write_json
from mtkit.plugin import user_dir

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

BASE = ["--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "128", "--decoder-embed-dim", "128",
        "--encoder-ffn-embed-dim", "512", "--decoder-ffn-embed-dim", "512", "--encoder-attention-heads", "4",
        "--decoder-attention-heads", "4", "--share-all-embeddings", "--encoder-normalize-before",
        "--decoder-normalize-before", "--max-source-positions", "256", "--max-target-positions", "256"]
MOE = ["--arch", "transformer_moe", "--moe-expert-count", "4", "--moe-freq", "2", "--moe-expert-ffn-dim", "256",
       "--moe-second-expert-policy", "all", "--criterion", "moe_label_smoothed_cross_entropy",
       "--moe-gate-loss-wt", "0.01", "--moe-log-lang-usage"]
SETTINGS: dict[str, list[str]] = {
    "dense": ["--arch", "transformer", "--criterion", "label_smoothed_cross_entropy"],
    "moe_micro": [*MOE, "--moe-balance", "micro"],
    "moe_global": [*MOE, "--moe-balance", "global"],
    "moe_global_eom0.2": [*MOE, "--moe-balance", "global", "--moe-eom", "0.2"],
    # one process with --update-freq 1 makes global == micro by definition; with 4 micro-batches
    # per update (same tokens per update) the global loss balances over 4x more tokens
    "moe_micro_uf4": [*MOE, "--moe-balance", "micro", "--update-freq", "4", "--max-tokens", "1024"],
    "moe_global_uf4": [*MOE, "--moe-balance", "global", "--update-freq", "4", "--max-tokens", "1024"],
}
DEFAULT_SETTINGS = "dense,moe_micro,moe_global,moe_global_eom0.2,moe_micro_uf4,moe_global_uf4"


def run(cmd: list[str], log: Path | None = None, check: bool = True) -> str | None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if log is not None:
        log.write_text(res.stdout + res.stderr, encoding="utf-8")
    if res.returncode != 0:
        if not check:
            print(f"warning: failed: {' '.join(cmd)}\n{res.stderr[-500:]}", file=sys.stderr)
            return None
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


def ensure_databin(databin: Path, work: Path) -> Path:
    if (databin / "dict.txt").exists() or any(databin.glob("dict.*.txt")):
        return databin
    data, out = work / "data", work / "bin"
    langs = "de_DE,en_XX,es_XX,fr_XX,ro_RO,si_LK,sw_KE,gl_ES"
    run([str(BIN / "mtkit"), "data", "gettext", "--out", str(data), "--langs", langs,
         "--valid-size", "200", "--test-size", "200"])
    (work / "langs.txt").write_text(langs.replace(",", "\n") + "\n", encoding="utf-8")
    run([str(BIN / "mtkit"), "data", "binarize", "--raw", str(data / "raw"), "--out", str(out),
         "--spm-vocab-size", "2000", "--max-pieces", "40", "--langs-file", str(work / "langs.txt")])
    return out / "databin"


def last_valid(log: str, key: str) -> float | None:
    vals = []
    for line in log.splitlines():
        if "valid on 'valid' subset" in line:
            fields = dict(f.strip().split(" ", 1) for f in line.split("|") if f.strip().count(" ") == 1)
            if key in fields:
                vals.append(float(fields[key]))
    return vals[-1] if vals else None


MIN_TEST_LINES = 100  # directions with smaller test sets are left out of the mean


def chrf_pp(databin: Path, langs: Path, pairs: list[str], ckpt: Path, spm_lang_pairs: str
            ) -> tuple[dict[str, float | None], dict[str, int]]:
    """chrF++ per direction and the number of test lines it was computed on."""
    import sacrebleu

    scores: dict[str, float | None] = {}
    sizes: dict[str, int] = {}
    for pair in pairs:
        src, tgt = pair.split("-")
        out = run([str(BIN / "fairseq-generate"), str(databin), "--user-dir", user_dir(), "--cpu",
                   "--path", str(ckpt), "--task", "translation_multi_simple_epoch", "--lang-dict", str(langs),
                   "--lang-pairs", spm_lang_pairs, "--encoder-langtok", "src", "--decoder-langtok",
                   "--source-lang", src, "--target-lang", tgt, "--gen-subset", "test", "--beam", "1",
                   "--max-tokens", "4000", "--remove-bpe", "sentencepiece", "--max-len-b", "100"], check=False)
        if out is None:  # e.g. a direction whose test set is (nearly) empty
            scores[pair] = None
            continue
        hyp, ref = {}, {}
        for line in out.splitlines():
            parts = line.split("\t")
            if line.startswith("D-"):
                hyp[parts[0][2:]] = parts[2] if len(parts) > 2 else ""
            elif line.startswith("T-"):
                ref[parts[0][2:]] = parts[1] if len(parts) > 1 else ""
        ids = sorted(ref, key=int)
        sizes[pair] = len(ids)
        scores[pair] = round(sacrebleu.corpus_chrf([hyp.get(i, "") for i in ids], [[ref[i] for i in ids]],
                                                   word_order=2).score, 2)
    return scores, sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-update", type=int, default=400, help="updates per setting (default 400)")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS)
    ap.add_argument("--merge", action="store_true", help="add to the settings already in --out")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--eval-pairs", default="", help="directions to score (default: all en<->x)")
    args = ap.parse_args(argv)
    work = Path(os.environ.get("MOE_MINI_WORK", "work/nllb_moe_mini")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    databin = ensure_databin(Path(os.environ.get("DATABIN", "work/mini/bin/databin")).resolve(), work)
    langs_file = databin / "langs.txt" if (databin / "langs.txt").exists() else work / "langs.txt"
    langs = [x.strip() for x in langs_file.read_text().split() if x.strip()]
    pairs = [p for x in langs if x != "en_XX" for p in (f"en_XX-{x}", f"{x}-en_XX")]
    eval_pairs = args.eval_pairs.split(",") if args.eval_pairs else pairs
    results: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "settings": {},
                     "versions": versions()}
    results["setup"] = {"databin": str(databin), "max_update": args.max_update, "threads":
                        os.environ.get("OMP_NUM_THREADS"), "lang_pairs": pairs, "eval_pairs": eval_pairs,
                        "eval": "fairseq-generate --beam 1 on test, sacrebleu chrF++ (word_order=2) vs T- lines"}
    if args.merge and Path(args.out).exists():
        earlier = json.loads(Path(args.out).read_text())
        results["settings"] = earlier.get("settings", {})
        results["earlier_runs"] = [*earlier.get("earlier_runs", []), {k: earlier.get(k) for k in ("date", "setup")}]
    for name in args.settings.split(","):
        save = work / name
        cmd = [str(BIN / "fairseq-train"), str(databin), "--user-dir", user_dir(), "--cpu", "--seed", "1",
               "--task", "translation_multi_simple_epoch", "--lang-dict", str(langs_file), "--lang-pairs",
               ",".join(pairs), "--encoder-langtok", "src", "--decoder-langtok", "--sampling-method",
               "temperature", "--sampling-temperature", "1.5", *BASE, "--label-smoothing", "0.1",
               "--dropout", "0.1", "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "0.002",
               "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "200", "--max-tokens", "4096",
               "--num-workers", "0", "--log-format", "simple", "--log-interval", "50", "--no-progress-bar",
               "--max-update", str(args.max_update),
               "--validate-interval-updates", "100000", "--no-epoch-checkpoints", "--save-dir", str(save),
               *SETTINGS[name]]  # last, so that a setting may override the common options
        ckpt = save / ("checkpoint_last-shared.pt" if name != "dense" else "checkpoint_last.pt")
        log_path = work / f"{name}.train.log"
        if ckpt.exists() and log_path.exists() and "done training" in log_path.read_text():
            log = log_path.read_text()  # finished earlier: reuse
        else:
            log = run(cmd, log_path)
        updates = re.findall(r"num_updates (\d+)", log)
        scores, sizes = chrf_pp(databin, langs_file, eval_pairs, ckpt, ",".join(pairs))
        results["settings"][name] = {
            "command": " ".join(cmd[1:]),
            "updates": int(updates[-1]) if updates else None,
            "valid_loss": last_valid(log, "loss"),
            "valid_nll_loss": last_valid(log, "nll_loss"),
            "lang_specialisation": last_valid(log, "moe_lang_specialisation"),
            "chrf_pp": scores,
            "test_lines": sizes,
        }
        s = [v for p, v in scores.items() if v is not None and sizes.get(p, 0) >= MIN_TEST_LINES]
        results["settings"][name]["chrf_pp_mean"] = round(sum(s) / max(len(s), 1), 2)
        results["settings"][name]["chrf_pp_mean_over"] = [p for p in scores if sizes.get(p, 0) >= MIN_TEST_LINES]
        print(name, json.dumps({k: v for k, v in results["settings"][name].items() if k != "command"}), flush=True)
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
