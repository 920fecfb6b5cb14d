"""PNG plots of a tune run (matplotlib's object API on the Agg canvas; no pyplot, no display).

- :func:`fitness_png`: fitness of each member over updates; an exploit draws a dotted line from the
  donor's point to the recipient's next point, so a lineage can be followed.
- :func:`schedules_png`: one panel per varied hyperparameter, each member's value over updates as a
  step line (the value used while training up to that update), exploits marked with an x.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

LOG_SCALE = ("lr",)


def _canvas_png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()


def _series(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    from mtkit.tune.outputs import by_trial

    return by_trial(rows)


def _colors(trials: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(trials) <= 10 else "tab20"]
    return {t: cmap(i % cmap.N) for i, t in enumerate(trials)}


def _short(trial: str) -> str:
    return trial.rsplit("_", 1)[-1]


def fitness_png(rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], fitness: str) -> bytes:
    from matplotlib.figure import Figure

    series = _series(rows)
    colors = _colors(list(series))
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    for trial, rs in series.items():
        pts = [(r["updates"], float(r["fitness"])) for r in rs if r.get("fitness") is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, color=colors[trial], label=_short(trial))
    for e in events:
        donor_pt = [(r["updates"], float(r["fitness"])) for r in series.get(e["donor"], [])
                    if r["updates"] == e["update"] and r.get("fitness") is not None]
        after = [(r["updates"], float(r["fitness"])) for r in series.get(e["recipient"], [])
                 if r["updates"] > e["update"] and r.get("fitness") is not None]
        if donor_pt and after:
            (x0, y0), (x1, y1) = donor_pt[0], after[0]
            ax.plot([x0, x1], [y0, y1], ls=":", color=colors[e["recipient"]], lw=1.2)
            ax.plot([x0], [y0], marker="x", ms=8, color=colors[e["recipient"]])
    ax.set_xlabel("updates")
    ax.set_ylabel(fitness)
    ax.set_title(f"{fitness} of each member (x, dotted: exploit of the donor's checkpoint)")
    ax.grid(alpha=0.3)
    if len(series) <= 20:
        ax.legend(fontsize=7, ncol=2, title="trial", title_fontsize=7)
    return _canvas_png(fig)


def schedules_png(rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
                  names: Sequence[str]) -> bytes:
    from matplotlib.figure import Figure

    series = _series(rows)
    colors = _colors(list(series))
    names = list(names) or ["(no varied hyperparameter)"]
    fig = Figure(figsize=(7.5, 2.4 * len(names) + 0.6))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        for trial, rs in series.items():
            xs, ys = [], []
            for r in rs:
                v = r["hp"].get(name)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    xs += [r["restored_from_update"], r["updates"]]
                    ys += [float(v), float(v)]
            if xs:
                ax.plot(xs, ys, color=colors[trial], label=_short(trial))
        for e in events:
            v = e["after"].get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                ax.plot([e["update"]], [float(v)], marker="x", ms=8, color=colors[e["recipient"]])
        if name in LOG_SCALE:
            ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_title("hyperparameter schedules (x: exploit + explore)")
    axes[-1].set_xlabel("updates")
    if len(series) <= 20:
        axes[0].legend(fontsize=7, ncol=4)
    return _canvas_png(fig)
