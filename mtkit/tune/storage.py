"""The run folder as Ray Tune's storage, with every file appearing whole or not at all.

Ray writes its experiment state (trial list, searcher and callback state) into a staging folder and
then copies it into the storage path with ``pyarrow.fs.copy_files``, file by file and in place; trial
checkpoints travel the same way. A ``kill -9`` during such a copy leaves a truncated file in the run
folder, and ``--resume`` then fails inside Ray (``EOFError: Ran out of input``) or, worse, Ray gives up
restoring and restarts the experiment. :func:`atomic_local_fs` is a local pyarrow filesystem whose
output streams write to a hidden temporary file beside the target and rename it on close, so a crash
leaves either the previous version or the new one. Temporary files left by a crash are removed by
:func:`mtkit.io.clean_stale_tmp` when the experiment resumes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from mtkit.io import atomic_write


class _AtomicWriter:
    """A binary file that becomes ``path`` only when it is closed after a complete write
    (:func:`mtkit.io.atomic_write` held open until pyarrow closes the stream)."""

    def __init__(self, path: str) -> None:
        self._cm = atomic_write(path, "wb")
        self._f = self._cm.__enter__()

    @property
    def closed(self) -> bool:
        return self._f.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        if not self._f.closed:
            self._cm.__exit__(None, None, None)


class AtomicLocalHandler(pafs.FileSystemHandler):
    """pyarrow's local filesystem, except that written files are renamed into place when complete."""

    def __init__(self) -> None:
        self._fs = pafs.LocalFileSystem()

    def __reduce__(self) -> tuple[Any, ...]:  # Ray sends the storage filesystem to every trial
        return (AtomicLocalHandler, ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(AtomicLocalHandler)

    def get_type_name(self) -> str:
        return "mtkit-atomic-local"

    def normalize_path(self, path: str) -> str:
        return self._fs.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return [i for i in self._fs.get_file_info(selector) if not _is_tmp(i.base_name)]

    def create_dir(self, path: str, recursive: bool) -> None:
        self._fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("mtkit's run-folder storage never deletes the root directory's contents")

    def delete_file(self, path: str) -> None:
        self._fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self._fs.open_input_stream(src) as fin, self.open_output_stream(dest, None) as fout:
            while chunk := fin.read(1 << 24):
                fout.write(chunk)

    def open_input_stream(self, path: str) -> Any:
        return self._fs.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self._fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pa.PythonFile(_AtomicWriter(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self._fs.open_append_stream(path, metadata=metadata)


def atomic_local_fs() -> pafs.PyFileSystem:
    """The filesystem to give Ray Tune as ``storage_filesystem`` for a local run folder."""
    return pafs.PyFileSystem(AtomicLocalHandler())


def is_local(fs: Any) -> bool:
    """Whether paths on ``fs`` are paths on this machine (local or :func:`atomic_local_fs`)."""
    if isinstance(fs, pafs.LocalFileSystem):
        return True
    return isinstance(fs, pafs.PyFileSystem) and isinstance(fs.handler, AtomicLocalHandler)


def _is_tmp(name: str) -> bool:
    """A temporary file of :func:`mtkit.io.atomic_write` (``.NAME.*.tmp``): not shown to Ray."""
    return name.startswith(".") and name.endswith(".tmp")


# the state files Ray reads back on restore (the newest of each pattern by name, as Ray picks them)
_STATE_PATTERNS = ("experiment_state-*.json", "basic-variant-state-*.json", "searcher-state-*.pkl",
                   "search_gen_state-*.json", "callback-states-*.pkl", "tuner.pkl", "trainable.pkl")


def check_ray_state(experiment: str | os.PathLike) -> None:
    """Refuse, with what to do, a Ray experiment folder whose newest state file cannot be read (one
    written by an mtkit before :func:`atomic_local_fs`, cut short by a crash): Ray would otherwise
    fail deep inside its restore, or silently start the experiment again."""
    import json

    import ray.cloudpickle as cloudpickle

    from mtkit.errors import InputError

    folder = Path(experiment)
    for pattern in _STATE_PATTERNS:
        found = sorted(folder.glob(pattern))
        if not found:
            continue
        newest = found[-1]
        try:
            with open(newest, "rb") as f:
                if newest.name.startswith("experiment_state-"):
                    json.load(f)
                else:
                    cloudpickle.load(f)
        except Exception as e:  # noqa: BLE001 - any failure means Ray cannot restore from it
            raise InputError(
                f"{newest} cannot be read ({type(e).__name__}: {e}); it was cut short when the experiment "
                "was killed while saving. Move it out of the folder to resume from the save before it "
                f"(other saves here: {len(found) - 1}), or start the experiment again with another --out"
            ) from e
