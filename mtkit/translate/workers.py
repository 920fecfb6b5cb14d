"""Devices and workers: which devices a translation runs on, and a pool that keeps each one busy.

``--device`` names one worker per device: ``cpu``; ``cuda`` (one worker per visible GPU);
``cuda:1``; or a comma-separated list (``cuda:0,cuda:2``, ``cuda:0,2``, ``cpu,cpu``). The
fairseq engine builds one model replica per worker and a :class:`WorkerPool` sends each batch to a
free replica; CTranslate2 receives the device list and spreads batches over its own replicas.
Two CPU workers (``cpu,cpu``) run the same code path as two GPUs, which is how it is tested here.
"""
from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from mtkit.errors import InputError, MtkitError

W = TypeVar("W")
J = TypeVar("J")
R = TypeVar("R")


def resolve_devices(spec: str, cuda_count: Callable[[], int]) -> list[str]:
    """The worker devices of a ``--device`` value, e.g. ``"cuda"`` -> ``["cuda:0", "cuda:1"]``.

    ``cuda_count`` is asked only when a CUDA device is named (so CPU runs import nothing). A GPU
    that does not exist, no GPU at all, or CPU and CUDA mixed in one list are errors that say what to
    pass instead.
    """
    items = [s.strip() for s in spec.split(",")]
    if not spec.strip() or any(not s for s in items):
        raise InputError(f"--device {spec!r}: give cpu, cuda, cuda:N or a comma-separated list of them")
    out: list[str] = []
    count: int | None = None
    for item in items:
        if item == "cpu":
            out.append("cpu")
            continue
        if item == "cuda" or item.startswith("cuda:") or item.isdigit():
            if count is None:
                count = cuda_count()
                if count == 0:
                    raise MtkitError(f"--device {spec} asked for, but no CUDA device is visible "
                                     "(check nvidia-smi and CUDA_VISIBLE_DEVICES, or use --device cpu)")
            if item == "cuda":
                out.extend(f"cuda:{i}" for i in range(count))
                continue
            index = item.split(":", 1)[1] if item.startswith("cuda:") else item
            if not index.isdigit():
                raise InputError(f"--device {spec!r}: {item!r} is not cuda:N with a GPU number N")
            if int(index) >= count:
                raise MtkitError(f"--device {spec}: GPU {index} does not exist ({count} visible: "
                                 f"cuda:0 to cuda:{count - 1})")
            out.append(f"cuda:{int(index)}")
            continue
        raise InputError(f"--device {spec!r}: unknown device {item!r}; use cpu, cuda, cuda:N or a list")
    if "cpu" in out and len(set(out)) > 1:
        raise InputError(f"--device {spec!r}: CPU and CUDA workers cannot be mixed in one run")
    return out


def cuda_indices(devices: list[str]) -> list[int]:
    """GPU numbers of a CUDA device list (``["cuda:0", "cuda:2"]`` -> ``[0, 2]``)."""
    return [int(d.split(":", 1)[1]) for d in devices]


class WorkerPool(Generic[W]):
    """Run jobs on a fixed set of workers, each worker doing one job at a time, results in job order.

    A worker is whatever ``fn(worker, job)`` needs (a model replica on its device). With one worker
    the jobs run in the calling thread; with several, one thread per worker takes the next job
    (torch and CTranslate2 release the GIL while they compute). ``jobs_done`` counts jobs per worker.
    """

    def __init__(self, workers: Iterable[W]):
        self.workers = list(workers)
        if not self.workers:
            raise ValueError("a worker pool needs at least one worker")
        self.jobs_done: Counter[int] = Counter()
        self._free: queue.Queue[int] = queue.Queue()
        for i in range(len(self.workers)):
            self._free.put(i)
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(len(self.workers), thread_name_prefix="mtkit-worker") \
            if len(self.workers) > 1 else None

    def _run(self, fn: Callable[[W, J], R], job: J) -> R:
        i = self._free.get()
        try:
            result = fn(self.workers[i], job)
        finally:
            self._free.put(i)
        with self._lock:
            self.jobs_done[i] += 1
        return result

    def map(self, fn: Callable[[W, J], R], jobs: Iterable[J]) -> Iterator[R]:
        """``fn(worker, job)`` for every job, spread over the workers; yields results in job order."""
        if self._executor is None:
            for job in jobs:
                yield self._run(fn, job)
            return
        futures = [self._executor.submit(self._run, fn, job) for job in jobs]
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
