"""Skip a step whose inputs and settings are unchanged since its last complete run."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mtkit.io import file_digest, write_json


class StepCache:
    """Skip a step when the digest of its inputs and settings matches the one recorded last time.

    The record (``.done.<step>.json``) is written after the step's outputs are all in place, so a
    killed run is simply redone.
    """

    def __init__(self, folder: str | os.PathLike, step: str):
        self.folder = Path(folder)
        self.path = self.folder / f".done.{step}.json"

    @staticmethod
    def key(inputs: list[str | os.PathLike], settings: dict) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(settings, sort_keys=True, default=str).encode())
        for p in sorted(str(x) for x in inputs):
            h.update(f"{os.path.basename(p)}\0{os.stat(p).st_size}\0".encode())
            h.update(file_digest(p).encode())
        return h.hexdigest()

    def _record(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def is_done(self, key: str, outputs: list[str | os.PathLike] | None = None) -> bool:
        rec = self._record()
        if rec.get("key") != key:
            return False
        recorded = [self.folder / p for p in rec.get("outputs", [])]
        return all(os.path.exists(p) for p in (outputs or recorded))

    def record(self, key: str, outputs: list[str | os.PathLike], info: dict | None = None) -> None:
        """Outputs are stored relative to the cache's folder, so the record does not depend on where it is."""
        rel = [os.path.relpath(p, self.folder) for p in outputs]
        write_json(self.path, {"key": key, "outputs": rel, "info": info or {}})

    def info(self) -> dict:
        return self._record().get("info", {})
