"""Attacks through the globals the safe loader allows: each hand-written pickle abuses one allowed
global (numpy dtype/scalar/array, argparse.Namespace, omegaconf, builtins) or the pickle machinery
around it. Every one must be refused or load as something harmless: no code runs, the interpreter
never crashes. They run in a child process with a 4 GiB address-space limit, one JSON line before and
after each probe, so a crash would be pinned to its probe."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

PROTO = b"\x80\x02"
STOP = b"."
MARK, TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"(", b"t", b"\x85", b"\x86", b"\x87"
REDUCE, BUILD, NEWOBJ, APPEND, SETITEM = b"R", b"b", b"\x81", b"a", b"s"
NONE, TRUE, FALSE, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE = b"N", b"\x88", b"\x89", b"}", b"]", b")"


def glob_(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def num(n: int) -> bytes:
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def raw_bytes(data: bytes) -> bytes:
    """bytes as protocol 2 writes them: _codecs.encode(str, 'latin1')."""
    return glob_("_codecs", "encode") + text(data.decode("latin1")) + text("latin1") + TUPLE2 + REDUCE


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def dtype(spec: str, state: bytes | None = None) -> bytes:
    state = tup(num(3), text("<"), NONE, NONE, NONE, num(-1), num(-1), num(0)) if state is None else state
    return glob_("numpy", "dtype") + text(spec) + FALSE + TRUE + TUPLE3 + REDUCE + state + BUILD


def scalar(dt: bytes, data: bytes, module: str = "numpy._core.multiarray") -> bytes:
    return glob_(module, "scalar") + dt + data + TUPLE2 + REDUCE


def array(state: bytes, subtype: bytes = glob_("numpy", "ndarray")) -> bytes:
    return (glob_("numpy._core.multiarray", "_reconstruct") + subtype + num(0) + TUPLE1 + raw_bytes(b"b")
            + TUPLE3 + REDUCE + state + BUILD)


def namespace_build(state: bytes) -> bytes:
    return glob_("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ + state + BUILD


def in_dict(value: bytes) -> bytes:
    return PROTO + EMPTY_DICT + text("x") + value + SETITEM + STOP


F8 = raw_bytes(b"\x00" * 8)
META = glob_("omegaconf.base", "Metadata")

# name -> (pickle, expected): "refused" (UnsafeCheckpointError) or "harmless" (loads, or any ordinary
# Python error, but no code ran and no crash)
PROBES: dict[str, tuple[bytes, str]] = {
    # numpy.dtype: state tuples of the lengths numpy #30476 mishandles, forged fields, non-numeric dtypes
    **{f"dtype_state_len_{n}": (in_dict(scalar(dtype("f8", tup(num(3), *[NONE] * (n - 1))), F8)), "refused")
       for n in (2, 4, 7, 10)},
    "dtype_state_forged_itemsize": (in_dict(scalar(dtype("f8", tup(num(3), text("<"), NONE, NONE, NONE, num(64),
                                                                    num(8), num(0))), F8)), "refused"),
    "dtype_state_not_a_tuple": (in_dict(scalar(dtype("f8", EMPTY_DICT), F8)), "refused"),
    **{f"dtype_spec_{s}": (in_dict(scalar(dtype(s), F8)), "refused") for s in ("O", "O8", "V8", "U2", "M8", "f8,i4")},
    "dtype_bare": (in_dict(dtype("f8")), "refused"),
    # numpy.core.multiarray.scalar: object dtype (numpy #28316 segfault <= 2.2), wrong sizes, non-bytes
    "scalar_object_dtype": (in_dict(scalar(dtype("O"), F8, "numpy.core.multiarray")), "refused"),
    "scalar_short_data": (in_dict(scalar(dtype("f8"), raw_bytes(b"\x00" * 3))), "refused"),
    "scalar_list_data": (in_dict(scalar(dtype("f8"), EMPTY_LIST + num(1) + APPEND)), "refused"),
    "scalar_dtype_only": (in_dict(glob_("numpy.core.multiarray", "scalar") + dtype("f8") + TUPLE1 + REDUCE), "refused"),
    # _reconstruct / ndarray state: object dtype, object data, other subtypes, huge declared sizes
    "array_object_dtype": (in_dict(array(tup(num(1), num(1) + TUPLE1, dtype("O"), FALSE,
                                             EMPTY_LIST + num(7) + APPEND))), "refused"),
    "array_list_data": (in_dict(array(tup(num(1), num(1) + TUPLE1, dtype("f8"), FALSE,
                                          EMPTY_LIST + num(7) + APPEND))), "refused"),
    "array_other_subtype": (in_dict(array(tup(num(1), num(1) + TUPLE1, dtype("f8"), FALSE, F8),
                                          subtype=glob_("numpy", "dtype"))), "refused"),
    "array_huge_declared_shape": (in_dict(array(tup(num(1), num(2**40) + TUPLE1, dtype("f8"), FALSE,
                                                    raw_bytes(b"")))), "refused"),
    "array_negative_shape": (in_dict(array(tup(num(1), num(-1) + TUPLE1, dtype("f8"), FALSE, F8))), "refused"),
    "ndarray_newobj_huge": (in_dict(glob_("numpy", "ndarray") + num(2**40) + TUPLE1 + TUPLE1 + NEWOBJ), "refused"),
    "ndarray_reduce_huge": (in_dict(glob_("numpy", "ndarray") + num(2**40) + TUPLE1 + TUPLE1 + REDUCE), "refused"),
    # argparse.Namespace through unusual opcodes and states
    "namespace_inst_opcode": (PROTO + MARK + b"iargparse\nNamespace\n" + STOP, "refused"),
    "namespace_obj_opcode": (PROTO + MARK + glob_("argparse", "Namespace") + b"o" + STOP, "refused"),
    "namespace_stack_global": (b"\x80\x04" + b"\x8c\x08argparse\x8c\x09Namespace\x93" + EMPTY_TUPLE + REDUCE + STOP,
                               "refused"),
    "namespace_newobj_ex": (b"\x80\x04" + glob_("argparse", "Namespace") + EMPTY_TUPLE + EMPTY_DICT + b"\x92" + STOP,
                            "refused"),
    "namespace_reduce_positional": (in_dict(glob_("argparse", "Namespace") + num(1) + TUPLE1 + REDUCE), "refused"),
    "namespace_slotstate_sets_class": (in_dict(namespace_build(NONE + EMPTY_DICT + text("__class__") + META
                                                               + SETITEM + TUPLE2)), "refused"),
    "namespace_dunder_reduce_ex": (in_dict(namespace_build(EMPTY_DICT + text("__reduce_ex__")
                                                           + glob_("builtins", "dict") + SETITEM)), "refused"),
    "namespace_state_list": (in_dict(namespace_build(EMPTY_LIST + tup(text("a"), num(1)) + APPEND)), "refused"),
    "namespace_deep_value": (in_dict(namespace_build(EMPTY_DICT + text("a") + EMPTY_LIST * 50_000
                                                     + APPEND * 49_999 + SETITEM)), "harmless"),
    # containers and the remaining allowed globals
    "deeply_nested_lists": (PROTO + EMPTY_LIST * 200_000 + APPEND * 199_999 + STOP, "harmless"),
    "deeply_nested_dicts": (PROTO + (EMPTY_DICT + text("k")) * 100_000 + EMPTY_DICT + SETITEM * 100_000 + STOP,
                            "harmless"),
    "ext_opcode": (PROTO + b"\x82\x01" + STOP, "refused"),
    "int_from_huge_string": (in_dict(glob_("__builtin__", "long") + text("9" * 5000) + TUPLE1 + REDUCE), "refused"),
    "typing_any_called": (in_dict(glob_("typing", "Any") + EMPTY_TUPLE + REDUCE), "refused"),
    "typing_dict_called": (in_dict(glob_("typing", "Dict") + EMPTY_TUPLE + REDUCE), "refused"),
    "builtins_list_of_huge_range": (in_dict(glob_("__builtin__", "list") + num(2**40) + TUPLE1 + REDUCE), "refused"),
    "defaultdict_factory_namespace": (in_dict(glob_("collections", "defaultdict") + glob_("argparse", "Namespace")
                                              + TUPLE1 + REDUCE), "harmless"),
    "dictconfig_empty_state": (in_dict(glob_("omegaconf.dictconfig", "DictConfig") + EMPTY_TUPLE + NEWOBJ
                                       + EMPTY_DICT + BUILD), "refused"),
    "tensor_placeholder_in_a_file": (in_dict(glob_("fairseq.distributed.utils", "_TensorPlaceholder") + EMPTY_TUPLE
                                             + NEWOBJ), "refused"),
    "os_system_inside_array_data": (in_dict(array(tup(num(1), num(1) + TUPLE1, dtype("O"), FALSE, EMPTY_LIST
                                                      + glob_("os", "system") + text("touch PWNED") + TUPLE1
                                                      + REDUCE + APPEND))), "refused"),
}


def _edit(checkpoint: bytes, pkl: bytes) -> bytes:
    """A torch zip checkpoint with its data.pkl replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(checkpoint)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, pkl if item.filename.endswith("/data.pkl") else data)
    return out.getvalue()


def _zip_checkpoint(pkl: bytes) -> bytes:
    buf = io.BytesIO()
    torch.save({}, buf)
    return _edit(buf.getvalue(), pkl)


def _torch_storage_probes() -> dict[str, tuple[bytes, str]]:
    """Whole files: a tensor whose declared size exceeds its storage, a storage whose declared element
    count exceeds its record (zip format), and a legacy-format storage header declaring 2**40 elements
    (torch allocates it before reading the data)."""
    huge = b"\x8a\x06" + (2**40).to_bytes(6, "little")
    buf = io.BytesIO()
    torch.save({"t": torch.zeros(4)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        pkl = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    size, numel = b"QK\x00K\x04\x85", b"cpuq\x06K\x04t"
    assert pkl.count(size) == 1 and pkl.count(numel) == 1
    legacy = io.BytesIO()
    torch.save({"t": torch.zeros(4)}, legacy, _use_new_zipfile_serialization=False)
    raw = legacy.getvalue()
    assert raw.count(b"cpuq\x06K\x04N") == 1
    return {"tensor_size_beyond_storage": (_edit(buf.getvalue(), pkl.replace(size, b"QK\x00" + huge + b"\x85")),
                                           "harmless"),
            "storage_numel_beyond_record": (_edit(buf.getvalue(), pkl.replace(numel, b"cpuq\x06" + huge + b"t")),
                                            "harmless"),
            "legacy_storage_huge_numel": (raw.replace(b"cpuq\x06K\x04N", b"cpuq\x06" + huge + b"N"), "harmless")}


RUNNER = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from mtkit import checkpoint
for path in sys.argv[1:]:
    print(json.dumps({"probe": path, "stage": "start"}), flush=True)
    try:
        obj = checkpoint.load(path)
        out = {"outcome": "loaded", "detail": type(obj).__name__}
        del obj
    except checkpoint.UnsafeCheckpointError as e:
        out = {"outcome": "refused", "detail": str(e)}
    except BaseException as e:  # noqa: BLE001 - any ordinary error is reported, not a crash
        out = {"outcome": "error", "detail": f"{type(e).__name__}: {e}"[:300]}
    print(json.dumps({"probe": path, "stage": "end", **out}), flush=True)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    d = tmp_path_factory.mktemp("adversarial")
    files = []
    files_bytes = {name: _zip_checkpoint(pkl) for name, (pkl, _) in PROBES.items()}
    files_bytes.update({name: data for name, (data, _) in _torch_storage_probes().items()})
    for name, data in files_bytes.items():
        path = d / f"{name}.pt"
        path.write_bytes(data)
        files.append(str(path))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", RUNNER, *files], capture_output=True, text=True, cwd=d,
                         env=env, timeout=600)
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    ends = {Path(x["probe"]).stem: x for x in lines if x["stage"] == "end"}
    last = lines[-1]["probe"] if lines else None
    assert res.returncode == 0, f"the loader process died (rc {res.returncode}) during {last}:\n{res.stderr[-3000:]}"
    assert not (d / "PWNED").exists(), "a payload ran"
    return ends


ALL = {**PROBES, **{n: (b"", "harmless") for n in ("tensor_size_beyond_storage", "storage_numel_beyond_record",
                                                   "legacy_storage_huge_numel")}}


@pytest.mark.parametrize("name", sorted(ALL))
def test_probe_is_refused_or_harmless(outcomes, name) -> None:
    got = outcomes[name]
    expected = ALL[name][1]
    if expected == "refused":
        assert got["outcome"] == "refused", got
        assert "--trust-checkpoint" in got["detail"]
    else:
        assert got["outcome"] in ("loaded", "refused", "error"), got
