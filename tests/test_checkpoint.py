"""Safe checkpoint loading: real fairseq checkpoints load; crafted malicious ones never run."""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mtkit import checkpoint
from mtkit.checkpoint import UnsafeCheckpointError

BIN = Path(sys.executable).parent


class SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _save(obj, path: Path, zip_format: bool = True) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def _assert_refused(path: Path, marker: Path, global_name: str | None):
    with pytest.raises(UnsafeCheckpointError) as e:
        checkpoint.load(path)
    msg = str(e.value)
    assert str(path) in msg
    if global_name:
        assert global_name in msg
    assert "--trust-checkpoint" in msg
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reduce_to_os_system_is_refused(tmp_path, marker, zip_format):
    path = _save({"model": {"w": torch.zeros(2)}, "x": SystemPayload(marker)}, tmp_path / "a.pt", zip_format)
    _assert_refused(path, marker, "system")


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reduce_to_builtins_exec_is_refused(tmp_path, marker, zip_format):
    path = _save(ExecPayload(marker), tmp_path / "b.pt", zip_format)
    _assert_refused(path, marker, "builtins.exec")


def test_payload_nested_in_a_dict_value_is_refused(tmp_path, marker):
    state = {"model": {"w": torch.ones(3)}, "extra_state": {"metrics": {"deep": [1, {"p": SystemPayload(marker)}]}}}
    path = _save(state, tmp_path / "c.pt")
    _assert_refused(path, marker, "system")


class Plain:
    """Harmless, but not something a fairseq checkpoint holds."""

    def __init__(self, n: int):
        self.n = n


def test_class_from_an_arbitrary_module_is_refused(tmp_path, marker):
    from fractions import Fraction

    path = _save({"model": {}, "c": Plain(3)}, tmp_path / "d.pt")
    _assert_refused(path, marker, "Plain")
    path = _save({"model": {}, "f": Fraction(1, 3)}, tmp_path / "f.pt")
    _assert_refused(path, marker, "fractions.Fraction")


def _edit_data_pkl(src: Path, dst: Path, new_pickle: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = new_pickle
            zout.writestr(item, data)


def test_torch_zip_checkpoint_with_edited_data_pkl_is_refused(tmp_path, marker):
    clean = _save({"model": {"w": torch.zeros(2)}}, tmp_path / "clean.pt")
    assert checkpoint.load(clean)["model"]["w"].shape == (2,)
    # hand-written pickle: GLOBAL posix.system / os.system, then REDUCE with a touch command
    cmd = f"touch {marker}".encode()
    evil = b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
    edited = tmp_path / "edited.pt"
    _edit_data_pkl(clean, edited, evil)
    _assert_refused(edited, marker, "system")
    # torch itself would have run it with weights_only=False: prove the file is a live payload
    torch.load(edited, weights_only=False)
    assert marker.exists()


def test_refused_through_fairseqs_own_loader(tmp_path, marker):
    from mtkit import plugin

    plugin.register()
    from fairseq import checkpoint_utils

    path = _save({"args": None, "model": {}, "x": SystemPayload(marker)}, tmp_path / "e.pt")
    with pytest.raises(UnsafeCheckpointError):
        checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert not marker.exists()


def test_trusted_opt_out_loads_with_a_warning(tmp_path):
    path = _save({"c": Plain(2)}, tmp_path / "t.pt")
    with pytest.raises(UnsafeCheckpointError):
        checkpoint.load(path)
    with pytest.warns(UserWarning, match="trusted checkpoint"):
        state = checkpoint.load(path, trust=True)
    assert state["c"].n == 2


def test_trust_env_var_names_the_file(tmp_path, monkeypatch):
    path = _save({"c": Plain(1)}, tmp_path / "t.pt")
    other = _save({"c": Plain(1)}, tmp_path / "u.pt")
    monkeypatch.setenv(checkpoint.TRUST_ENV, str(path))
    with pytest.warns(UserWarning):
        assert checkpoint.load(path)["c"].n == 1
    with pytest.raises(UnsafeCheckpointError):
        checkpoint.load(other)


FIXTURES = Path(__file__).parent / "fixtures"
DICTCONFIG_2020 = FIXTURES / "fairseq_2020_dictconfig.pt"  # see make_fairseq_2020_dictconfig.py
NUMPY_VALUES = {
    "best": np.float64(1.5), "f32": np.float32(-2.25), "i64": np.int64(-3), "u8": np.uint8(200),
    "flag": np.bool_(True), "c64": np.complex64(1 - 2j),
    "arr": np.arange(4, dtype=np.int32), "fortran": np.arange(6, dtype=np.float16).reshape(2, 3).copy(order="F"),
    "big_endian": np.arange(3, dtype=">i8"), "zero_dim": np.array(7.5),
}


def _numpy_1x(path: Path) -> Path:
    """The same checkpoint as numpy 1.x writes it: numpy.core.multiarray instead of numpy._core."""
    out = path.with_name("numpy1x_" + path.name)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
            zout.writestr(item, data)
    return out


@pytest.mark.parametrize("numpy_names", ["2.x", "1.x"])
def test_numpy_values_load_equal(tmp_path, numpy_names):
    path = _save({"extra_state": dict(NUMPY_VALUES)}, tmp_path / "n.pt")
    if numpy_names == "1.x":
        path = _numpy_1x(path)
        assert "numpy.core.multiarray.scalar" in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    loaded = checkpoint.load(path)["extra_state"]
    for key, want in NUMPY_VALUES.items():
        got = loaded[key]
        assert np.asarray(got).shape == np.asarray(want).shape and np.array_equal(got, want), key
        assert np.asarray(got).dtype.kind == np.asarray(want).dtype.kind, key
        assert np.asarray(got).flags["F_CONTIGUOUS"] == np.asarray(want).flags["F_CONTIGUOUS"], key
    assert type(loaded["best"]) is np.float64
    # an array rebuilt by the loader pickles as a plain ndarray again (re-saved checkpoints stay clean)
    assert type(pickle.loads(pickle.dumps(loaded["arr"]))) is np.ndarray
    resaved = _save(loaded, tmp_path / "again.pt")
    assert "mtkit" not in " ".join(torch.serialization.get_unsafe_globals_in_checkpoint(resaved))


def test_namespace_loads_and_pickles_as_argparse_namespace(tmp_path):
    args = argparse.Namespace(lr=[0.1], arch="transformer", adam_betas="(0.9, 0.98)")
    loaded = checkpoint.load(_save({"args": args}, tmp_path / "a.pt"))["args"]
    assert isinstance(loaded, argparse.Namespace) and loaded == args and vars(loaded) == vars(args)
    assert type(pickle.loads(pickle.dumps(loaded))) is argparse.Namespace
    assert repr(loaded) == repr(args)


def test_fairseq_2020_dictconfig_checkpoint_loads(tmp_path):
    """cfg pickled as an omegaconf 2.0 DictConfig (fairseq master 2020-10-20 .. 2021-03-03)."""
    from omegaconf import DictConfig

    state = checkpoint.load(DICTCONFIG_2020)
    assert isinstance(state["cfg"], DictConfig) and state["args"] is None
    assert state["cfg"].model.arch == "transformer" and isinstance(state["cfg"].model, argparse.Namespace)
    assert state["cfg"].task._name == "translation_multi_simple_epoch"
    assert list(state["cfg"].optimization.lr) == [0.005]
    # fairseq's own loader (cfg re-created with the installed omegaconf, upgraded), through mtkit
    from mtkit import plugin

    plugin.register()
    from fairseq import checkpoint_utils

    fs = checkpoint_utils.load_checkpoint_to_cpu(str(DICTCONFIG_2020))
    assert isinstance(fs["cfg"], DictConfig) and fs["cfg"].model.encoder_layers == 2
    # the DictConfig the installed omegaconf makes (what rank 0 broadcasts) loads too
    again = checkpoint.load(_save(fs, tmp_path / "resaved.pt"))
    assert again["cfg"].common.seed == fs["cfg"].common.seed == 1


def test_every_allowed_global_is_used_by_a_real_pickle(tmp_path):
    """No dead entries: every name on the allow-list occurs in a checkpoint that fairseq, omegaconf
    or numpy wrote (names without a dot are the loader's own BUILD targets, unreachable by name)."""
    from mtkit import plugin

    plugin.register()
    from fairseq import checkpoint_utils

    numpy2 = _save({"extra_state": dict(NUMPY_VALUES)}, tmp_path / "n.pt")
    # the 2020 DictConfig as fairseq's loader leaves it (what rank 0 broadcasts), saved again
    resaved = _save(checkpoint_utils.load_checkpoint_to_cpu(str(DICTCONFIG_2020)), tmp_path / "resaved.pt")
    files = [DICTCONFIG_2020, resaved, numpy2, _numpy_1x(numpy2)]
    used = set().union(*(torch.serialization.get_unsafe_globals_in_checkpoint(f) for f in files))
    named = {a.name for a in checkpoint.ALLOWED if "." in a.name}
    assert named == used & named, f"allowed but never written: {sorted(named - used)}"
    assert used <= set(checkpoint.ALLOWED_NAMES), f"written but refused: {sorted(used - set(checkpoint.ALLOWED_NAMES))}"


def test_save_is_atomic(tmp_path):
    path = tmp_path / "ckpt.pt"
    checkpoint.save({"v": torch.ones(1)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise pickle.PicklingError("nope")

    with pytest.raises(pickle.PicklingError):
        checkpoint.save({"v": Unpicklable()}, path)
    assert checkpoint.load(path)["v"].item() == 1.0  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary left behind


@pytest.mark.slow
def test_real_fairseq_checkpoint_loads_through_mtkit(tiny_model):
    state = checkpoint.load(tiny_model.checkpoint)
    assert {"model", "cfg", "optimizer_history", "extra_state"} <= set(state)
    task = state["cfg"]["task"]  # fairseq 0.12: a plain dict cfg whose legacy parts are Namespaces
    assert isinstance(task, argparse.Namespace) and task._name == "translation_multi_simple_epoch"
    assert checkpoint.scan_globals(tiny_model.checkpoint) == []
    # the only non-torch global a fairseq-train checkpoint holds is argparse.Namespace
    raw = torch.serialization.get_unsafe_globals_in_checkpoint(tiny_model.checkpoint)
    assert set(raw) <= set(checkpoint.ALLOWED_NAMES)


@pytest.mark.slow
def test_fairseq_train_restore_file_works_without_unsafe_loading(tiny_model, tmp_path):
    """fairseq-train --restore-file goes through the safe loader (no TORCH_FORCE_* env var)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")}
    env["OMP_NUM_THREADS"] = "1"
    save_dir = tmp_path / "cont"
    cmd = [str(BIN / "fairseq-train"), *tiny_model.train_args(), "--restore-file", str(tiny_model.checkpoint),
           "--reset-optimizer", "--reset-dataloader", "--reset-meters", "--max-update", "5",
           "--save-dir", str(save_dir), "--disable-validation"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Loaded checkpoint" in res.stdout + res.stderr
    assert (save_dir / "checkpoint_last.pt").exists()
