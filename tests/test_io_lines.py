"""mtkit.io.read_lines decodes whole blocks when it can: the result must equal decoding every line
on its own with decode_line, wherever the special lines fall (first block, later blocks, block edges)."""
from __future__ import annotations

import random

import pytest

from mtkit.errors import InputError
from mtkit.io import LineError, decode_line, read_lines, read_pairs


def reference(raw: bytes, path) -> list:
    """decode_line on every line of ``raw`` (the last line may lack its newline)."""
    parts = raw.split(b"\n")
    lines = [x + b"\n" for x in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    out = []
    for i, x in enumerate(lines, 1):
        try:
            out.append(decode_line(x, path, i))
        except LineError as e:
            out.append(str(e))
    return out


def got(path) -> list:
    return [str(x) if isinstance(x, LineError) else x for x in read_lines(path, lenient=True)]


SPECIAL = [b"\xef\xbb\xbfbom later", b"crlf\r", b"lone\rcr", b"nul\x00byte", b"bad \xff byte",
           "nel\u0085x".encode(), "ls\u2028x".encode(), "ps\u2029x".encode(), b"", b"   ",
           "multi-byte é 中文 🙂".encode()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_equal_line_by_line(tmp_path, seed):
    rnd = random.Random(seed)
    lines = [f"plain line {i} ".encode() * rnd.randint(1, 40) for i in range(12000)]
    for _ in range(30):
        lines.insert(rnd.randrange(len(lines)), rnd.choice(SPECIAL))
    raw = b"\xef\xbb\xbf" + b"\n".join(lines) + (b"\n" if seed != 2 else b"")  # seed 2: no final newline
    assert len(raw) > 2 << 20  # several 1 MiB blocks
    path = tmp_path / "f.txt"
    path.write_bytes(raw)
    assert got(path) == reference(raw, path)


@pytest.mark.parametrize("raw", [b"", b"\n", b"\n\n", b"one", b"\xef\xbb\xbfone\n", b"a\r\nb\r\n", b"\xff\n",
                                 b"x\n\xef\xbb\xbfy\n", "a\u2028b\n".encode()])
def test_small_files(tmp_path, raw):
    path = tmp_path / "f.txt"
    path.write_bytes(raw)
    assert got(path) == reference(raw, path)


def test_strict_mode_names_the_line_in_a_later_block(tmp_path):
    lines = [b"x" * 100] * 20000 + [b"bad \xff"] + [b"y"] * 10
    path = tmp_path / "f.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(LineError, match=r"f\.txt:20001: invalid UTF-8"):
        list(read_lines(path))


def test_pairs_of_different_length_name_both_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1\n2\n3\n")
    b.write_text("1\n2\n")
    with pytest.raises(InputError, match=r"/b has 2 lines but .*/a has more \(line 3\)"):
        list(read_pairs(a, b))
    with pytest.raises(InputError, match=r"/b has 2 lines but .*/a has more \(line 3\)"):
        list(read_pairs(b, a))
