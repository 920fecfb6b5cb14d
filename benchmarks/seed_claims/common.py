"""Shared parts of the MoE seed-claim experiments (moe_vs_dense/, global_balance/): the corpus that
data.sh builds, fairseq commands, two ways to run them (mtkit tune's sweep engine, or a local pool
of processes with a deadline for machines without Ray), reading fairseq's JSON logs, translating
test sets, mtkit compare, and the results file.

Nothing here decides an experiment's settings; each run.py does.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
logger = logging.getLogger("seed_claims")


# ---- the corpus ------------------------------------------------------------------------------------
@dataclass
class Corpus:
    """What ``data.sh WORK`` wrote: raw text, databin, SPM model, resource classes."""

    root: Path

    @property
    def databin(self) -> Path:
        return self.root / "bin" / "databin"

    @property
    def langs_file(self) -> Path:
        return self.databin / "langs.txt"

    @property
    def dictionary(self) -> Path:
        return self.databin / "dict.txt"

    @property
    def spm(self) -> Path:
        return self.root / "bin" / "spm.model"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def classes_file(self) -> Path:
        return self.root / "resource_classes.txt"

    def check(self) -> None:
        missing = [p for p in (self.databin, self.spm, self.raw, self.classes_file) if not p.exists()]
        if missing:
            raise SystemExit(f"corpus in {self.root} is incomplete ({', '.join(map(str, missing))} missing): "
                             f"run benchmarks/seed_claims/data.sh {self.root}")

    @property
    def langs(self) -> list[str]:
        return self.langs_file.read_text(encoding="utf-8").split()

    def directions(self) -> list[str]:
        others = [x for x in self.langs if x != "en_XX"]
        return [p for x in others for p in (f"en_XX-{x}", f"{x}-en_XX")]

    def resource_classes(self) -> dict[str, str]:
        """language -> class (high / mid / low), from ``resource_classes.txt`` (``CODE CLASS # pairs``)."""
        out = {}
        for line in self.classes_file.read_text(encoding="utf-8").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) == 2:
                out[parts[0]] = parts[1]
        return out

    def class_of(self, direction: str) -> str:
        src, tgt = direction.split("-")
        return self.resource_classes()[tgt if src == "en_XX" else src]

    def split_files(self, split: str, direction: str) -> tuple[Path, Path]:
        """(source file, reference file) of a direction (ML50 layout: files named en_XX-x)."""
        src, tgt = direction.split("-")
        x = tgt if src == "en_XX" else src
        return self.raw / f"{split}.en_XX-{x}.{src}", self.raw / f"{split}.en_XX-{x}.{tgt}"

    def lines(self, split: str, direction: str) -> int:
        with open(self.split_files(split, direction)[1], encoding="utf-8") as f:
            return sum(1 for _ in f)

    def training_pairs(self) -> dict[str, int]:
        out = {}
        for line in self.classes_file.read_text(encoding="utf-8").splitlines():
            m = re.match(r"(\S+)\s+\S+\s*#\s*(\d+)", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def mean_lengths(self, split: str = "valid") -> tuple[float, float]:
        """Mean source and target length in tokens of ``split`` as fairseq feeds it (with the language
        token and </s>), over all directions."""
        import numpy as np
        from fairseq.data import data_utils

        src_tot = tgt_tot = n = 0
        for d in self.directions():
            src, tgt = d.split("-")
            x = tgt if src == "en_XX" else src
            sizes = {}
            for lang in (src, tgt):
                ds = data_utils.load_indexed_dataset(str(self.databin / f"{split}.en_XX-{x}.{lang}"), None)
                # a copy: the sizes are a view of the index file's mmap, which the dataset closes when freed
                sizes[lang] = np.array(ds.sizes, dtype=np.int64)
                del ds
            src_tot += float(sizes[src].sum()) + len(sizes[src])  # + language token (encoder-langtok src)
            tgt_tot += float(sizes[tgt].sum()) + len(sizes[tgt])  # + language token (decoder-langtok)
            n += len(sizes[src])
        return src_tot / n, tgt_tot / n


def prepare_run(args: Any, scales: Mapping[str, Mapping[str, Any]], overrides: Sequence[str], name: str
                ) -> tuple[dict[str, Any], tuple[int, ...] | None, Corpus, Path, list[str]]:
    """What every experiment's main does first: its scale's settings with the command-line overrides,
    the seeds (None: the experiment's default), the checked corpus, the work folder and the phases."""
    settings = dict(scales[args.scale])
    for key in overrides:
        if getattr(args, key):
            settings[key] = getattr(args, key)
    seeds = tuple(int(x) for x in args.seeds.split(",")) if args.seeds else None
    corpus = corpus_from_env()
    corpus.check()
    work = Path(args.work or REPO / "work" / "seed_claims" / f"{name}_{args.scale}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    return settings, seeds, corpus, work, args.phases.split(",")


def corpus_from_env() -> Corpus:
    return Corpus(Path(os.environ.get("SEED_CLAIMS_DATA", REPO / "work" / "seed_claims" / "data")).resolve())


# ---- fairseq commands --------------------------------------------------------------------------------
def task_args(corpus: Corpus, *, temperature: float = 5.0, extra: Sequence[str] = ()) -> list[str]:
    """The data part of every fairseq-train command of these experiments (databin first)."""
    return [str(corpus.databin), "--task", "translation_multi_simple_epoch_mtkit",
            "--lang-dict", str(corpus.langs_file), "--lang-pairs", ",".join(corpus.directions()),
            "--encoder-langtok", "src", "--decoder-langtok", "--sampling-method", "temperature",
            "--sampling-temperature", str(temperature), "--valid-per-direction", *extra]


def flag_args(options: Mapping[str, Any]) -> list[str]:
    """``{"moe-eom": 0.2, "homogeneous-batches": True}`` -> ``--moe-eom 0.2 --homogeneous-batches``
    (the form mtkit tune's configurations take)."""
    out: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        out.append(f"--{name}")
        if value is not True:
            out.append(repr(value) if isinstance(value, float) else str(value))
    return out


def parse_train_args(args: Sequence[str]) -> tuple[Any, int]:
    """fairseq's parsed arguments (architecture defaults applied) of a fairseq-train command, and
    the size of its dictionary with the language tokens (the model's vocabulary)."""
    from fairseq import options, tasks

    from mtkit.plugin import register

    register()
    parsed = options.parse_args_and_arch(options.get_training_parser(), list(args))
    task = tasks.setup_task(parsed)
    return parsed, len(task.source_dictionary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Job:
    """One fairseq-train run: ``args`` (without the program), ``ranks`` processes (gloo, one per
    rank) with ``threads`` threads each."""

    name: str
    args: list[str]
    save_dir: Path
    ranks: int = 1
    threads: int = 1
    niceness: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.save_dir / "train.log"

    def commands(self) -> list[list[str]]:
        base = [sys.executable, "-m", "fairseq_cli.train", *self.args, "--user-dir", str(REPO / "mtkit"),
                "--save-dir", str(self.save_dir), "--log-format", "json", "--no-progress-bar"]
        if self.ranks == 1:
            return [base]
        port = free_port()
        return [[*base, "--distributed-world-size", str(self.ranks), "--distributed-rank", str(r),
                 "--distributed-no-spawn", "--distributed-backend", "gloo",
                 "--distributed-init-method", f"tcp://127.0.0.1:{port}"] for r in range(self.ranks)]


def _thread_env(threads: int, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_local(jobs: Sequence[Job], cores: int, deadline_s: float | None = None) -> dict[str, dict[str, Any]]:
    """Run ``jobs`` as local processes, at most ``cores`` threads at once, in the given order; a job
    that is still running when ``deadline_s`` (seconds from now) passes is stopped (its log and
    checkpoints so far are kept). Returns per job: rc (None if stopped), start, wall seconds, the
    1-minute load average when it started."""
    t0 = time.monotonic()
    pending = list(jobs)
    running: dict[str, tuple[Job, list[subprocess.Popen], float]] = {}
    done: dict[str, dict[str, Any]] = {}
    loads: dict[str, float] = {}
    used = 0

    def cost(job: Job) -> int:
        return job.ranks * job.threads

    while pending or running:
        now = time.monotonic()
        while pending and (not running or used + cost(pending[0]) <= cores) and (
                deadline_s is None or now - t0 < deadline_s):
            job = pending.pop(0)
            job.save_dir.mkdir(parents=True, exist_ok=True)
            log = open(job.log, "a", encoding="utf-8")  # noqa: SIM115 - closed with the process
            procs = []
            for i, cmd in enumerate(job.commands()):
                log.write(f"$ {shlex.join(cmd)}\n")
                log.flush()
                out = log if i == 0 else subprocess.DEVNULL
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                              env=_thread_env(job.threads, job.env),
                                              preexec_fn=_nice(job.niceness), start_new_session=True))
            running[job.name] = (job, procs, now)
            loads[job.name] = round(os.getloadavg()[0], 2)
            used += cost(job)
            logger.info("started %s (%d process(es), load average %.1f)", job.name, len(procs), loads[job.name])
        if deadline_s is not None and now - t0 >= deadline_s:
            for name, (_job, procs, start) in list(running.items()):
                for p in procs:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGTERM)
                for p in procs:
                    p.wait()
                done[name] = {"rc": None, "stopped_at_deadline": True, "start_s": start - t0, "wall_s": now - start,
                              "load_average_at_start": loads[name]}
                logger.warning("%s stopped at the deadline (%.0f s)", name, deadline_s)
            for job in pending:
                done[job.name] = {"rc": None, "never_started": True}
            return done
        for name, (job, procs, start) in list(running.items()):
            if all(p.poll() is not None for p in procs):
                rcs = [p.returncode for p in procs]
                done[name] = {"rc": max(rcs, key=abs), "start_s": start - t0, "wall_s": time.monotonic() - start,
                              "load_average_at_start": loads[name]}
                del running[name]
                used -= cost(job)
                level = logging.INFO if done[name]["rc"] == 0 else logging.ERROR
                logger.log(level, "%s finished (rc %s, %.0f s)", name, done[name]["rc"], done[name]["wall_s"])
        time.sleep(1.0)
    return done


def _nice(niceness: int) -> Any:
    def setup() -> None:  # pragma: no cover - runs in the child
        if niceness:
            os.nice(niceness)

    return setup


#: options mtkit tune sets itself for every interval (docs/tune.md); left out of the configurations
TUNE_CONTROLLED = {"save-dir", "max-update", "validate-interval-updates", "save-interval-updates",
                   "keep-interval-updates", "no-epoch-checkpoints", "log-format", "no-progress-bar", "user-dir"}


def run_tune(jobs: Sequence[Job], out: Path, interval: int, budget: int, cpus_per_trial: float) -> Any:
    """The jobs as one mtkit tune sweep (Ray Tune trials, trained interval by interval from their own
    checkpoints, ``cpus_per_trial`` CPUs each, in the jobs' order): the data folder is the common
    argument, each job's other fairseq options are its configuration. A job of several ranks adds
    ``--distributed-world-size`` (fairseq starts the gloo ranks itself). ``out/tune_jobs.json`` maps
    job names to configurations (see :func:`run_dirs`)."""
    from mtkit.tune import run_configs  # the sweep engine (docs/tune.md)

    data = {j.args[0] for j in jobs}
    if len(data) != 1:
        raise ValueError(f"run_tune: all jobs must train on one data folder, not {sorted(data)}")
    configs = {}
    for j in jobs:
        config = {k: v for k, v in args_to_config(j.args[1:]).items() if k not in TUNE_CONTROLLED}
        if j.ranks > 1:
            config.update({"distributed-world-size": j.ranks, "distributed-backend": "gloo", "ddp-backend": "legacy_ddp"})
        configs[j.name] = config
    out.mkdir(parents=True, exist_ok=True)
    (out / "tune_jobs.json").write_text(json.dumps(configs, indent=1), encoding="utf-8")
    return run_configs([data.pop()], list(configs.values()), updates=budget, out=out, interval=interval,
                       cpus_per_trial=cpus_per_trial, threads=jobs[0].threads, resume=(out / "tune_spec.json").exists())


def args_to_config(args: Sequence[str]) -> dict[str, Any]:
    """``--lr 0.002 --share-all-embeddings`` -> ``{"lr": "0.002", "share-all-embeddings": True}``."""
    config: dict[str, Any] = {}
    i = 0
    while i < len(args):
        if not args[i].startswith("--"):
            raise ValueError(f"expected an option at {args[i]!r} in {' '.join(args)}")
        name = args[i][2:]
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            config[name] = args[i + 1]
            i += 2
        else:
            config[name] = True
            i += 1
    return config


# ---- reading fairseq's JSON logs ------------------------------------------------------------------
_RECORD = re.compile(r"\|\s*(train_inner|train|valid)\s*\|\s*(\{.*\})\s*$")


def log_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(tag, record) of every JSON log line (numbers as floats where they parse)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _RECORD.search(line)
        if not m:
            continue
        rec = {}
        for k, v in json.loads(m.group(2)).items():
            try:
                rec[k] = float(v)
            except (TypeError, ValueError):
                rec[k] = v
        out.append((m.group(1), rec))
    return out


def valid_curve(path: Path) -> list[dict[str, Any]]:
    """Every validation of a run: updates, valid nll (base 2) overall and per direction, and the
    other valid metrics; one entry per update count (a resumed run's repeat replaces the earlier)."""
    by_update: dict[int, dict[str, Any]] = {}
    for tag, rec in log_records(path):
        if tag != "valid" or "valid_num_updates" not in rec:
            continue
        u = int(rec["valid_num_updates"])
        entry = {"updates": u, "nll": rec.get("valid_nll_loss"), "loss": rec.get("valid_loss"),
                 "directions": {k.split(":", 1)[1]: v for k, v in rec.items() if k.startswith("valid_nll_loss:")}}
        for key in ("valid_moe_lang_specialisation", "valid_gate_loss", "valid_overflow_expert1",
                    "valid_expert1_balance_max"):
            if key in rec:
                entry[key[len("valid_"):]] = rec[key]
        by_update[u] = entry
    return [by_update[u] for u in sorted(by_update)]


def step_seconds(path: Path, skip_first: int = 1) -> dict[str, float] | None:
    """Training seconds per update from fairseq's ``train_inner`` records (``train_wall`` of each
    log interval / its updates), leaving out the first ``skip_first`` intervals (start-up)."""
    recs = [r for t, r in log_records(path) if t == "train_inner" and "train_wall" in r]
    pairs, prev = [], 0
    for r in recs:
        u = int(r["num_updates"])
        if u > prev:
            pairs.append((u - prev, float(r["train_wall"])))
        prev = u
    pairs = pairs[skip_first:]
    if not pairs:
        return None
    updates = sum(n for n, _ in pairs)
    return {"seconds_per_update": sum(w for _, w in pairs) / updates, "updates_timed": updates}


def checkpoint_file(save_dir: Path, prefix: str) -> Path | None:
    """fairseq's checkpoint (dense: PREFIX.pt; MoE, NLLB layout: PREFIX-shared.pt) if written."""
    for name in (f"{prefix}.pt", f"{prefix}-shared.pt"):
        if (save_dir / name).exists():
            return save_dir / name
    return None


def run_dirs(work: Path, names: Sequence[str]) -> dict[str, Path]:
    """Each run's fairseq folder (its train.log and checkpoints): ``work/runs/NAME`` (local runner)
    or, for runs made by mtkit tune, the trial's ``fairseq/`` folder (the trial whose configuration is
    the job's, from ``work/tune/tune_jobs.json``)."""
    out = {name: work / "runs" / name for name in names}
    jobs_file = work / "tune" / "tune_jobs.json"
    if jobs_file.exists():
        from mtkit.tune.trial import hparams_of

        by_config = {json.dumps(c, sort_keys=True): n for n, c in json.loads(jobs_file.read_text()).items()}
        for params in sorted((work / "tune" / "ray").glob("*/params.json")):
            hp = hparams_of(json.loads(params.read_text(encoding="utf-8")))
            name = by_config.get(json.dumps({k: v for k, v in hp.items()}, sort_keys=True))
            if name in out:
                out[name] = params.parent / "fairseq"
    return out


def tune_run_seconds(run_dirs: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """For runs made by mtkit tune: each run's reported intervals, their summed wall time (fairseq
    start-up, training, validation and saving of every interval that Ray kept, a resumed run's
    intervals included) and the updates they reached. Runs of the local runner are left out."""
    from mtkit.tune import read_rows

    out: dict[str, dict[str, Any]] = {}
    experiments = {d.parent.parent for d in run_dirs.values() if d.name == "fairseq"}
    rows = [r for e in experiments for r in read_rows(e) if r.get("checkpoint")]
    for name, d in run_dirs.items():
        mine = [r for r in rows if Path(r["checkpoint"]).parent == d.parent]
        if mine:
            secs = sorted(float(r.get("interval_s") or 0) for r in mine)
            out[name] = {"intervals": len(mine), "updates": max(int(r["updates"]) for r in mine),
                         "seconds": round(sum(secs), 1),
                         # robust to an interval stretched by a pause of the machine's other work
                         "median_interval_s": round(statistics.median(secs), 1)}
    return out


def checkpoint_at(run_dir: Path, updates: int, planned: int) -> Path | None:
    """The run's checkpoint after ``updates`` updates: checkpoint_last when that is the planned
    budget, else fairseq's checkpoint_EPOCH_UPDATES (dense ``.pt``, MoE ``-shared.pt``)."""
    if updates == planned:
        last = checkpoint_file(run_dir, "checkpoint_last")
        if last is not None and any(c["updates"] == planned for c in valid_curve(run_dir / "train.log")):
            return last
    for p in sorted(run_dir.glob(f"checkpoint_*_{updates}*.pt")):
        if p.name.endswith((f"_{updates}.pt", f"_{updates}-shared.pt")):
            return p
    return None


def evaluated_budget(run_dirs: Mapping[str, Path], planned: int) -> tuple[int, list[str]]:
    """The largest update count that every run validated and saved (the planned budget when all
    runs finished; less when a deadline stopped some, and then every run is evaluated there), and
    the runs left out because they have no validated checkpoint at all (they failed or never got
    to their first validation)."""
    reached, excluded = [], []
    for name, d in run_dirs.items():
        saved = [c["updates"] for c in valid_curve(d / "train.log") if checkpoint_at(d, c["updates"], planned)]
        if saved:
            reached.append(max(saved))
        else:
            excluded.append(name)
    return min(reached, default=0), excluded


# ---- translation and comparison ---------------------------------------------------------------------
def translate_test(checkpoint: Path, corpus: Corpus, directions: Iterable[str], out_dir: Path, *, beam: int = 4,
                   device: str = "cpu", threads: int = 1, max_tokens: int = 4000, split: str = "test",
                   langs_file: Path | None = None) -> dict[str, Any]:
    """Translate each direction's ``split`` source file with the model; ``{src}-{tgt}.hyp`` files in
    ``out_dir`` (what mtkit compare reads). ``langs_file``: the model's language list when it is not
    the corpus's (a model trained on some of the languages). Returns lines and seconds per direction."""
    from mtkit.io import read_lines, write_lines
    from mtkit.translate.engine import Options, Translator

    directions = list(directions)
    t = Translator.from_folder(checkpoint, directions[0].split("-")[0], directions[0].split("-")[1],
                               options=Options(beam=beam, max_tokens=max_tokens), device=device, threads=threads,
                               dict_path=str(corpus.dictionary), spm_path=str(corpus.spm),
                               langs_path=str(langs_file or corpus.langs_file))
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {}
    for d in directions:
        t0 = time.monotonic()
        t.set_direction(*d.split("-"))
        src = list(read_lines(corpus.split_files(split, d)[0]))
        hyps = t.translate_lines(src)
        write_lines(out_dir / f"{d}.hyp", hyps)
        info[d] = {"lines": len(hyps), "seconds": round(time.monotonic() - t0, 2)}
    return info


def compare_inputs(systems: Mapping[str, Path], corpus: Corpus, out: Path, metrics: str = "bleu,chrf++",
                   bootstrap: int = 1000) -> tuple[list[str], dict[str, Any]]:
    """The ``mtkit compare`` command of :func:`compare` and what its result depends on: the command
    (without the interpreter), the digest of every input file, sacrebleu's version and the digest of
    mtkit's evaluation code (a changed comparison is not kept)."""
    import sacrebleu

    from mtkit.io import file_digest

    cmd = [sys.executable, "-m", "mtkit.cli", "compare", *[f"{n}={p}" for n, p in systems.items()], "--ref-dir", str(corpus.raw),
           "--split", "test", "--resource-classes", str(corpus.classes_file), "--metrics", metrics,
           "--bootstrap", str(bootstrap), "--out", str(out)]
    files = sorted({*(f for d in systems.values() for f in Path(d).iterdir() if f.is_file()),
                    *(f for f in corpus.raw.glob("test.*") if f.is_file()), corpus.classes_file})
    code = sorted([*(REPO / "mtkit" / "evaluation").glob("*.py"), REPO / "mtkit" / "cli" / "compare.py"])
    return cmd, {"command": cmd[3:], "inputs": {str(f): file_digest(f) for f in files},
                 "sacrebleu": sacrebleu.__version__, "code": {f.name: file_digest(f) for f in code}}


def compare(systems: Mapping[str, Path], corpus: Corpus, out: Path, metrics: str = "bleu,chrf++",
            bootstrap: int = 1000) -> dict[str, Any]:
    """``mtkit compare`` (sacrebleu's paired bootstrap per direction, stratified averages over
    resource classes, directions under 100 test lines marked and left out of averages); the first
    system is the baseline. Returns compare.json. An earlier comparison in ``out`` is kept when the
    command and every input file's bytes (hypotheses, references, classes) are the same
    (``out/inputs.json``), so re-running an analysis does not redo the bootstrap."""
    from mtkit.io import write_json

    cmd, stamp = compare_inputs(systems, corpus, out, metrics, bootstrap)
    stamp_file, result = out / "inputs.json", out / "compare.json"
    if result.exists() and stamp_file.exists() and json.loads(stamp_file.read_text(encoding="utf-8")) == stamp:
        logger.info("%s: same inputs as the comparison there: kept", out)
        return json.loads(result.read_text(encoding="utf-8"))
    stamp_file.unlink(missing_ok=True)
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if res.returncode != 0:
        raise SystemExit(f"mtkit compare failed:\n{res.stderr[-3000:]}")
    write_json(stamp_file, stamp)
    return json.loads(result.read_text(encoding="utf-8"))


# ---- results ------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Versions, date, machine, load average: what every results file records."""
    import platform

    from mtkit.io import versions

    info: dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                            "versions": versions(("mtkit", "torch", "fairseq", "sacrebleu", "sentencepiece")),
                            "python": platform.python_version(), "machine": platform.machine(),
                            "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def mean(xs: Iterable[float]) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else None


def stdev(xs: Iterable[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    from mtkit.io import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, results, indent=1)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(message)s", stream=sys.stderr)
