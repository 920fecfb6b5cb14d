"""Reading the runs to fit: a CSV file with a header, or JSON lines (one object a run).

Columns are named as in the file. Every value used must be a finite number, D and N must be > 0, and
y must be > 0 (the fit works on log y); anything else stops with the file, line and column named.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtkit.errors import InputError

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


@dataclass
class Runs:
    """The runs of one file, in file order."""

    path: str
    d: np.ndarray
    y: np.ndarray
    n: np.ndarray | None
    lines: list[int]  # line number of each run in the file
    columns: dict[str, str]  # role ("d", "y", "n") -> column name

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> Runs:
        return Runs(self.path, self.d[idx], self.y[idx], None if self.n is None else self.n[idx],
                    [self.lines[i] for i in idx], self.columns)


def _is_jsonl(path: Path) -> bool:
    if path.suffix.lower() in JSONL_SUFFIXES:
        return True
    if path.suffix.lower() in {".csv", ".tsv"}:
        return False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def _csv_records(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise InputError(f"{path}: empty file; expected a header line naming the columns")
        for column in columns:
            if column not in header:
                raise InputError(f"{path}: no column {column!r} in the header (columns: "
                                 f"{', '.join(header)})")
        reader.fieldnames = header
        for record in reader:
            if not any(v.strip() for v in record.values() if isinstance(v, str)):
                continue  # blank line
            yield reader.line_num, record


def _jsonl_records(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not a JSON object ({e.msg}); RUNS in JSON "
                                 "lines holds one object a line") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object, got "
                                 f"{type(record).__name__}")
            for column in columns:
                if column not in record:
                    raise InputError(f"{path}:{lineno}: no {column!r} in this run (keys: "
                                     f"{', '.join(record) or 'none'})")
            yield lineno, record


def _number(value: Any, path: Path, lineno: int, column: str) -> float:
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        shown = "empty" if value is None or value == "" else f"{value!r}, not a finite number"
        raise InputError(f"{path}:{lineno}: column {column!r} is {shown}; fix or drop that run")
    return v


def read_runs(path: str | os.PathLike, d: str, y: str, n: str | None = None) -> Runs:
    """Read the D, y (and N) columns of every run in ``path`` (CSV or JSON lines)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    columns = {"d": d, "y": y} | ({"n": n} if n else {})
    reader = _jsonl_records if _is_jsonl(path) else _csv_records
    values: dict[str, list[float]] = {role: [] for role in columns}
    lines: list[int] = []
    try:
        for lineno, record in reader(path, list(columns.values())):
            for role, column in columns.items():
                v = _number(record[column], path, lineno, column)
                if v <= 0:
                    what = {"d": "D", "n": "N", "y": "y"}[role]
                    why = "" if role != "y" else " (the fit works on log y)"
                    raise InputError(f"{path}:{lineno}: {what} (column {column!r}) must be > 0"
                                     f"{why}, got {record[column]!r}")
                values[role].append(v)
            lines.append(lineno)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not lines:
        raise InputError(f"{path}: no runs in the file")
    return Runs(path=str(path), d=np.array(values["d"]), y=np.array(values["y"]),
                n=np.array(values["n"]) if n else None, lines=lines, columns=columns)
