"""Learning curves: read the scalars fairseq writes with ``--tensorboard-logdir`` and plot them.

fairseq (with tensorboardX or tensorboard installed: ``pip install 'mtkit[tensorboard]'``) writes one
folder per kind of log line under the log folder: ``train_inner`` (every ``--log-interval`` updates),
``train`` (end of epoch) and one per validation subset (``valid``), each holding TensorBoard event
files whose scalars (``loss``, ``nll_loss``, ``ppl``, ``lr``, ...) are indexed by the update number.
:func:`read_scalars` reads them without TensorBoard itself (the files are TFRecord files of
``Event`` protocol buffers); :func:`loss_curves_png` draws train and valid loss over updates.

    from mtkit.evaluation.curves import read_scalars, loss_curves_png
    scalars = read_scalars("checkpoints/ft-m2m/tensorboard")
    scalars["valid"]["loss"]        # [(update, value), ...] in update order
"""
from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtkit.errors import InputError

log = logging.getLogger(__name__)

#: run -> tag -> [(update, value)], sorted by update
Scalars = dict[str, dict[str, list[tuple[int, float]]]]

#: the runs drawn by :func:`loss_curves_png`, in this order, with their legend labels
CURVE_RUNS = (("train_inner", "train"), ("valid", "valid"))


def _event_class() -> Any:
    """The ``Event`` protocol buffer class of whichever TensorBoard writer is installed."""
    try:
        from tensorboardX.proto.event_pb2 import Event
    except ImportError:
        try:
            from tensorboard.compat.proto.event_pb2 import Event
        except ImportError:
            raise InputError("reading TensorBoard event files needs tensorboardX (or tensorboard): "
                             "pip install 'mtkit[tensorboard]'") from None
    return Event


def _records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file (length, length CRC, data, data CRC). A truncated last record,
    as a killed or still running writer leaves, ends the file."""
    with open(path, "rb") as f:
        while True:
            head = f.read(12)
            if len(head) < 12:
                return
            (length,) = struct.unpack("<Q", head[:8])
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                log.warning("%s: truncated record at the end, ignored", path)
                return
            yield data


def read_event_file(path: str | os.PathLike) -> dict[str, dict[int, float]]:
    """Scalars of one event file: tag -> {step: value}."""
    event_cls = _event_class()
    out: dict[str, dict[int, float]] = {}
    for record in _records(Path(path)):
        event = event_cls()
        event.ParseFromString(record)
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[int(event.step)] = float(value.simple_value)
    return out


def read_scalars(logdir: str | os.PathLike) -> Scalars:
    """Every scalar under a ``--tensorboard-logdir`` folder: run (sub-folder) -> tag -> [(update, value)].

    A stage that was interrupted and resumed writes a second event file into the same run; for an
    update logged twice the later file's value is kept."""
    root = Path(logdir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (was fairseq-train given --tensorboard-logdir {root}?)")
    scalars: Scalars = {}
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        merged: dict[str, dict[int, float]] = {}
        for f in sorted(run_dir.glob("events.out.tfevents.*"), key=lambda p: (p.stat().st_mtime, p.name)):
            for tag, points in read_event_file(f).items():
                merged.setdefault(tag, {}).update(points)
        if merged:
            scalars[run_dir.name] = {tag: sorted(points.items()) for tag, points in merged.items()}
    if not scalars:
        raise InputError(f"{root}: no TensorBoard event files with scalars (is tensorboardX installed where "
                         "fairseq-train ran? fairseq only warns when it is not)")
    return scalars


def last_value(scalars: Scalars, run: str, tag: str) -> float | None:
    """The value logged at the highest update for ``run``/``tag``, or None."""
    points = scalars.get(run, {}).get(tag)
    return points[-1][1] if points else None


def best_value(scalars: Scalars, run: str, tag: str) -> tuple[int, float] | None:
    """(update, value) of the lowest ``tag`` value logged for ``run``, e.g. the valid loss of
    fairseq's ``checkpoint_best.pt``: of equal values the latest, as fairseq replaces the best
    checkpoint on a tie (it compares the logged, rounded, values with ``<=``)."""
    points = scalars.get(run, {}).get(tag)
    return min(points, key=lambda p: (p[1], -p[0])) if points else None


def loss_curves_png(scalars: Scalars, title: str, tag: str = "loss",
                    runs: Sequence[tuple[str, str]] = CURVE_RUNS,
                    marks: Mapping[str, int] | None = None) -> bytes:
    """PNG of ``tag`` over updates for each of ``runs`` (train_inner as "train", valid), with a dashed
    vertical line per entry of ``marks`` (label -> update, e.g. the checkpoint that was evaluated)."""
    from matplotlib.figure import Figure

    from mtkit.evaluation.report import figure_png

    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    drawn = 0
    for run, label in runs:
        points = scalars.get(run, {}).get(tag)
        if not points:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3, label=label)
        drawn += 1
    for label, update in (marks or {}).items():
        ax.axvline(update, linestyle="--", color="grey", linewidth=1)
        ax.annotate(label, (update, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="grey")
    if not drawn:
        ax.text(0.5, 0.5, f"no '{tag}' scalars logged", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("updates")
    ax.set_ylabel(tag)
    ax.set_title(title)
    if drawn:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure_png(fig)
