"""The ML50-mini report: per-direction scores of each system with test sizes and resource classes,
averages over the directions whose test set has at least --min-test-lines lines (the others are
shown and marked), training budgets, learning curves (train/valid loss over updates per training
stage, from fairseq's --tensorboard-logdir) and the run's wall time. Every number comes from the
files named on the command line (mtkit evaluate's scores.json, fairseq's event files).

    python benchmarks/ML50/mini/report.py --work WORK --out WORK/report \\
        --system multilingual_ft=WORK/eval/m2m/report/scores.json \\
        --system bilingual_scratch=WORK/eval/bilingual/report/scores.json \\
        --curves finetune=WORK/checkpoints/m2m/tensorboard ... [--publish benchmarks/ML50/mini]

recipes/mini/run.sh calls it in its report stage; it writes WORK/report/{results.json,report.md,
curves/*.png}, and with --publish copies them into the given folder.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError
from mtkit.evaluation.curves import Scalars, best_value, last_value, loss_curves_png, read_scalars
from mtkit.evaluation.folder import classes_from_counts, count_training_lines
from mtkit.io import atomic_copy, git_commit, machine, versions, write_bytes, write_json, write_text
from mtkit.langs import to_flores, to_mbart

log = logging.getLogger("ml50-mini-report")

METRICS = ("bleu", "chrf++")
LABELS = {"bleu": "BLEU", "chrf++": "chrF++"}
#: resource classes of the gettext corpus by training pairs with English (ML50's own thresholds,
#: >= 1M high and >= 100k medium, would call every gettext language low-resource)
GETTEXT_THRESHOLDS = (("high", 30_000), ("mid", 5_000), ("low", 500), ("very low", 0))
#: mBART-50 paper (Tang et al. 2020, arXiv 2008.00401), abstract
PUBLISHED_GAIN = "+9.3 BLEU on average for multilingual finetuning over bilingual models from scratch on ML50"
REPO = Path(__file__).resolve().parents[3]


def pairs_of(items: Sequence[str], what: str, empty: bool = False) -> dict[str, str]:
    """["name=value", ...] -> {name: value}; a clear error for an item without '=' (or, unless
    ``empty``, without a value)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not (value or empty):
            raise InputError(f"--{what} {item!r}: write NAME=VALUE")
        out[name] = value
    return out


def other_language(direction: str) -> str:
    src, _, tgt = direction.partition("-")
    return tgt if src == "en_XX" else src


def direction_rows(systems: Mapping[str, Mapping[str, Any]], train_pairs: Mapping[str, int],
                   min_lines: int) -> list[dict[str, Any]]:
    """One row per direction any system has: class, training pairs, test lines, each system's scores.
    Directions are ordered by training pairs (most first), then name."""
    classes = classes_from_counts(train_pairs, GETTEXT_THRESHOLDS)
    rows = []
    names = {d for scores in systems.values() for d in scores}
    for d in sorted(names, key=lambda d: (-train_pairs.get(to_flores(other_language(d)), 0), d)):
        lang = to_flores(other_language(d))
        sizes = {scores[d]["n_lines"] for scores in systems.values() if d in scores}
        if len(sizes) != 1:
            raise MtkitError(f"{d}: the systems were scored on test sets of different sizes {sorted(sizes)}")
        n = sizes.pop()
        row: dict[str, Any] = {"direction": d, "class": classes.get(lang), "train_pairs": train_pairs.get(lang, 0),
                               "test_lines": n, "in_averages": n >= min_lines}
        for s, scores in systems.items():
            row[s] = {m: round(scores[d][m], 2) for m in METRICS} if d in scores else None
        rows.append(row)
    return rows


def averages(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Per system, means over the directions in the averages (test set large enough): over all of
    its directions ("all") and over the directions every system has ("shared")."""
    counted = [r for r in rows if r["in_averages"]]
    shared = [r for r in counted if all(r[s] for s in names)]
    out: dict[str, Any] = {"shared_directions": [r["direction"] for r in shared],
                           "left_out": [r["direction"] for r in rows if not r["in_averages"]]}
    for s in names:
        mine = [r[s] for r in counted if r[s]]
        entry: dict[str, Any] = {"directions": len(mine)}
        for m in METRICS:
            if mine:
                entry[f"{m}_all"] = round(sum(x[m] for x in mine) / len(mine), 2)
            if shared:
                entry[f"{m}_shared"] = round(sum(r[s][m] for r in shared) / len(shared), 2)
        out[s] = entry
    return out


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def training_summary(curves: Mapping[str, Scalars]) -> dict[str, dict[str, Any]]:
    """Per training stage: updates trained, last train loss, best valid loss and its update."""
    out = {}
    for stage, scalars in curves.items():
        train = sorted(p for run in ("train_inner", "train") for p in scalars.get(run, {}).get("loss", []))
        best = best_value(scalars, "valid", "loss")
        out[stage] = {"updates": train[-1][0] if train else None,
                      "last_train_loss": _round(train[-1][1]) if train else None,
                      "best_valid_loss": _round(best[1]) if best else None,
                      "best_valid_update": best[0] if best else None,
                      "last_valid_loss": _round(last_value(scalars, "valid", "loss")),
                      "curve": f"curves/{stage}.png"}
    return out



def markdown(results: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    avg, min_lines = results["averages"], results["min_test_lines"]
    wall = (f"{results['wall_seconds']} s" if results["wall_seconds"] is not None else
            f"not measured (a resumed run; its stages took {sum(results['stage_seconds'].values())} s)")
    md = ["# ML50-mini: multilingual finetuned vs bilingual from scratch", "",
          f"Command: `{results['command']}`  ",
          *([f"How it ran: {results['run_note']}  "] if results.get("run_note") else []),
          f"Date: {results['date']}  ",
          f"Machine: {results['machine']['cpus']} CPUs ({results['machine']['cpu']}), 1-minute load average "
          f"{results['settings'].get('LOAD_AT_START', '?')} at the start, {results['machine']['load_1min']} at the "
          "report  ",
          f"Wall time: {wall} measured by run.sh "
          f"(stages: {', '.join(f'{k} {v}' for k, v in results['stage_seconds'].items())})", "",
          f"Test sets under {min_lines} lines are marked * and left out of the averages.", "",
          "| direction | class | train pairs | test lines | "
          + " | ".join(f"{s} {LABELS[m]}" for s in names for m in METRICS) + " |",
          "|---|---|---:|---:|" + "---:|" * (len(names) * len(METRICS))]
    for r in rows:
        cells = [f"{r[s][m]:.1f}" if r[s] else "–" for s in names for m in METRICS]
        mark = "" if r["in_averages"] else " *"
        md.append(f"| {r['direction']}{mark} | {r['class']} | {r['train_pairs']} | {r['test_lines']}{mark} | "
                  + " | ".join(cells) + " |")
    md += ["", f"## Averages (directions with at least {min_lines} test lines)", "",
           "| system | directions | BLEU (all) | chrF++ (all) | BLEU (shared) | chrF++ (shared) |",
           "|---|---:|---:|---:|---:|---:|"]
    for s in names:
        a = avg[s]
        md.append(f"| {s} | {a['directions']} | {a.get('bleu_all', '–')} | {a.get('chrf++_all', '–')} | "
                  f"{a.get('bleu_shared', '–')} | {a.get('chrf++_shared', '–')} |")
    md += ["", f"Shared directions: {', '.join(avg['shared_directions']) or 'none'}; left out: "
               f"{', '.join(avg['left_out']) or 'none'}."]
    if len(names) == 2 and avg["shared_directions"]:
        a, b = names
        delta = avg[a]["bleu_shared"] - avg[b]["bleu_shared"]
        md += ["", f"On the shared directions {a} is {delta:+.2f} BLEU vs {b} (the mBART-50 paper reports "
                   f"{PUBLISHED_GAIN}). No confidence interval here: see the systems' comparison report."]
    md += ["", "## Training budgets", ""]
    md += [f"- {k}: {v}" for k, v in results["budgets"].items()]
    md += ["", "| stage | updates | last train loss | best valid loss (update) | last valid loss |",
           "|---|---:|---:|---:|---:|"]
    for stage, t in results["training"].items():
        best = f"{t['best_valid_loss']} ({t['best_valid_update']})" if t["best_valid_loss"] is not None else "–"
        last_valid = t["last_valid_loss"] if t["last_valid_loss"] is not None else "–"
        md.append(f"| {stage} | {t['updates']} | {t['last_train_loss']} | {best} | {last_valid} |")
    md += ["", "## Learning curves (loss over updates; dashed: the checkpoint evaluated)", ""]
    md += [f"![{stage}]({t['curve']})" for stage, t in results["training"].items()]
    return "\n".join(md) + "\n"


def build(args: argparse.Namespace) -> tuple[dict[str, Any], str, dict[str, bytes]]:
    systems = {}
    for name, path in pairs_of(args.system, "system").items():
        p = Path(path)
        if not p.is_file():
            raise InputError(f"scores of system {name}: {p} does not exist (did mtkit evaluate run?)")
        systems[name] = json.loads(p.read_text(encoding="utf-8"))["directions"]
    names = list(systems)
    train_pairs = count_training_lines(args.work / "data" / "raw")
    rows = direction_rows(systems, train_pairs, args.min_test_lines)
    curves = {stage: read_scalars(d) for stage, d in pairs_of(args.curves, "curves").items()}
    evaluated = pairs_of(args.evaluated, "evaluated")
    stage_seconds = {}
    for line in (args.work / "timings.tsv").read_text(encoding="utf-8").splitlines():
        k, _, v = line.partition("\t")
        stage_seconds[k] = int(v)
    results: dict[str, Any] = {
        "benchmark": "ML50-mini (gettext catalogs)",
        "command": args.command,
        "run_note": args.note,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(REPO),
        "versions": versions(("mtkit", "torch", "fairseq", "sentencepiece", "sacrebleu", "numpy")),
        "machine": machine(),
        "wall_seconds": args.wall_seconds,
        "stage_seconds": stage_seconds,
        "settings": pairs_of(args.setting, "setting", empty=True),
        "budgets": pairs_of(args.budget, "budget"),
        "min_test_lines": args.min_test_lines,
        "directions": {r["direction"]: {k: r[k] for k in ("class", "train_pairs", "test_lines", "in_averages")}
                       for r in rows},
        "systems": {s: {r["direction"]: {**r[s], "test_lines": r["test_lines"]} for r in rows if r[s]}
                    for s in names},
        "averages": averages(rows, names),
        "training": training_summary(curves),
        "train_pairs": {to_mbart(lang): n for lang, n in sorted(train_pairs.items())},
        "notes": "test split of the gettext corpus (mtkit data gettext); sacrebleu BLEU and chrF++ through mtkit "
                 "evaluate; averages leave out directions with fewer than min_test_lines test lines; '_shared' "
                 "averages are over the directions every system has; each system is evaluated at the checkpoint "
                 "named in 'evaluated' (training.<stage>.best_valid_update for checkpoint_best.pt)",
        "evaluated": evaluated,
    }
    pngs = {}
    for stage, scalars in curves.items():
        t = results["training"][stage]
        update = {"best": t["best_valid_update"], "last": t["updates"]}.get(evaluated.get(stage, ""))
        marks = {"evaluated": update} if update is not None else None
        pngs[t["curve"]] = loss_curves_png(scalars, f"ML50-mini {stage}", marks=marks)
    return results, markdown(results, rows, names), pngs


def write(out: Path, results: Mapping[str, Any], md: str, pngs: Mapping[str, bytes]) -> list[Path]:
    for rel, data in pngs.items():
        write_bytes(out / rel, data)
    write_text(out / "report.md", md)
    write_json(out / "results.json", results)
    return [out / "results.json", out / "report.md", *(out / rel for rel in pngs)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, type=Path, help="the mini run's work folder (MINI_WORK)")
    ap.add_argument("--out", required=True, type=Path, help="report folder")
    ap.add_argument("--system", action="append", required=True, help="NAME=scores.json of mtkit evaluate")
    ap.add_argument("--curves", action="append", default=[], help="STAGE=--tensorboard-logdir of the stage")
    ap.add_argument("--evaluated", action="append", default=[],
                    help="STAGE=best|last: the checkpoint of the stage that was evaluated (marked on its curve)")
    ap.add_argument("--setting", action="append", default=[], help="NAME=VALUE recorded in results.json")
    ap.add_argument("--budget", action="append", default=[], help="STAGE=rule recorded in results.json")
    ap.add_argument("--wall-seconds", type=int,
                    help="the wall time of the run, measured by run.sh when one invocation ran every stage")
    ap.add_argument("--min-test-lines", type=int, default=100,
                    help="directions with fewer test lines are left out of the averages (default 100)")
    ap.add_argument("--command", default="bash recipes/mini/run.sh")
    ap.add_argument("--note", default=None,
                    help="how the run was done when one plain invocation did not do it all (run.sh: MINI_NOTE)")
    ap.add_argument("--publish", type=Path, help="also copy results.json, report.md and the curves here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        results, md, pngs = build(args)
    except MtkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = write(args.out, results, md, pngs)
    if args.publish:
        for f in files:
            atomic_copy(f, args.publish / f.relative_to(args.out))
        log.info("published into %s", args.publish)
    print(md, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
