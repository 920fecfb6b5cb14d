"""Start fairseq-train the ways users do (one process, torchrun, fairseq's own spawn, one process per
rank with a tcp:// rendezvous) and read its logs; shared by the distributed and crash tests."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
LAUNCHERS = ("single", "torchrun", "spawn", "tcp", "srun")


def slurm_ready() -> bool:
    """A SLURM controller answers here (never in CI; see docs/distributed.md for the local set-up)."""
    if not shutil.which("srun") or not shutil.which("sinfo"):
        return False
    res = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return res.returncode == 0 and "idle" in res.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith("TORCH_FORCE") and k not in ("MTKIT_TRUST_CHECKPOINT", "WORLD_SIZE", "RANK")}
    out["OMP_NUM_THREADS"] = "1"
    return out


def commands(launcher: str, args: list[str]) -> list[list[str]]:
    """The command line(s) of a 2-rank gloo job started by ``launcher`` (``single``: one process)."""
    train = str(BIN / "fairseq-train")
    gloo = ["--distributed-backend", "gloo"]
    if launcher == "single":
        return [[train, *args]]
    if launcher == "torchrun":  # env:// rendezvous; fairseq reads WORLD_SIZE/RANK/LOCAL_RANK
        return [[str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", train, *args, *gloo]]
    if launcher == "spawn":  # fairseq starts the ranks itself (torch.multiprocessing.spawn)
        return [[train, *args, *gloo, "--distributed-world-size", "2"]]
    if launcher == "tcp":  # one process per rank, as a cluster script would start them
        port = free_port()
        return [[train, *args, *gloo, "--distributed-world-size", "2", "--distributed-rank", str(r),
                 "--distributed-no-spawn", "--distributed-init-method", f"tcp://127.0.0.1:{port}"] for r in (0, 1)]
    if launcher == "srun":  # fairseq's SLURM detection: rank = SLURM_PROCID, tcp://<first node>:<port>
        return [["srun", "-n", "2", train, *args, *gloo, "--distributed-world-size", "2",
                 "--distributed-port", str(free_port())]]
    raise ValueError(launcher)


class Job:
    """A running fairseq-train job (one or two processes)."""

    def __init__(self, name: str, launcher: str, args: list[str]):
        self.name = name
        self.cmds = commands(launcher, args)
        self.procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
                      for c in self.cmds]
        self.log = ""
        self.returncodes: list[int] = []

    def wait(self, timeout: float = 900) -> Job:
        outs = []
        for p in self.procs:
            out, _ = p.communicate(timeout=timeout)
            outs.append(out)
        self.log = "\n".join(outs)
        self.returncodes = [p.returncode for p in self.procs]
        return self

    def check(self, timeout: float = 900) -> Job:
        self.wait(timeout)
        assert self.returncodes == [0] * len(self.procs), f"{self.name} failed:\n{self.log[-5000:]}"
        return self


def losses(log: str) -> dict[int, float]:
    """update number -> training loss, from fairseq's ``--log-format json --log-interval 1`` lines."""
    out = {}
    for line in log.splitlines():
        if "| train_inner |" in line:
            rec = json.loads(line.split("| train_inner |", 1)[1])
            out[int(rec["num_updates"])] = float(rec["loss"])
    return out
