"""The files of a `mtkit tune` run folder, from the rows the trials reported (no Ray needed here).

A *row* is one interval of one trial: ``trial``, ``interval``, ``updates``, ``hp`` (the fairseq
options it trained with), the measured ``fitness`` and metrics, timings, ``donor`` (set on the first
interval after an exploit) and ``checkpoint`` (the folder Ray stored).

- ``trials.csv``: every row (trial, interval, updates, hyperparameters, fitness, metrics, wall times)
- ``events.csv``: each exploit (recipient, donor, update, hyperparameters before / of the donor / after)
- ``best.json``: the best member at the end (config, fitness, checkpoint path)
- ``fitness.png``, ``schedules.png`` (:mod:`mtkit.tune.plots`) and ``summary.md``
"""
from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtkit.io import write_bytes, write_json, write_text

METRICS = ("valid_nll", "valid_loss", "train_loss", "bleu", "chrf++", "lr")
TIMES = ("interval_s", "startup_s", "train_s", "eval_s", "fairseq_s")
_HEADER = {"lr": "logged_lr"}


def hp_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for k in r.get("hp", {}):
            if k not in names:
                names.append(k)
    return names


def by_trial(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["trial"], r["updates"])):
        out.setdefault(r["trial"], []).append(r)
    return out


def final_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [rs[-1] for rs in by_trial(rows).values()]


def best_row(rows: Sequence[Mapping[str, Any]], mode: str) -> Mapping[str, Any] | None:
    """The member with the best fitness at its last interval (ties: the earlier trial)."""
    finals = [r for r in final_rows(rows) if _num(r.get("fitness")) is not None]
    if not finals:
        return None
    sign = 1 if mode == "max" else -1
    return max(finals, key=lambda r: sign * float(r["fitness"]))


def exploit_events(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One event per interval that started from another member's checkpoint."""
    trials = by_trial(rows)
    events = []
    for trial, rs in trials.items():
        for i, r in enumerate(rs):
            if not r.get("donor"):
                continue
            update = int(r["restored_from_update"])
            before = rs[i - 1]["hp"] if i > 0 else {}
            donor_rows = [d for d in trials.get(r["donor"], []) if int(d["updates"]) == update]
            events.append({
                "recipient": trial, "donor": r["donor"], "update": update,
                "before": dict(before), "donor_hp": dict(donor_rows[0]["hp"]) if donor_rows else {},
                "after": dict(r["hp"]),
                "recipient_fitness": _num(rs[i - 1].get("fitness")) if i > 0 else None,
                "donor_fitness": _num(donor_rows[0].get("fitness")) if donor_rows else None,
            })
    return sorted(events, key=lambda e: (e["update"], e["recipient"]))


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.6g}"
    return str(x)


def _csv(header: list[str], lines: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for line in lines:
        w.writerow([_cell(x) for x in line])
    return buf.getvalue()


def trials_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    names = hp_names(rows)
    metrics = [m for m in METRICS if any(_num(r.get(m)) is not None for r in rows)]
    # "lr" is also a hyperparameter: the rate fairseq logged last (after warm-up / decay) is logged_lr
    header = ["trial", "interval", "updates", *names, "fitness", *[_HEADER.get(m, m) for m in metrics], *TIMES,
              "donor"]
    lines = [[r["trial"], i, r["updates"], *[r["hp"].get(n) for n in names], r.get("fitness"),
              *[r.get(m) for m in metrics], *[r.get(t) for t in TIMES], r.get("donor", "")]
             for rs in by_trial(rows).values() for i, r in enumerate(rs, 1)]
    return _csv(header, lines)


def events_csv(events: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    header = ["recipient", "donor", "update", "recipient_fitness", "donor_fitness"]
    for n in names:
        header += [f"{n}_before", f"{n}_donor", f"{n}_after"]
    lines = []
    for e in events:
        line = [e["recipient"], e["donor"], e["update"], e["recipient_fitness"], e["donor_fitness"]]
        for n in names:
            line += [e["before"].get(n), e["donor_hp"].get(n), e["after"].get(n)]
        lines.append(line)
    return _csv(header, lines)


def timing_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean / median wall time per interval and the share of it that was fairseq start-up."""
    out: dict[str, Any] = {"intervals": len(rows)}
    for key in TIMES:
        vals = [v for v in (_num(r.get(key)) for r in rows) if v is not None]
        if vals:
            out[key] = {"mean": statistics.fmean(vals), "median": statistics.median(vals),
                        "min": min(vals), "max": max(vals)}
    total = sum(_num(r.get("interval_s")) or 0.0 for r in rows)
    startup = sum(_num(r.get("startup_s")) or 0.0 for r in rows)
    out["startup_share"] = startup / total if total else None
    return out


def _checkpoint_file(folder: str | None) -> str | None:
    """The file to load from a reported checkpoint folder (dense: checkpoint_last.pt, MoE: -shared.pt)."""
    if not folder:
        return None
    from mtkit.tune.trial import checkpoint_set

    files = checkpoint_set(Path(folder))
    return str(files[0] if files else Path(folder) / "checkpoint_last.pt")


def best_json(best: Mapping[str, Any], fitness: str, mode: str) -> dict[str, Any]:
    return {"trial": best["trial"], "config": best["hp"], "fitness_name": fitness, "mode": mode,
            "fitness": _num(best["fitness"]), "updates": best["updates"],
            "checkpoint": _checkpoint_file(best.get("checkpoint")),
            "metrics": {m: _num(best.get(m)) for m in METRICS if _num(best.get(m)) is not None}}


def _fmt(x: Any) -> str:
    v = _num(x)
    if v is None:
        return str(x) if x not in (None, "") else "-"
    return f"{v:.4g}"


def summary_md(rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
               best: Mapping[str, Any] | None, timing: Mapping[str, Any]) -> str:
    names = hp_names(rows)
    lines = [f"# mtkit tune: {meta.get('scheduler', '?')} ({meta.get('out', '')})", ""]
    lines.append(f"- fitness: `{meta.get('fitness')}` ({meta.get('mode')}); budget {meta.get('budget')} updates "
                 f"per trial in intervals of {meta.get('interval')}; {len(by_trial(rows))} trials")
    if meta.get("scheduler") in ("pbt", "pb2"):
        lines.append(f"- perturbation interval {meta.get('perturbation_interval')} updates, quantile fraction "
                     f"{meta.get('quantile_fraction')}, {len(events)} exploit events (events.csv)")
    if best is not None:
        cfg = ", ".join(f"{k}={_fmt(v)}" for k, v in best["hp"].items())
        lines.append(f"- best: {best['trial']} with {meta.get('fitness')} {_fmt(best['fitness'])} ({cfg})")
    lines += ["", "## Members at the end", "",
              "| trial | updates | " + " | ".join(names) + " | fitness | exploited |",
              "|---|---:|" + "---:|" * len(names) + "---:|---:|"]
    n_exploited = {t: sum(1 for e in events if e["recipient"] == t) for t in by_trial(rows)}
    for r in final_rows(rows):
        lines.append(f"| {r['trial']} | {r['updates']} | " + " | ".join(_fmt(r['hp'].get(n)) for n in names)
                     + f" | {_fmt(r.get('fitness'))} | {n_exploited[r['trial']]} |")
    if events:
        lines += ["", "## Exploit events", "", "| update | recipient | donor | "
                  + " | ".join(f"{n} before → after" for n in names) + " |",
                  "|---:|---|---|" + "---|" * len(names)]
        for e in events:
            lines.append(f"| {e['update']} | {e['recipient']} | {e['donor']} | "
                         + " | ".join(f"{_fmt(e['before'].get(n))} → {_fmt(e['after'].get(n))}" for n in names)
                         + " |")
    lines += ["", "## Wall time per interval", ""]
    for key in TIMES:
        if key in timing:
            t = timing[key]
            lines.append(f"- {key}: mean {t['mean']:.1f} s, median {t['median']:.1f} s "
                         f"(min {t['min']:.1f}, max {t['max']:.1f})")
    if timing.get("startup_share") is not None:
        lines.append(f"- fairseq start-up (launch to first update): {100 * timing['startup_share']:.0f} % "
                     "of the interval wall time")
    lines += ["", "![fitness](fitness.png)", "", "![schedules](schedules.png)", ""]
    return "\n".join(lines)


def write_outputs(out: str | os.PathLike, rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write every output file into ``out``; returns best.json's content and the events."""
    from mtkit.tune import plots

    out = Path(out)
    names = hp_names(rows)
    events = exploit_events(rows)
    best = best_row(rows, meta["mode"])
    timing = timing_summary(rows)
    write_text(out / "trials.csv", trials_csv(rows))
    write_text(out / "events.csv", events_csv(events, names))
    best_doc = best_json(best, meta["fitness"], meta["mode"]) if best else {}
    if best_doc:
        best_doc["timing"] = timing
        write_json(out / "best.json", best_doc, indent=1)
    write_bytes(out / "fitness.png", plots.fitness_png(rows, events, meta["fitness"]))
    write_bytes(out / "schedules.png", plots.schedules_png(rows, events, [p for p in names if _varies(rows, p)]))
    write_text(out / "summary.md", summary_md(rows, events, meta, best, timing))
    return {"best": best_doc, "events": events, "timing": timing}


def _varies(rows: Sequence[Mapping[str, Any]], name: str) -> bool:
    return len({repr(r["hp"].get(name)) for r in rows}) > 1
