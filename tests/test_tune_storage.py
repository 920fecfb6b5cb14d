"""mtkit tune's run-folder storage: a file Ray copies into the run folder appears whole or not at all,
also when the copying process is killed (the failure that broke ``mtkit tune --resume``)."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pafs = pytest.importorskip("pyarrow.fs")

from mtkit.errors import InputError  # noqa: E402
from mtkit.io import clean_stale_tmp  # noqa: E402
from mtkit.tune.storage import atomic_local_fs, check_ray_state, is_local  # noqa: E402

TMP = ".*.tmp"  # mtkit.io.atomic_write's temporary files

REPO = Path(__file__).resolve().parents[1]


def test_copy_files_into_the_run_folder_and_read_back(tmp_path):
    src = tmp_path / "staging"
    (src / "sub").mkdir(parents=True)
    (src / "experiment_state-1.json").write_text('{"a": 1}')
    (src / "sub" / "checkpoint.bin").write_bytes(os.urandom(3 << 20))
    fs = atomic_local_fs()
    pafs.copy_files(str(src), str(tmp_path / "out"), destination_filesystem=fs, chunk_size=1 << 20)
    assert (tmp_path / "out" / "experiment_state-1.json").read_text() == '{"a": 1}'
    assert (tmp_path / "out" / "sub" / "checkpoint.bin").read_bytes() == (src / "sub" / "checkpoint.bin").read_bytes()
    assert not list((tmp_path / "out").rglob(TMP))
    infos = fs.get_file_info(pafs.FileSelector(str(tmp_path / "out"), recursive=True))
    assert sorted(Path(i.path).name for i in infos if i.type == pafs.FileType.File) == \
        ["checkpoint.bin", "experiment_state-1.json"]
    fs.copy_file(str(tmp_path / "out" / "experiment_state-1.json"), str(tmp_path / "out" / "copy.json"))
    assert (tmp_path / "out" / "copy.json").read_text() == '{"a": 1}'


def test_the_filesystem_travels_to_ray_workers():
    fs = pickle.loads(pickle.dumps(atomic_local_fs()))
    assert is_local(fs) and is_local(pafs.LocalFileSystem()) and fs == atomic_local_fs()


def test_an_unfinished_write_leaves_the_previous_version(tmp_path):
    target = tmp_path / "callback-states-1.pkl"
    target.write_bytes(b"old complete state")
    stream = atomic_local_fs().open_output_stream(str(target))
    stream.write(b"half of the new")
    assert target.read_bytes() == b"old complete state"  # not yet closed: nothing replaced
    partial = list(tmp_path.glob(TMP))
    assert len(partial) == 1
    assert clean_stale_tmp(tmp_path) == partial and not partial[0].exists()
    assert target.read_bytes() == b"old complete state"


_KILLED_WRITER = """
import sys, pyarrow.fs as pafs
from mtkit.tune.storage import atomic_local_fs
pafs.copy_files(sys.argv[1], sys.argv[2], destination_filesystem=atomic_local_fs(), chunk_size=1 << 16)
"""


def test_kill_9_during_a_copy_leaves_no_truncated_file(tmp_path):
    """A real process copying a big file is killed with SIGKILL while it writes: the target is the old
    version, never a prefix of the new one (pyarrow's LocalFileSystem leaves the target empty here)."""
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(256 << 20))
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(src), str(target)], env=env)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in tmp_path.glob(TMP)):
        assert proc.poll() is None, "the copy finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"old"
    assert clean_stale_tmp(tmp_path) and not list(tmp_path.glob(TMP))


def test_a_truncated_ray_state_file_is_refused_with_what_to_do(tmp_path):
    import ray.cloudpickle as cloudpickle

    (tmp_path / "experiment_state-2026-12-01_04-40-00.json").write_text('{"trial_data": []}')
    with open(tmp_path / "basic-variant-state-2026-12-01_04-40-00.json", "wb") as f:
        cloudpickle.dump({"ok": 1}, f)
    check_ray_state(tmp_path)  # readable: no error
    (tmp_path / "basic-variant-state-2026-12-01_04-40-00.json").write_bytes(b"")  # as the CI crash left it
    with pytest.raises(InputError, match="basic-variant-state.*cut short.*Move it out"):
        check_ray_state(tmp_path)
