"""Corpus-scale translation pieces that need no model: line reading, chunks, devices and the worker
pool, shards, the resumable output file and its merge, option and output-encoding errors."""
from __future__ import annotations

import io
import json
import threading
from itertools import islice

import pytest

from mtkit.errors import InputError, MtkitError
from mtkit.translate import Options, split_lines
from mtkit.translate.output import FileSink, check_stdout_encoding, count_complete, format_line
from mtkit.translate.sharding import Shard, merge_shards, parse_shard
from mtkit.translate.streaming import (
    FIRST_CHUNK,
    chunk_sizes,
    chunk_start,
    chunks,
    count_lines,
    iter_lines,
)
from mtkit.translate.workers import WorkerPool, resolve_devices

# every case the line contract has to survive: CRLF, lone CR, U+0085, U+2028, \x0c, empty, blank,
# Unicode blank (U+3000), a last line without a newline
TRICKY = ("a cat\r\n\r\n  \nthe dog\rsleeps\nx\x85y\nu\u2028v\nform\x0cfeed\n\u3000\nlast line")


def test_reading_files_gives_split_lines_lines(tmp_path):
    f = tmp_path / "in.txt"
    f.write_bytes(TRICKY.encode("utf-8"))
    expect = split_lines(TRICKY)
    assert expect == ["a cat", "", "  ", "the dog\rsleeps", "x\x85y", "u\u2028v", "form\x0cfeed", "\u3000",
                      "last line"]
    assert list(iter_lines([str(f)])) == expect
    assert count_lines(str(f)) == len(expect)
    # several files: one after the other; a byte-order mark opens a file, it is not text
    g = tmp_path / "g.txt"
    g.write_bytes(b"\xef\xbb\xbfone\ntwo\n")
    assert list(iter_lines([str(g), str(f)])) == ["one", "two"] + expect
    # skipping lines (shards, resume) seeks in the files: the same lines as reading them all
    every = ["one", "two"] + expect
    for start in range(len(every) + 2):
        assert list(iter_lines([str(g), str(f)], start=start)) == every[start:]
    assert count_lines(str(g)) == 2
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert list(iter_lines([str(empty)])) == [] and count_lines(str(empty)) == 0


def test_bad_utf8_names_file_and_line(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"fine\nal\xe9 latin-1\n")
    lines = iter_lines([str(f)])
    assert next(lines) == "fine"
    with pytest.raises(InputError, match=r"bad.txt:2: invalid UTF-8.*iconv"):
        next(lines)
    with pytest.raises(InputError, match="does not exist"):
        list(iter_lines([str(tmp_path / "nope.txt")]))


def test_chunk_schedule_and_resume_points():
    assert list(islice(chunk_sizes(10000), 9)) == [64, 128, 256, 512, 1024, 2048, 4096, 8192, 10000]
    assert list(islice(chunk_sizes(1), 3)) == [1, 1, 1]
    assert next(chunk_sizes(0)) > 10 ** 15  # whole input
    with pytest.raises(InputError):
        next(chunk_sizes(-1))
    lines = list(range(5000))
    full = list(chunks(lines, 700))
    assert [len(c) for c in full] == [64, 128, 256, 512, 700, 700, 700, 700, 700, 540]
    assert sum(full, []) == lines
    # a resumed run cuts the rest exactly like the uninterrupted run, from any line it stopped at
    bounds = [0]
    for c in full:
        bounds.append(bounds[-1] + len(c))
    for done in (0, 1, 63, 64, 500, 960, 961, 4999):
        start = chunk_start(done, 700)
        assert start in bounds and start <= done < start + 700
        k = bounds.index(start)
        assert list(chunks(lines[start:], 700, start=start)) == full[k:]
    with pytest.raises(ValueError):
        list(chunks(lines, 700, start=65))
    assert FIRST_CHUNK == 64


def test_devices():
    none = lambda: 0  # noqa: E731
    four = lambda: 4  # noqa: E731
    assert resolve_devices("cpu", none) == ["cpu"]
    assert resolve_devices("cpu,cpu", none) == ["cpu", "cpu"]
    assert resolve_devices("cuda", four) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert resolve_devices("cuda:2", four) == ["cuda:2"]
    assert resolve_devices("cuda:0,2", four) == ["cuda:0", "cuda:2"]
    assert resolve_devices("cuda:1, cuda:3", four) == ["cuda:1", "cuda:3"]
    with pytest.raises(MtkitError, match="no CUDA device is visible"):
        resolve_devices("cuda", none)
    with pytest.raises(MtkitError, match="GPU 4 does not exist"):
        resolve_devices("cuda:4", four)
    for bad in ("gpu", "cuda:x", "", "cpu,,cpu", "cpu,cuda:0"):
        with pytest.raises(InputError):
            resolve_devices(bad, four)


def test_worker_pool_uses_every_worker_and_keeps_order():
    """Two workers: the first two jobs must run at the same time (a barrier both have to reach),
    so each worker gets one; results come back in job order whatever finishes first."""
    barrier = threading.Barrier(2, timeout=30)
    seen: list[tuple[str, int]] = []

    def job(worker: str, n: int) -> tuple[str, int]:
        if n < 2:
            barrier.wait()
        seen.append((worker, n))
        return worker, n * n

    pool = WorkerPool(["w0", "w1"])
    try:
        out = list(pool.map(job, range(10)))
    finally:
        pool.close()
    assert [r for _, r in out] == [n * n for n in range(10)]
    assert {w for w, _ in out[:2]} == {"w0", "w1"}
    assert sum(pool.jobs_done.values()) == 10 and set(pool.jobs_done) == {0, 1}
    one = WorkerPool(["only"])
    assert list(one.map(lambda w, n: (w, n), [3, 4])) == [("only", 3), ("only", 4)]


def test_shards_cover_the_input_contiguously():
    assert parse_shard("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
    for bad in ("5/5", "1", "a/b", "-1/3", "0/0"):
        with pytest.raises(InputError, match="shard"):
            parse_shard(bad)
    for total in (0, 1, 7, 1000, 1001):
        for n in (1, 3, 8):
            bounds = [Shard(i, n).bounds(total) for i in range(n)]
            assert bounds[0][0] == 0 and bounds[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [e - s for s, e in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_options_are_checked():
    with pytest.raises(InputError, match="--nbest must be at least 1"):
        Options(nbest=0)
    with pytest.raises(InputError, match="more than --beam"):
        Options(beam=2, nbest=3)
    with pytest.raises(InputError, match="--batch-size"):
        Options(max_sentences=0)
    with pytest.raises(InputError, match="--ct2-ranking must be one of fairseq, ct2"):
        Options(ranking="best")


def test_non_utf8_stdout_is_refused():
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    with pytest.raises(InputError, match="latin-1.*PYTHONIOENCODING=utf-8"):
        check_stdout_encoding(latin)
    check_stdout_encoding(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))


def test_output_lines_never_break():
    assert format_line(["a\nb", "c"], nbest=False) == "a b"
    assert format_line(["a", "b\r\nc"], nbest=True) == "a\tb c"


def _record(**kw):
    rec = {"settings": {"model": "m"}, "inputs": [{"path": "/x", "bytes": 10}], "buffer_size": 100,
           "shard": None, "first_line": 0, "lines": 300, "total_lines": 300}
    rec.update(kw)
    return rec


def _hyps(a: int, b: int) -> list[list[str]]:
    return [[f"line {i}"] for i in range(a, b)]


def test_file_sink_resumes_at_the_last_whole_chunk(tmp_path):
    out = tmp_path / "out.txt"
    sink = FileSink(out, _record(), nbest=False, resume=False)
    assert sink.start() == 0
    sink.write(_hyps(0, 64))
    sink.write(_hyps(64, 100))  # 36 lines of the second chunk (100 lines), then a "kill"
    sink.close()
    part = tmp_path / "out.txt.partial"
    with open(part, "ab") as f:
        f.write(b"line 1")  # and half a line
    assert not out.exists() and json.loads((tmp_path / "out.txt.partial.json").read_text())["lines"] == 300
    again = FileSink(out, _record(), nbest=False, resume=True)
    assert again.start() == 64  # back to the start of the chunk that was cut
    assert count_complete(part) == (64, part.stat().st_size)
    for a, b in ((64, 164), (164, 264), (264, 300)):
        again.write(_hyps(a, b))
    again.finish(expected=300)
    assert out.read_text() == "".join(f"line {i}\n" for i in range(300))
    assert not part.exists() and not (tmp_path / "out.txt.partial.json").exists()
    # complete: a resumed run has nothing to do; other settings refuse to resume a partial file
    assert FileSink(out, _record(), nbest=False, resume=True).complete_already()
    FileSink(out, _record(), nbest=False, resume=False).start()
    with pytest.raises(InputError, match="other settings.*buffer_size"):
        FileSink(out, _record(buffer_size=50), nbest=False, resume=True).start()


def test_file_sink_all_written_but_not_renamed(tmp_path):
    out = tmp_path / "o"
    sink = FileSink(out, _record(lines=70, total_lines=70), nbest=False, resume=False)
    sink.start()
    sink.write(_hyps(0, 64))
    sink.write(_hyps(64, 70))
    sink.close()
    again = FileSink(out, _record(lines=70, total_lines=70), nbest=False, resume=True)
    assert again.start() == 70
    again.finish(expected=70)
    assert out.read_text().count("\n") == 70


def _shard(out, i, n, total, done=True):
    shard = Shard(i, n)
    a, b = shard.bounds(total)
    sink = FileSink(shard.path(out), _record(shard=[i, n], first_line=a, lines=b - a, total_lines=total),
                    nbest=False, resume=False, final_record=True)
    sink.start()
    sink.write(_hyps(a, b if done else (a + b) // 2))
    if done:
        sink.finish(expected=b - a)
    else:
        sink.close()


def test_merge_checks_every_shard(tmp_path):
    out = tmp_path / "bt.txt"
    with pytest.raises(InputError, match="no finished shards"):
        merge_shards(out)
    _shard(out, 0, 3, 100)
    _shard(out, 2, 3, 100)
    with pytest.raises(MtkitError, match="shard 1 has not run"):
        merge_shards(out)
    _shard(out, 1, 3, 100, done=False)
    with pytest.raises(MtkitError, match=r"shard 1 is not finished \(bt.txt.shard-1-of-3.partial holds 16 lines"):
        merge_shards(out)
    _shard(out, 1, 3, 100)
    assert merge_shards(out) == 100
    assert out.read_text() == "".join(f"line {i}\n" for i in range(100))
    with pytest.raises(MtkitError, match="input files given now"):
        merge_shards(out, inputs=[{"path": "/other", "bytes": 1}])
    # a shard changed after it finished
    with open(Shard(2, 3).path(out), "ab") as f:
        f.write(b"extra\n")
    with pytest.raises(MtkitError, match="changed after the shard finished"):
        merge_shards(out)
    _shard(out, 0, 2, 100)
    with pytest.raises(InputError, match="different counts"):
        merge_shards(out)


# ---- with the session's tiny model (slow: they run the real engines) -------------------------------

import os  # noqa: E402
import pty  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import termios  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BIN = Path(sys.executable).parent
ENV = dict(os.environ, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def corpus(tiny_model, tmp_path_factory):
    """An input file of 300 lines (a few empty or blank) and a float32 CTranslate2 export."""
    from mtkit.export.ct2 import export_ct2
    from mtkit.model_folder import find_files
    from mtkit.testing import english_sentences

    work = tmp_path_factory.mktemp("corpus")
    lines = english_sentences(300, seed=19)
    for i in (5, 77, 150, 299):
        lines[i] = "" if i % 2 else "   "
    src = work / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ct2 = export_ct2(find_files(tiny_model.root), work / "ct2")
    return {"src": src, "lines": lines, "ct2": ct2, "work": work}


def _model_args(tiny_model, corpus, engine: str) -> list[str]:
    model = str(corpus["ct2"]) if engine == "ct2" else str(tiny_model.root)
    return ["-m", model, "--engine", engine, "--src-lang", "en_XX", "--tgt-lang", "de_DE", "--no-progress"]


def _run(args: list[str]) -> bytes:
    res = subprocess.run([str(BIN / "mtkit"), "translate", *args], capture_output=True, env=ENV)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    return res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fairseq", "ct2"])
def test_streaming_gives_the_whole_file_output(tiny_model, corpus, engine):
    """Chunks of 7 lines, the default schedule (64, 128, ...) and the whole file as one chunk (the
    behaviour before streaming): the same bytes, one line per input line, blank lines empty."""
    args = _model_args(tiny_model, corpus, engine) + [str(corpus["src"])]
    whole = _run(args + ["--buffer-size", "0"])
    out = whole.decode().split("\n")[:-1]
    assert len(out) == 300 and all((o == "") == (not s.strip()) for o, s in zip(out, corpus["lines"]))
    assert _run(args + ["--buffer-size", "7"]) == whole
    assert _run(args) == whole


def _read_line(stream, timeout: float = 120) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output line while the input stays open: the line was not translated as it came"
    return stream.readline()


@pytest.mark.slow
def test_each_line_is_translated_as_it_arrives(tiny_model, corpus, en_de_lines):
    """Through a pipe with --buffer-size 1, and on a terminal by default: send one line, wait for its
    translation, then send the next (the input stays open all the while)."""
    args = [str(BIN / "mtkit"), "translate", *_model_args(tiny_model, corpus, "fairseq")]
    lines = [corpus["lines"][0], "", corpus["lines"][1]]
    expect = en_de_lines(lines)
    proc = subprocess.Popen(args + ["--buffer-size", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=ENV)
    try:
        for line, want in zip(lines, expect):
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            assert _read_line(proc.stdout) == want.encode() + b"\n"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0 and proc.stdout.read() == b""
    finally:
        proc.kill()
    # stdin a terminal: no option needed
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    os.close(slave)
    try:
        for line, want in zip(lines, expect):
            os.write(master, line.encode() + b"\n")
            assert _read_line(proc.stdout) == want.encode() + b"\n"
        os.write(master, b"\x04")  # end of input (Ctrl-D)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(master)


@pytest.fixture(scope="module")
def en_de_lines(tiny_model):
    from mtkit.translate import Translator

    t = Translator.from_folder(tiny_model.root, "en_XX", "de_DE")
    return lambda lines: [t.translate_lines([x])[0] for x in lines]


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_same_bytes(tiny_model, corpus, tmp_path):
    args = _model_args(tiny_model, corpus, "fairseq") + ["--buffer-size", "50", str(corpus["src"])]
    full = tmp_path / "full.txt"
    _run(args + ["--output", str(full)])
    assert full.read_bytes().count(b"\n") == 300
    out = tmp_path / "out.txt"
    partial = tmp_path / "out.txt.partial"
    proc = subprocess.Popen([str(BIN / "mtkit"), "translate", *args, "--output", str(out)],
                            stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if partial.exists() and partial.read_bytes().count(b"\n") >= 64:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    data = partial.read_bytes()
    record = (tmp_path / "out.txt.partial.json").read_bytes()
    assert not out.exists(), "the output file must appear only when complete"
    assert data.endswith(b"\n") and 64 <= data.count(b"\n") < 300, "killed mid-way, whole lines only"
    assert full.read_bytes().startswith(data)
    _run(args + ["--output", str(out), "--resume"])
    assert out.read_bytes() == full.read_bytes()
    assert not partial.exists() and not (tmp_path / "out.txt.partial.json").exists()
    # resuming a complete output does nothing
    _run(args + ["--output", str(out), "--resume"])
    assert out.read_bytes() == full.read_bytes()
    # another buffer size would cut other chunks: it cannot continue the partial file
    partial.write_bytes(data)
    (tmp_path / "out.txt.partial.json").write_bytes(record)
    res = subprocess.run([str(BIN / "mtkit"), "translate", *args, "--buffer-size", "25", "--output", str(out),
                          "--resume"], capture_output=True, env=ENV)
    assert res.returncode == 2 and b"other settings (buffer_size: was 50, now 25)" in res.stderr


@pytest.mark.slow
def test_shards_then_merge_equal_one_run(tiny_model, corpus, tmp_path):
    args = _model_args(tiny_model, corpus, "ct2") + [str(corpus["src"])]
    whole = _run(args)
    out = tmp_path / "bt.de"
    for i in (2, 0):
        _run(args + ["--shard", f"{i}/3", "--output", str(out)])
    res = subprocess.run([str(BIN / "mtkit"), "translate", "--merge", "--output", str(out)],
                         capture_output=True, env=ENV)
    assert res.returncode == 2 and b"shard 1 has not run" in res.stderr and not out.exists()
    _run(args + ["--shard", "1/3", "--output", str(out)])
    assert [Path(f"{out}.shard-{i}-of-3").read_bytes().count(b"\n") for i in range(3)] == [100, 100, 100]
    res = subprocess.run([str(BIN / "mtkit"), "translate", "--merge", "--output", str(out), str(corpus["src"])],
                         capture_output=True, env=ENV)
    assert res.returncode == 0, res.stderr.decode()
    assert out.read_bytes() == whole
    res = subprocess.run([str(BIN / "mtkit"), "translate", *args, "--shard", "1/3"], capture_output=True, env=ENV)
    assert res.returncode == 2 and b"--shard needs --output" in res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fairseq", "ct2"])
def test_two_cpu_workers_like_two_gpus(tiny_model, corpus, engine):
    """--device cpu,cpu: one worker per device entry (a model replica each for fairseq, two
    CTranslate2 workers), every worker used, the output that of one worker."""
    from mtkit.translate import Options, Translator

    model = corpus["ct2"] if engine == "ct2" else tiny_model.root
    opts = Options(beam=5, max_sentences=4)
    lines = corpus["lines"][:60]
    one = Translator.from_folder(model, "en_XX", "de_DE", engine=engine, options=opts)
    two = Translator.from_folder(model, "en_XX", "de_DE", engine=engine, options=opts, device="cpu,cpu")
    assert two.translate_lines(lines) == one.translate_lines(lines)
    if engine == "ct2":
        assert two.engine.workers == 2 and two.engine.translator.num_translators == 2
    else:
        reps = two.engine.replicas
        assert len(reps) == 2 and reps[0].model is not reps[1].model
        assert set(two.engine.pool.jobs_done) == {0, 1}
