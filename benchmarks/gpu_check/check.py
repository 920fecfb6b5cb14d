#!/usr/bin/env python
"""Steps of benchmarks/gpu_check/run.sh that need Python: run and score translations, parse MoE training
logs, check the safe checkpoint loader on the GPU, and merge everything into summary.json.

Every sub-command appends one JSON record to ``$GPU_CHECK_WORK/results.jsonl`` (default
/tmp/gpu_check); ``summary`` merges those records with run.sh's step table into one JSON file.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("GPU_CHECK_WORK", "/tmp/gpu_check"))
HYP = WORK / "hyp"


def record(rec: dict) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    print("RESULT " + json.dumps(rec), flush=True)
    return rec


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def score(name: str, kind: str, src: Path, ref: Path, hyp_text: str, wall: float, base: str | None,
          extra: dict | None = None) -> dict:
    """Lines in/out, top-1 agreement with the ``base`` run's output, BLEU against the references."""
    import sacrebleu

    HYP.mkdir(parents=True, exist_ok=True)
    (HYP / f"{name}.txt").write_text(hyp_text, encoding="utf-8")
    src_lines, refs = read_lines(src), read_lines(ref)
    hyps = hyp_text.split("\n")[:-1] if hyp_text else []
    rec = {"kind": kind, "name": name, "ok": len(hyps) == len(src_lines), "lines_in": len(src_lines),
           "lines_out": len(hyps), "wall_s": round(wall, 2)}
    if len(hyps) == len(refs):
        rec["bleu"] = round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)
    base_file = HYP / f"{base}.txt" if base else None
    if base_file and base_file.exists():
        b = read_lines(base_file)
        rec["agree_with"] = base
        rec["agree"] = sum(x == y for x, y in zip(b, hyps))
        rec["agree_pct"] = round(100 * rec["agree"] / max(1, len(src_lines)), 2)
    rec.update(extra or {})
    return rec


def _run(cmd: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    print("+ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        print(res.stderr[-4000:], file=sys.stderr, flush=True)
    return wall, res


def cmd_translate(a: argparse.Namespace) -> int:
    """Whole-process `mtkit translate` (the CLI, as users run it): wall time, lines, agreement, BLEU."""
    cmd = [sys.executable, "-m", "mtkit.cli", "translate", "-m", a.model, "--src-lang", a.src_lang,
           "--tgt-lang", a.tgt_lang, "--no-progress", *a.extra, a.src]
    wall, res = _run(cmd, a.timeout)
    if res.returncode != 0:
        record({"kind": "translate", "name": a.name, "ok": False, "rc": res.returncode,
                "error": res.stderr.strip().splitlines()[-1:] or ["?"], "args": a.extra})
        return 1
    rec = record(score(a.name, "translate", Path(a.src), Path(a.ref), res.stdout, wall, a.base, {"args": a.extra}))
    return 0 if rec["ok"] else 1


def cmd_interactive(a: argparse.Namespace) -> int:
    """fairseq-interactive with the settings of benchmarks/translate_speed/run.py (its own command
    builder and parser), run as ``python -m fairseq_cli.interactive``; --cpu dropped on cuda."""
    spec = importlib.util.spec_from_file_location("translate_speed_run", ROOT / "benchmarks/translate_speed/run.py")
    ts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ts)
    from mtkit.model_folder import build_model, find_files

    files = find_files(a.model)
    lm = build_model(files)
    cmd = ts.fairseq_interactive_cmd(files, lm, a.src_lang, a.tgt_lang, a.beam, Path(a.src))
    cmd = [sys.executable, "-m", "fairseq_cli.interactive", *cmd[1:]]
    if a.device != "cpu":
        cmd.remove("--cpu")
    cmd += a.extra
    wall, res = _run(cmd, a.timeout)
    if res.returncode != 0:
        record({"kind": "interactive", "name": a.name, "ok": False, "rc": res.returncode,
                "error": res.stderr.strip().splitlines()[-1:] or ["?"]})
        return 1
    n = len(read_lines(Path(a.src)))
    hyps = ts.parse_interactive(res.stdout, n)
    rec = record(score(a.name, "interactive", Path(a.src), Path(a.ref), "".join(h + "\n" for h in hyps), wall,
                       a.base, {"args": a.extra, "device": a.device}))
    return 0 if rec["ok"] else 1


MOE_KEYS = ("gate_loss", "overflow_expert1", "overflow_expert2", "expert1_balance_max", "unused_expert1_count",
            "moe_lang_specialisation", "loss_scale", "wps", "ups")


def cmd_moe_log(a: argparse.Namespace) -> int:
    """Loss curve and MoE metrics of a ``--log-format json`` fairseq-train log."""
    rows = []
    for line in Path(a.log).read_text(encoding="utf-8", errors="replace").splitlines():
        for tag in ("| train_inner |", "| train |"):
            if tag in line:
                try:
                    rows.append((tag.strip("| ").strip(), json.loads(line.split(tag, 1)[1])))
                except json.JSONDecodeError:
                    pass
    inner = [r for t, r in rows if t == "train_inner"]
    losses = [float(r["loss"]) for r in inner if "loss" in r]
    last = inner[-1] if inner else {}
    rec = {"kind": "moe_train", "name": a.name, "log_rows": len(inner), "loss_first": losses[0] if losses else None,
           "loss_last": losses[-1] if losses else None, "losses": losses,
           "loss_went_down": bool(losses) and len(losses) > 1 and losses[-1] < losses[0],
           "moe_metrics_logged": {k: k in last for k in MOE_KEYS[:6]},
           "last": {k: last[k] for k in ("num_updates", *MOE_KEYS) if k in last},
           "wall_s": a.wall, "rc": a.rc}
    rec["ok"] = a.rc == 0 and rec["loss_went_down"] and all(
        rec["moe_metrics_logged"][k] for k in ("gate_loss", "overflow_expert1", "expert1_balance_max"))
    record(rec)
    return 0 if rec["ok"] else 1


def cmd_ckpt(a: argparse.Namespace) -> int:
    """mtkit's safe loader on the MoE checkpoint, model built and run on the device, save/load round trip
    of device tensors through mtkit.checkpoint.save/load."""
    import torch

    from mtkit import checkpoint
    from mtkit.model_folder import build_model, find_files
    from mtkit.moe_checkpoint import load_moe_for_inference

    dev = a.device
    out: dict = {"kind": "checkpoint", "name": a.name}
    shared = checkpoint.load(a.shared)  # weights_only=True + allow-list
    out["shared_keys"] = len(shared["model"])
    merged = load_moe_for_inference(str(a.shared).removesuffix("-shared.pt"))
    experts = {k for k in merged["model"] if ".experts." in k}
    out["expert_keys"] = len(experts)
    out["dtypes"] = sorted({str(v.dtype) for v in merged["model"].values() if torch.is_tensor(v)})
    files = find_files(a.model)
    lm = build_model(files)
    lm.model.to(dev)  # every expert of the MoE model, in one process
    out["model_device"] = str(next(lm.model.parameters()).device)
    state = {k: v.to(dev) for k, v in merged["model"].items() if torch.is_tensor(v)}
    tmp = WORK / "roundtrip.pt"
    checkpoint.save({"model": state, "note": "gpu_check"}, tmp)
    back_cpu = checkpoint.load(tmp)  # map_location="cpu" by default
    back_dev = checkpoint.load(tmp, map_location=dev)
    out["roundtrip_equal"] = all(torch.equal(back_cpu["model"][k], v.cpu()) for k, v in state.items())
    out["roundtrip_devices"] = sorted({str(v.device) for v in back_dev["model"].values()})
    out["ok"] = out["roundtrip_equal"] and out["expert_keys"] > 0
    record(out)
    return 0 if out["ok"] else 1


def cmd_summary(a: argparse.Namespace) -> int:
    recs = []
    if (WORK / "results.jsonl").exists():
        recs = [json.loads(x) for x in (WORK / "results.jsonl").read_text(encoding="utf-8").splitlines() if x]
    steps = []
    if (WORK / "steps.tsv").exists():
        for line in (WORK / "steps.tsv").read_text(encoding="utf-8").splitlines():
            name, rc, wall, *note = line.split("\t")
            steps.append({"step": name, "rc": int(rc), "wall_s": float(wall), "note": note[0] if note else ""})
    env: dict = {"python": platform.python_version(), "host": platform.node()}
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.cuda.is_available(),
                   gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except Exception as e:  # noqa: BLE001
        env["torch"] = repr(e)
    for k in ("GPU_CHECK_DEVICE", "DRY", "OFFLINE", "GPU_CHECK_FAIRSEQ_EXT", "PRECISIONS", "MOE_UPDATES"):
        env[k] = os.environ.get(k)
    for r in recs:  # the per-line loss list is in the log; keep the summary short
        if "losses" in r and len(r["losses"]) > 12:
            r["losses"] = r["losses"][:: max(1, len(r["losses"]) // 10)] + r["losses"][-1:]
    doctor = None
    if (WORK / "doctor.json").exists():
        try:
            doctor = json.loads((WORK / "doctor.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            doctor = repr(e)
    summary = {"env": env, "doctor": doctor, "steps": steps, "failed_steps": [s["step"] for s in steps if s["rc"] != 0],
               "results": recs}
    Path(a.out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"failed_steps": summary["failed_steps"],
                      "results": [{k: r.get(k) for k in ("name", "ok", "lines_out", "wall_s", "bleu", "agree_pct",
                                                         "loss_first", "loss_last")} for r in recs]}, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("translate", "interactive"):
        p = sub.add_parser(name)
        p.add_argument("--name", required=True)
        p.add_argument("--model", required=True)
        p.add_argument("--src", required=True)
        p.add_argument("--ref", required=True)
        p.add_argument("--src-lang", default="en_XX")
        p.add_argument("--tgt-lang", default="fr_XX")
        p.add_argument("--base", help="name of the run whose output the agreement is counted against")
        p.add_argument("--timeout", type=float, default=300)
        p.add_argument("--beam", type=int, default=5)
        p.add_argument("--device", default="cuda")
        p.add_argument("extra", nargs="*", help="after --: more options for the command")
    p = sub.add_parser("moe-log")
    p.add_argument("--name", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--rc", type=int, required=True)
    p.add_argument("--wall", type=float, required=True)
    p = sub.add_parser("ckpt")
    p.add_argument("--name", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--shared", required=True)
    p.add_argument("--device", default="cuda")
    p = sub.add_parser("summary")
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    return {"translate": cmd_translate, "interactive": cmd_interactive, "moe-log": cmd_moe_log, "ckpt": cmd_ckpt,
            "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
