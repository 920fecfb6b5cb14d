"""Shared by the translate benchmarks: one whole-process run measured (wall time, time to the first
output byte, peak RSS, output digest), paired ratios with their spread, machine facts."""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Run:
    wall_s: float
    first_output_s: float | None  # None: the process wrote nothing to stdout
    peak_rss_mb: float
    cpu_s: float  # user + system time of the process and its children
    lines: int
    digest: str  # blake2b of stdout
    stdout: bytes | None = None


def measure(cmd: list[str], env: dict[str, str], keep_stdout: bool = False) -> Run:
    """Run ``cmd`` to the end; stdout is read as it comes (so the time of its first byte is known)."""
    digest = hashlib.blake2b(digest_size=16)
    kept: list[bytes] = []
    lines = 0
    first = None
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        fd = proc.stdout.fileno()
        while True:
            block = os.read(fd, 1 << 16)
            if not block:
                break
            if first is None:
                first = time.perf_counter() - t0
            digest.update(block)
            lines += block.count(b"\n")
            if keep_stdout:
                kept.append(block)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.stdout.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.read()[-3000:].decode(errors='replace')}")
    return Run(wall_s=wall, first_output_s=first, peak_rss_mb=usage.ru_maxrss / 1024,
               cpu_s=usage.ru_utime + usage.ru_stime, lines=lines, digest=digest.hexdigest(),
               stdout=b"".join(kept) if keep_stdout else None)


def paired(numerators: list[float], denominators: list[float]) -> dict[str, float | list[float]]:
    """Ratios of runs made side by side (repeat r of one system with repeat r of the other):
    every ratio, their median, min and max."""
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return {"ratios": [round(r, 3) for r in ratios], "median": round(statistics.median(ratios), 3),
            "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def machine() -> dict[str, object]:
    """CPU model, its SIMD instruction sets, core count and the 1-minute load average now (the machine is shared)."""
    from mtkit.io import cpu_name, cpu_simd

    return {"cpu": cpu_name(), "cpu_simd": cpu_simd(), "cores": os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M")}


def add_model_args(ap: argparse.ArgumentParser, model_help: str, lines: int) -> None:
    """-m MODEL, --src-lang, --tgt-lang and --lines, as every script here takes them."""
    ap.add_argument("-m", "--model", required=True, help=model_help)
    ap.add_argument("--src-lang", default="en_XX", help="source language (default en_XX)")
    ap.add_argument("--tgt-lang", default="fr_XX", help="target language (default fr_XX)")
    ap.add_argument("--lines", type=int, default=lines, help=f"lines of the input to use (default {lines})")


def bench_env(threads: int) -> dict[str, str]:
    """The same cores for every system: torch intra-op threads, CTranslate2 workers; passive OpenMP."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                OMP_WAIT_POLICY="PASSIVE")
