#!/usr/bin/env python3
"""Install times from scratch: fresh venv in a temp folder, empty pip cache, time per step.

    python benchmarks/install/measure.py --runs 2 --variants setup,setup-test \\
        --before 476808a --out benchmarks/install/results.json

Variants (each run of each variant gets a new temp folder, venv, PIP_CACHE_DIR and wheelhouse;
variants are interleaved run by run, so every run of a peer has a run of ``setup`` next to it):

- ``setup`` / ``setup-test``: this checkout's ``bash scripts/setup.sh`` (``--test``), until
  ``mtkit doctor`` passes. ``--before REV`` adds ``setup@REV`` / ``setup-test@REV``: the same
  command from a ``git archive`` of that revision (the install before a change).
- ``fairseq-fixed-pip``: venv, build tools, torch, then ``pip install --no-build-isolation
  fairseq-fixed==0.12.3.1`` (pip's own build of the sdist, all its extensions).
- ``ve-fairseq``: venv, build tools, torch, then ``pip install ve-fairseq==0.12.3`` (its wheel).

For every run: wall and CPU seconds per step (setup.sh's ``==> [setup]`` lines; CPU from its
MTKIT_SETUP_TIMES where it writes them), total wall and CPU, the 1-minute load average at the
start, the exit code, which of fairseq's compiled extensions and torchaudio import, ``pip check``
and the versions installed. The summary gives per-variant medians and, for each peer, the per-run
ratios of its total wall time to ``setup``'s in the same run (median and range).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FAIRSEQ_EXTENSIONS = ("fairseq.data.data_utils_fast", "fairseq.data.token_block_utils_fast", "fairseq.libbleu",
                      "fairseq.libnat", "fairseq.libbase")
MARKER = re.compile(r"^==> \[setup\] (.*)$")
PEERS = {
    "fairseq-fixed-pip": ["--no-build-isolation", "fairseq-fixed==0.12.3.1"],
    "ve-fairseq": ["ve-fairseq==0.12.3"],
}
TORCH = "torch==2.13.0"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_script(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> dict[str, Any]:
    """Run a setup script; time it as a whole and between its ``==> [setup]`` lines."""
    steps: list[dict[str, Any]] = []
    t0, c0 = time.monotonic(), _cpu()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            m = MARKER.match(line.rstrip("\n"))
            if m and not m.group(1).startswith(("done in", "Activate")):
                now = time.monotonic()
                if steps:
                    steps[-1]["wall_s"] = round(now - steps[-1].pop("_t"), 2)
                steps.append({"step": m.group(1), "_t": now})
        rc = proc.wait()
    end = time.monotonic()
    if steps and "_t" in steps[-1]:
        steps[-1]["wall_s"] = round(end - steps[-1].pop("_t"), 2)
    return {"rc": rc, "wall_s": round(end - t0, 2), "cpu_s": round(_cpu() - c0, 2), "steps": steps}


def timed_steps(steps: list[tuple[str, list[str]]], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run commands one after the other, timing each (wall and CPU)."""
    out: list[dict[str, Any]] = []
    t0, c0 = time.monotonic(), _cpu()
    rc = 0
    with open(log, "w", encoding="utf-8") as f:
        for name, cmd in steps:
            f.write(f"==> {name}: {' '.join(cmd)}\n")
            f.flush()
            s0, sc0 = time.monotonic(), _cpu()
            rc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
            out.append({"step": name, "wall_s": round(time.monotonic() - s0, 2), "cpu_s": round(_cpu() - sc0, 2)})
            if rc:
                break
    return {"rc": rc, "wall_s": round(time.monotonic() - t0, 2), "cpu_s": round(_cpu() - c0, 2), "steps": out}


def _probe(py: Path, env: dict[str, str]) -> dict[str, Any]:
    """Which compiled extensions and torchaudio import, versions, pip check, in the finished venv."""
    code = f"""
import importlib, importlib.metadata as md, json
res = {{}}
import torch
for mod in {list(FAIRSEQ_EXTENSIONS) + ["torchaudio"]!r}:
    try:
        importlib.import_module(mod); res[mod] = "ok"
    except Exception as e:
        res[mod] = f"{{type(e).__name__}}: {{e}}"[:300]
vers = {{}}
for d in ("pip", "torch", "numpy", "fairseq-fixed", "ve-fairseq", "torchaudio", "transformers", "ctranslate2",
          "scikit-learn", "hydra-core", "omegaconf"):
    try:
        vers[d] = md.version(d)
    except md.PackageNotFoundError:
        pass
print(json.dumps({{"imports": res, "versions": vers}}))
"""
    res = subprocess.run([str(py), "-c", code], env=env, capture_output=True, text=True)
    probe: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {
        "error": res.stderr[-2000:]}
    chk = subprocess.run([str(py), "-m", "pip", "check"], env=env, capture_output=True, text=True)
    probe["pip_check"] = (chk.stdout + chk.stderr).strip().splitlines()
    return probe


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run_variant(variant: str, root: Path, python: str) -> dict[str, Any]:
    """One from-scratch run of ``variant`` under the empty folder ``root``."""
    cache, wheelhouse, venv = root / "pip-cache", root / "wheelhouse", root / "venv"
    cache.mkdir()
    env = dict(os.environ, PIP_CACHE_DIR=str(cache), MTKIT_WHEELHOUSE=str(wheelhouse), MTKIT_VENV=str(venv),
               PYTHON=python, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    log = root / "log.txt"
    base, _, rev = variant.partition("@")
    if base in ("setup", "setup-test"):
        src = REPO
        if rev:
            src = root / "src"
            src.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        times = root / "times.jsonl"
        env["MTKIT_SETUP_TIMES"] = str(times)
        cmd = ["bash", str(src / "scripts" / "setup.sh")] + (["--test"] if base == "setup-test" else [])
        result = timed_script(cmd, env, log, src)
        if times.exists():  # CPU seconds per step, from setup.sh itself
            cpu = [json.loads(line) for line in times.read_text().splitlines() if line.strip()]
            result["steps_cpu"] = cpu
    elif base in PEERS:
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        result = timed_steps([
            ("venv", [python, "-m", "venv", str(venv)]),
            ("build-tools", pip + ["--upgrade", "pip", "setuptools", "wheel", "cython", "numpy"]),
            ("torch", pip + [TORCH]),
            (base, pip + PEERS[base]),
        ], env, log)
    else:
        raise SystemExit(f"measure.py: unknown variant {variant!r}")
    result["log_tail"] = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    if (venv / "bin" / "python").exists():
        result.update(_probe(venv / "bin" / "python", env))
        result["venv_bytes"] = _du(venv)
    return result


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = re.search(r"model name\s*:\s*(.*)", cpuinfo).group(1)  # type: ignore[union-attr]
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
        info["mem_gib"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    except (OSError, AttributeError):
        pass
    info["git_rev"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                     text=True).stdout.strip()
    info["pip_config"] = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                                        text=True).stdout.strip().splitlines()
    return info


def summarize(runs: list[dict[str, Any]], reference: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], []).append(r)
    for v, rs in by_variant.items():
        ok = [r for r in rs if r["rc"] == 0]
        s: dict[str, Any] = {"runs": len(rs), "ok": len(ok)}
        if ok:
            s["wall_s"] = {"median": statistics.median(r["wall_s"] for r in ok),
                           "min": min(r["wall_s"] for r in ok), "max": max(r["wall_s"] for r in ok)}
            s["cpu_s_median"] = statistics.median(r["cpu_s"] for r in ok)
            s["load1_at_start"] = [r["load1"] for r in ok]
        if v != reference:
            ratios = []
            for r in ok:
                ref = [x for x in runs if x["variant"] == reference and x["run"] == r["run"] and x["rc"] == 0]
                if ref:
                    ratios.append(round(r["wall_s"] / ref[0]["wall_s"], 3))
            if ratios:
                s[f"wall_ratio_to_{reference}"] = {"per_run": ratios, "median": statistics.median(ratios),
                                                   "min": min(ratios), "max": max(ratios)}
        out[v] = s
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--variants", default="setup,setup-test",
                   help="comma list: setup, setup-test, fairseq-fixed-pip, ve-fairseq (default: setup,setup-test)")
    p.add_argument("--before", help="also run setup.sh of this git revision (setup@REV, setup-test@REV)")
    p.add_argument("--python", default=shutil.which("python3") or sys.executable,
                   help="interpreter the venvs are made from")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "install" / "results.json")
    a = p.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v]
    if a.before:
        variants += [f"{v}@{a.before}" for v in variants if v in ("setup", "setup-test")]
    results: dict[str, Any] = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "machine": machine(),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "runs": []}
    for run in range(1, a.runs + 1):
        for variant in variants:
            load1 = os.getloadavg()[0]
            with tempfile.TemporaryDirectory(prefix="mtkit-install-") as tmp:
                print(f"measure.py: run {run}/{a.runs} {variant} (load {load1:.1f}) in {tmp}", file=sys.stderr)
                r = run_variant(variant, Path(tmp), a.python)
            r.update(variant=variant, run=run, load1=round(load1, 2))
            print(f"measure.py: {variant} rc={r['rc']} wall {r['wall_s']} s cpu {r['cpu_s']} s", file=sys.stderr)
            results["runs"].append(r)
            results["summary"] = summarize(results["runs"], variants[0])
            a.out.parent.mkdir(parents=True, exist_ok=True)
            tmp_out = a.out.with_suffix(".json.tmp")
            tmp_out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp_out, a.out)
    print(json.dumps(results["summary"], indent=1))
    return 0 if all(r["rc"] == 0 for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
