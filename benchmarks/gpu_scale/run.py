"""Training throughput and model FLOPs utilisation (MFU) of fairseq-train with mtkit on one GPU: an
mBART-50 finetune at ``mbart_large`` size (the mbart50 finetune recipe's settings, bf16) and an
NLLB-style MoE (``transformer_moe``, top-2 gating, an MoE layer every 4th layer as NLLB-200, 32
experts, memory-efficient bf16), each started with ``torchrun --nproc-per-node 1`` on synthetic
fixed-length data (make_data.py). Writes ``results.json`` and the training logs to ``--out``.

    python3 benchmarks/gpu_scale/run.py --out runs/gpu_scale          # on a CUDA machine
    python3 benchmarks/gpu_scale/run.py --dry --out /tmp/gpu_scale    # CPU, tiny sizes, ~2 min

Tokens/s are target tokens per second as fairseq counts them (``wps``), the median over the log
intervals after the warm-up updates. Model FLOPs of an update (a multiply-add = 2 FLOPs, training =
forward + backward = 3 x forward):

    6 x [S x Ls x (P_enc + P_xkv) + S x Lt x (P_dec + V x d)] + 12 x S x d x [n_enc x Ls^2 + n_dec x (Lt^2 + Lt x Ls)]

with S sentences per update, Ls = length + 2 source tokens (language token, tokens, </s>), Lt =
length + 1 target tokens, P_enc the encoder weights applied to each source token (4d^2 attention +
2 d f FFN per layer; an MoE layer: d x E gate + k x 2 d f for the k = 2 experts a token goes to),
P_xkv = n_dec x 2d^2 (cross-attention keys and values of the encoder output), P_dec the decoder
weights per target token (4d^2 self-attention + 2d^2 cross-attention queries/outputs + FFN or MoE),
V x d the output projection (embeddings are looked up, not multiplied). Biases, layer norms and
softmaxes are left out. MFU = FLOPs per update x updates/s / peak, against the bf16 dense matmul rate
measured on an H200 here (790 TFLOP/s, .library KINDS.md) and the datasheet's 989 TFLOP/s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEAKS_TFLOPS = {"h200_bf16_matmul_measured": 790.0, "h200_bf16_dense_datasheet": 989.0}


@dataclass
class Config:
    name: str
    arch: str
    layers: int
    dim: int
    ffn: int
    heads: int
    experts: int = 0  # 0: dense
    moe_freq: int = 0
    experts_per_token: int = 2
    precision: str = "--bf16"
    max_tokens: int = 16384
    updates: int = 120
    warmup: int = 20
    log_interval: int = 10
    extra: list[str] = field(default_factory=list)

    def moe_layers(self) -> int:
        return sum(1 for i in range(self.layers) if self.experts and self.moe_freq and (i + 1) % self.moe_freq == 0)


def flops_per_update(c: Config, sentences: float, length: int, vocab: int) -> float:
    """Model FLOPs of one training update (the formula in the module docstring)."""
    d, f, n = c.dim, c.ffn, c.layers
    ls, lt = length + 2, length + 1
    moe = c.moe_layers()
    ffn_dense = 2 * d * f
    ffn_moe = d * c.experts + c.experts_per_token * 2 * d * f
    p_enc = n * 4 * d * d + (n - moe) * ffn_dense + moe * ffn_moe
    p_xkv = n * 2 * d * d
    p_dec = n * 6 * d * d + (n - moe) * ffn_dense + moe * ffn_moe
    linear = 6 * sentences * (ls * (p_enc + p_xkv) + lt * (p_dec + vocab * d))
    attention = 12 * sentences * d * (n * ls * ls + n * (lt * lt + lt * ls))
    return linear + attention


def matmul_weights(c: Config, vocab: int) -> int:
    """The weights the formula counts, every expert included (fairseq's parameter count minus biases,
    layer norms and learned positions)."""
    d, f, n, moe = c.dim, c.ffn, c.layers, c.moe_layers()
    ffn = (n - moe) * 2 * d * f + moe * (d * c.experts + c.experts * 2 * d * f)
    return n * 4 * d * d + n * 8 * d * d + 2 * ffn + vocab * d


def configs(dry: bool) -> list[Config]:
    if dry:
        small = dict(layers=2, dim=64, ffn=128, heads=4, precision="--cpu", max_tokens=512, updates=10,
                     warmup=4, log_interval=2)
        return [Config("mbart_large_bf16", "mbart_large", **small),
                Config("nllb_moe_bf16", "transformer_moe", experts=4, moe_freq=2, **small)]
    return [Config("mbart_large_bf16", "mbart_large", layers=12, dim=1024, ffn=4096, heads=16),
            Config("nllb_moe_bf16", "transformer_moe", layers=12, dim=1024, ffn=4096, heads=16, experts=32,
                   moe_freq=4, precision="--memory-efficient-bf16")]


def train_args(c: Config, data: Path) -> list[str]:
    """The mbart50 finetune recipe's fairseq-train settings (recipes/mbart50/finetune.sh), sized by ``c``."""
    dims = [f"--{side}-{what}" for side in ("encoder", "decoder") for what in ("layers", "embed-dim",
                                                                                "ffn-embed-dim", "attention-heads")]
    values = [c.layers, c.dim, c.ffn, c.heads] * 2
    args = [str(data), "--user-dir", str(REPO / "mtkit"), "--task", "translation_multi_simple_epoch",
            "--lang-dict", str(data / "langs.txt"), "--lang-pairs", "en_XX-de_DE", "--encoder-langtok", "src",
            "--decoder-langtok", "--arch", c.arch, *[x for pair in zip(dims, map(str, values)) for x in pair],
            "--encoder-normalize-before", "--decoder-normalize-before", "--share-all-embeddings",
            "--optimizer", "adam", "--adam-eps", "1e-06", "--adam-betas", "(0.9, 0.98)",
            "--lr-scheduler", "inverse_sqrt", "--lr", "3e-05", "--warmup-updates", "2500",
            "--dropout", "0.3", "--attention-dropout", "0.1", "--weight-decay", "0.0",
            "--max-tokens", str(c.max_tokens), "--max-update", str(c.updates), "--seed", "222",
            "--no-save", "--disable-validation", "--log-format", "json", "--log-interval", str(c.log_interval),
            "--no-progress-bar", "--num-workers", "2", c.precision]
    if c.experts:
        args += ["--criterion", "moe_label_smoothed_cross_entropy", "--label-smoothing", "0.2",
                 "--moe-expert-count", str(c.experts), "--moe-freq", str(c.moe_freq),
                 "--moe-second-expert-policy", "all", "--moe-gating-use-fp32"]
    else:
        args += ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2",
                 "--lang-tok-style", "mbart", "--layernorm-embedding"]
    return args + c.extra


def intervals(log: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        if "| train_inner |" in line:
            out.append({k: float(v) for k, v in json.loads(line.split("| train_inner |", 1)[1]).items()
                        if re.fullmatch(r"-?[\d.]+(e-?\d+)?", str(v))})
    return out


def measure(c: Config, log: str, length: int) -> dict:
    """tokens/s, updates/s and MFU over the log intervals after the warm-up."""
    vocab = int(re.search(r"dictionary: (\d+) types", log).group(1))
    params = sum(int(m.replace(",", "")) for m in re.findall(r"num\. (?:shared|expert) model params: ([\d,]+)", log))
    rows = [r for r in intervals(log) if r.get("num_updates", 0) > c.warmup]
    if not rows:
        return {"vocab": vocab, "error": "no log interval after the warm-up"}
    ups, wps, bsz = (statistics.median(r[k] for r in rows) for k in ("ups", "wps", "bsz"))
    flops = flops_per_update(c, bsz, length, vocab)
    out = {"vocab": vocab, "params_fairseq": params, "matmul_weights_in_formula": matmul_weights(c, vocab),
           "moe_layers_per_side": c.moe_layers(), "intervals_measured": len(rows),
           "updates_measured": [int(rows[0]["num_updates"]), int(rows[-1]["num_updates"])],
           "sentences_per_update": bsz, "target_tokens_per_s": wps,
           "source_and_target_tokens_per_s": wps * (2 * length + 3) / (length + 1),
           "updates_per_s": ups, "flops_per_update": flops, "model_tflops_per_s": flops * ups / 1e12,
           "mfu": {k: flops * ups / (v * 1e12) for k, v in PEAKS_TFLOPS.items()},
           "loss_first_last": [rows[0].get("loss"), rows[-1].get("loss")],
           "gpu_gb_free_min": min((r["gb_free"] for r in rows if "gb_free" in r), default=None)}
    return out


def run_one(c: Config, data: Path, length: int, out: Path, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
           "-m", "fairseq_cli.train", *train_args(c, data)]
    print("+ " + " ".join(cmd), flush=True)
    t0 = time.time()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, log = res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired as e:
        rc, log = 124, (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
    wall = time.time() - t0
    (out / f"{c.name}.log").write_text(log, encoding="utf-8")
    result = {"name": c.name, "config": asdict(c), "rc": rc, "wall_s": round(wall, 1), "command": cmd}
    if rc == 0 or intervals(log):
        try:
            result.update(measure(c, log, length))
        except (AttributeError, ValueError) as e:
            result["error"] = f"could not read the log: {e}"
    if rc != 0:
        result["log_tail"] = log[-3000:]
    print(json.dumps({k: v for k, v in result.items() if k not in ("command", "log_tail", "config")}), flush=True)
    return result


def environment() -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "host": platform.node(),
           "cuda": torch.version.cuda, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    try:
        import fairseq

        env["fairseq"] = f"{fairseq.__version__} ({fairseq.__file__})"
    except ImportError:
        pass
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for results.json and the training logs")
    ap.add_argument("--dry", action="store_true", help="CPU dry run of the whole logic at tiny sizes")
    ap.add_argument("--only", nargs="*", help="run only these configurations")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per training run")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("GPU_SCALE_WORK", "/tmp/gpu_scale"))
    data = work / ("data_dry" if args.dry else "data")
    length = 14 if args.dry else 62
    if not (data / "langs.txt").exists():
        sizes = ["--vocab", "1000", "--sentences", "3000"] if args.dry else []
        subprocess.run([sys.executable, str(HERE / "make_data.py"), "--out", str(data), "--length", str(length),
                        *sizes], check=True)
    results = {"dry": args.dry, "environment": environment(), "peaks_tflops": PEAKS_TFLOPS,
               "data": {"sentence_tokens": length, "pairs": "en_XX-de_DE", "synthetic": True},
               "flops_formula": __doc__[__doc__.index("    6 x ["):__doc__.index("with S")].strip(), "runs": []}
    for c in configs(args.dry):
        if args.only and c.name not in args.only:
            continue
        results["runs"].append(run_one(c, data, length, args.out, args.timeout))
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["rc"] == 0 for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
