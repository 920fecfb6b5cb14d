"""fairseq's broadcast_object between 2 real gloo processes, with mtkit's patches: what rank 0 sends
after loading a checkpoint reaches rank 1 intact, and rank 1 reads it under the same allow-list as a
checkpoint file, so a payload that would only run on rank 1 is refused there (nothing runs), unless
MTKIT_TRUST_CHECKPOINT names the checkpoint being loaded."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "fairseq_2020_dictconfig.pt"


class SystemPayload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Plain:
    def __init__(self, n: int):
        self.n = n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _payload(case: str, marker: str):  # noqa: ANN202
    if case == "state":
        import numpy as np
        from fairseq import checkpoint_utils

        state = checkpoint_utils.load_checkpoint_to_cpu(str(FIXTURE))  # cfg: DictConfig, Namespaces
        state["extra_state"]["best"] = np.float64(2.5)
        return state
    if case == "payload":
        import torch

        return {"model": {"w": torch.ones(2)}, "extra_state": {"x": SystemPayload(marker)}}
    return {"model": {}, "extra_state": {"c": Plain(3)}}


STEPS = (  # (case, checkpoint being loaded): run in this order by both ranks
    ("state", str(FIXTURE)),
    ("trusted", "/ckpts/legacy.pt"),  # MTKIT_TRUST_CHECKPOINT names it (set by the fixture)
    ("payload", "/ckpts/checkpoint_last.pt"),  # last: rank 1 refuses and leaves
)
TRUSTED = "/ckpts/legacy.pt"


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from mtkit import checkpoint, plugin

    plugin.register()
    from fairseq.distributed import utils as dist_utils

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    results: dict = {}
    for case, source in STEPS:
        try:
            with checkpoint.broadcasting_from(source):
                obj = dist_utils.broadcast_object(_payload(case, out + ".PWNED") if rank == 0 else None,
                                                  src_rank=0, group=None)
            if case == "state":
                results[case] = {"ok": True, "arch": obj["cfg"].model.arch, "lr": list(obj["cfg"].optimization.lr),
                                 "cfg_type": type(obj["cfg"]).__name__, "best": float(obj["extra_state"]["best"]),
                                 "w": obj["model"]["encoder.layer_norm.weight"].tolist()}
            else:
                results[case] = {"ok": True, "n": obj["extra_state"]["c"].n if case == "trusted" else None}
        except checkpoint.UnsafeCheckpointError as e:
            results[case] = {"ok": False, "refused": True, "error": str(e)}
            break
        except Exception as e:  # noqa: BLE001 - rank 0 sees the other rank leave
            results[case] = {"ok": False, "refused": False, "error": f"{type(e).__name__}: {e}"}
            break
    Path(f"{out}.rank{rank}.json").write_text(json.dumps(results))
    os._exit(0)  # leave without a barrier: the other rank may be gone


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[int, dict]:
    out = str(tmp_path_factory.mktemp("broadcast") / "run")
    env = {"OMP_NUM_THREADS": "1", "MTKIT_TRUST_CHECKPOINT": TRUSTED}  # inherited by the spawned ranks
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        ctx = mp.get_context("spawn")
        port = _free_port()
        procs = [ctx.Process(target=_worker, args=(r, port, out)) for r in (0, 1)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0, f"rank exited with {p.exitcode}"
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert not Path(out + ".PWNED").exists(), "the payload ran"
    return {r: json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in (0, 1)}


def test_rank1_receives_the_checkpoint_state(results):
    assert results[0]["state"] == results[1]["state"]
    got = results[1]["state"]
    assert got["ok"] and got["cfg_type"] == "DictConfig" and got["arch"] == "transformer"
    assert got["lr"] == [0.005] and got["best"] == 2.5 and got["w"] == [1.0] * 4


def test_broadcast_of_a_trusted_checkpoint_is_trusted(results):
    assert results[1]["trusted"] == {"ok": True, "n": 3}


def test_payload_that_would_only_run_on_rank1_is_refused(results):
    got = results[1]["payload"]
    assert got["refused"], got
    assert "/ckpts/checkpoint_last.pt (as broadcast by rank 0)" in got["error"]
    assert "system" in got["error"] and "--trust-checkpoint" in got["error"]
    assert not results[0]["payload"]["ok"]  # rank 0 does not carry on alone
