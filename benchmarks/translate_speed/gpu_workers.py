#!/usr/bin/env python
"""One-shot check of `--device cuda` with one worker per GPU, for both engines, on a CUDA machine.

For each engine: translate the same lines with one worker (`cuda:0`) and with every visible GPU
(`cuda`; on a one-GPU machine `cuda:0,cuda:0`, two workers on the same GPU, so the pool still runs);
check that the outputs are identical line for line, that every worker did work (fairseq: batches per
replica; CTranslate2: its replica count, and each GPU in use by this process per nvidia-smi), and time
both. DRY=1 runs the same logic on the CPU (`cpu` vs `cpu,cpu`) so it can be tried anywhere.

    python benchmarks/translate_speed/gpu_workers.py -m MODEL [--ct2 CT2DIR] --src FILE \\
        [--src-lang en_XX --tgt-lang fr_XX] [--lines 4000] [--out gpu_workers.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from common import add_model_args, machine


def gpus_used_by_this_process() -> list[str] | None:
    """GPU UUIDs on which this process holds memory (None without nvidia-smi)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sorted({uuid.strip() for pid, uuid in (line.split(",") for line in out.splitlines() if "," in line)
                   if pid.strip() == str(os.getpid())})


def check_engine(engine: str, model: str, lines: list[str], src: str, tgt: str, one: str, many: str,
                 batch_size: int) -> dict:
    from mtkit.translate import Options, Translator

    opts = Options(beam=5, max_sentences=batch_size)
    res: dict = {"engine": engine, "one": one, "many": many}
    outs = {}
    for label, device in (("one", one), ("many", many)):
        t0 = time.perf_counter()
        tr = Translator.from_folder(model, src, tgt, engine=engine, device=device, options=opts)
        load = time.perf_counter() - t0
        tr.translate_lines(lines[:50])  # warm-up (CUDA kernels, allocator)
        t0 = time.perf_counter()
        outs[label] = tr.translate_lines(lines)
        res[f"{label}_translate_s"] = round(time.perf_counter() - t0, 3)
        res[f"{label}_load_s"] = round(load, 3)
        if engine == "fairseq":
            res[f"{label}_replicas"] = [str(r.device) for r in tr.engine.replicas]
            res[f"{label}_batches_per_worker"] = dict(sorted(tr.engine.pool.jobs_done.items()))
        else:
            res[f"{label}_replicas"] = tr.engine.translator.num_translators
        res[f"{label}_gpus_in_use"] = gpus_used_by_this_process()
        del tr
    res["lines"] = len(lines)
    res["lines_out"] = {k: len(v) for k, v in outs.items()}
    res["identical"] = sum(a == b for a, b in zip(outs["one"], outs["many"]))
    workers = res["many_replicas"]
    n_workers = len(workers) if isinstance(workers, list) else workers
    used = res.get("many_batches_per_worker")
    res["ok"] = (res["lines_out"] == {"one": len(lines), "many": len(lines)} and n_workers >= 2
                 and (used is None or len(used) == n_workers))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(ap, "model folder (fairseq engine)", 4000)
    ap.add_argument("--ct2", help="CTranslate2 export of the same model (ct2 engine; skipped without it)")
    ap.add_argument("--src", required=True, help="source sentences")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", help="write the results JSON here")
    args = ap.parse_args()

    dry = os.environ.get("DRY") == "1"
    if dry:
        one, many = "cpu", "cpu,cpu"
    else:
        import torch

        n = torch.cuda.device_count()
        if n == 0:
            raise SystemExit("no CUDA device: run with DRY=1 to try the logic on the CPU")
        one, many = "cuda:0", ("cuda" if n > 1 else "cuda:0,cuda:0")
    lines = Path(args.src).read_text(encoding="utf-8").split("\n")[: args.lines]
    results = {"dry": dry, "machine": machine(), "checks": []}
    for engine, model in (("fairseq", args.model), ("ct2", args.ct2)):
        if model is None:
            continue
        try:
            r = check_engine(engine, model, lines, args.src_lang, args.tgt_lang, one, many, args.batch_size)
        except Exception as e:  # noqa: BLE001 - record the failure, go on with the other engine
            r = {"engine": engine, "ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(r), flush=True)
        results["checks"].append(r)
    results["ok"] = all(c["ok"] for c in results["checks"])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
