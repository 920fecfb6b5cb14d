"""Compare systems scored by `mtkit evaluate` (folder mode) per direction; write Markdown, plots and
results.json. Every number comes from the scores.json files given on the command line.

    python recipes/mini/report.py --work WORK --systems multilingual_ft=A/scores.json \
        bilingual_scratch=B/scores.json --out WORK/report [--publish benchmarks/ML50/mini/results.json]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

METRICS = ("bleu", "chrf++")
# resource classes of the gettext corpus (training pairs with English); ML50's own thresholds
# (>=1M high, >=100k medium) would call every gettext language low-resource
CLASSES = (("high", 30_000), ("mid", 5_000), ("low", 500), ("very low", 0))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _versions(repo: Path) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("torch", "fairseq", "sentencepiece", "sacrebleu", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - report what failed instead of a number
            out[mod] = f"unavailable ({type(e).__name__})"
    try:
        out["mtkit_commit"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                             text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        out["mtkit_commit"] = "unknown"
    return out


def _machine() -> dict[str, object]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "platform": platform.platform()}


def _train_lines(raw: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in raw.glob("train.en_XX-*.en_XX"):
        lang = f.name.split(".")[1].split("-")[1]
        with open(f, "rb") as fh:
            counts[lang] = sum(1 for _ in fh)
    return counts


def _class(n: int) -> str:
    return next(name for name, lo in CLASSES if n >= lo)


def _bar_plot(rows: list[dict], systems: list[str], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dirs = [r["direction"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(dirs)), 3.6))
    width = 0.8 / max(1, len(systems))
    for i, s in enumerate(systems):
        vals = [r[s][metric] if r.get(s) else 0.0 for r in rows]
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(dirs))]
        ax.bar(xs, vals, width, label=s)
    ax.set_xticks(range(len(dirs)))
    ax.set_xticklabels(dirs, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"ML50-mini: {metric} per direction")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--systems", nargs="+", required=True, help="NAME=scores.json (mtkit evaluate --out)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--command", default="recipes/mini/run.sh")
    ap.add_argument("--publish", type=Path, help="also write results.json here")
    args = ap.parse_args(argv)

    systems: dict[str, dict] = {}
    for item in args.systems:
        name, _, path = item.partition("=")
        p = Path(path)
        if not p.is_file():
            print(f"error: scores for system {name}: {p} does not exist (did mtkit evaluate run?)", file=sys.stderr)
            return 2
        systems[name] = json.loads(p.read_text(encoding="utf-8"))["directions"]
    names = list(systems)
    lines = _train_lines(args.work / "data" / "raw")
    directions = sorted({d for s in systems.values() for d in s},
                        key=lambda d: (-lines.get(d.replace("en_XX", "").strip("-"), 0), d))
    rows = []
    for d in directions:
        other = d.replace("en_XX", "").strip("-")
        row: dict = {"direction": d, "train_pairs": lines.get(other), "class": _class(lines.get(other, 0))}
        for s in names:
            r = systems[s].get(d)
            row[s] = {m: round(float(r[m]), 2) for m in METRICS if m in r} if r else None
        rows.append(row)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for metric in METRICS:
        _bar_plot(rows, names, metric, out / f"compare_{metric.replace('++', 'pp')}.png")

    # averages over the directions every system has (the fair comparison), and over all of each
    common = [r for r in rows if all(r[s] for s in names)]
    averages: dict[str, dict] = {}
    for s in names:
        mine = [r[s] for r in rows if r[s]]
        averages[s] = {
            "directions": len(mine),
            **{f"{m}_all": round(sum(x[m] for x in mine) / len(mine), 2) for m in METRICS if mine},
            **{f"{m}_shared": round(sum(r[s][m] for r in common) / len(common), 2) for m in METRICS if common},
        }

    timings = {}
    tfile = args.work / "timings.tsv"
    if tfile.exists():
        for line in tfile.read_text().splitlines():
            k, _, v = line.partition("\t")
            timings[k] = int(v)
    budgets = {k: os.environ.get(k) for k in sorted(os.environ) if k.startswith("MINI_")}
    repo = Path(__file__).resolve().parents[2]
    results = {
        "benchmark": "ML50-mini (gettext catalogs)",
        "command": args.command,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": _versions(repo),
        "machine": _machine(),
        "settings": budgets,
        "stage_seconds": timings,
        "systems": {s: {r["direction"]: r[s] for r in rows if r[s]} for s in names},
        "averages": averages,
        "train_pairs": lines,
        "notes": "test split of the gettext corpus (mtkit data gettext); sacrebleu BLEU and chrF++ via mtkit evaluate; "
                 "averages '_shared' are over the directions every system has",
    }
    blob = (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    _atomic_write(out / "results.json", blob)

    md = ["# ML50-mini: multilingual finetuned vs bilingual from scratch", "",
          f"Command: `{args.command}`  ", f"Date: {results['date']}  ",
          f"Machine: {results['machine']['cpus']} CPUs ({results['machine']['cpu']})  ",
          f"Stage wall times (s): {', '.join(f'{k} {v}' for k, v in timings.items()) or 'n/a'}", "",
          "| direction | class | train pairs | " + " | ".join(f"{s} BLEU | {s} chrF++" for s in names) + " |",
          "|---|---|---:|" + "---:|---:|" * len(names)]
    for r in rows:
        cells = []
        for s in names:
            cells += [f"{r[s]['bleu']:.1f}", f"{r[s]['chrf++']:.1f}"] if r[s] else ["–", "–"]
        md.append(f"| {r['direction']} | {r['class']} | {r['train_pairs'] or 0} | " + " | ".join(cells) + " |")
    md += ["", "## Averages", "", "| system | directions | BLEU (all) | chrF++ (all) | BLEU (shared) | chrF++ (shared) |",
           "|---|---:|---:|---:|---:|---:|"]
    for s, a in averages.items():
        md.append(f"| {s} | {a['directions']} | {a.get('bleu_all', '–')} | {a.get('chrf++_all', '–')} | "
                  f"{a.get('bleu_shared', '–')} | {a.get('chrf++_shared', '–')} |")
    if len(names) == 2 and common:
        a, b = names
        delta = averages[a]["bleu_shared"] - averages[b]["bleu_shared"]
        md += ["", f"On the {len(common)} directions both systems have, {a} is {delta:+.1f} BLEU vs {b} "
                   "(the mBART-50 paper reports +9.3 BLEU on average for multilingual finetuning over bilingual "
                   "models from scratch on the full ML50)."]
    md += ["", "![BLEU](compare_bleu.png)", "", "![chrF++](compare_chrfpp.png)", ""]
    _atomic_write(out / "report.md", "\n".join(md).encode("utf-8"))
    if args.publish:
        _atomic_write(args.publish, blob)
        for metric in METRICS:
            tag = metric.replace("++", "pp")
            shutil.copyfile(out / f"compare_{tag}.png", args.publish.parent / f"compare_{tag}.png")
        _atomic_write(args.publish.parent / "report.md", "\n".join(md).encode("utf-8"))
    print("\n".join(md[6:]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
