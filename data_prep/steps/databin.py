"""Write fairseq's binarised datasets (``--dataset-impl mmap``) straight from SentencePiece ids.

``fairseq-preprocess`` reads piece-encoded text, splits each line on whitespace and looks every
piece up in the dictionary, in Python. Here the SentencePiece ids of a batch are mapped to
dictionary indices with one array lookup (``sp id -> fairseq index``, built once from the
dictionary file), ``</s>`` is appended, and the ``.bin``/``.idx`` pair is written in the layout of
fairseq 0.12's ``MMapIndexedDatasetBuilder``. The files are byte-identical to fairseq-preprocess's
(``tests/test_data_binarize.py`` checks it against fairseq-preprocess itself).

Dictionary semantics follow ``fairseq.data.Dictionary.load``: ``<s> <pad> </s> <unk>`` take
indices 0-3, then one symbol per line of ``dict.txt`` (``WORD COUNT [#fairseq:overwrite]``); a
piece missing from the dictionary becomes ``<unk>``.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from mtkit.errors import InputError
from mtkit.io import atomic_write

BOS, PAD, EOS, UNK = 0, 1, 2, 3
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
_MAGIC = b"MMIDIDX\x00\x00"
_DTYPE_CODE = {np.dtype(np.uint16): 8, np.dtype(np.uint32): 9, np.dtype(np.int64): 5}
_SPACE = re.compile(r"\s+")


def read_dictionary(path: str | os.PathLike) -> dict[str, int]:
    """Symbol -> index, as ``fairseq.data.Dictionary.load(path)`` assigns them."""
    index = {s: i for i, s in enumerate(_SPECIALS)}
    n = len(index)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip()
            try:
                word, field = line.rsplit(" ", 1)
                overwrite = field == "#fairseq:overwrite"
                if overwrite:
                    word, field = word.rsplit(" ", 1)
                int(field)
            except ValueError:
                raise InputError(f"{path}:{lineno}: expected 'WORD COUNT' (a fairseq dictionary)") from None
            if word in index and not overwrite:
                raise InputError(f"{path}:{lineno}: duplicate word {word!r} (fairseq refuses it too)")
            if word not in index:
                index[word] = n
                n += 1
    return index


def dictionary_size(index: dict[str, int]) -> int:
    return max(index.values()) + 1


def write_dict_from_spm(sp, path: str | os.PathLike) -> int:
    """fairseq dictionary in SentencePiece order (control/unknown pieces left out: fairseq adds its own),
    so fairseq index = SentencePiece id + 1 for every normal piece, as in mBART's ``dict_250k.txt``."""
    rows = [f"{sp.id_to_piece(i)} 1" for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    with atomic_write(path) as f:
        f.writelines(r + "\n" for r in rows)
    return len(rows)


def id_map(sp, index: dict[str, int]) -> np.ndarray:
    """fairseq index of every SentencePiece id (what fairseq-preprocess would give the piece's text).

    A piece that fairseq's whitespace tokeniser would split or drop cannot be mapped to one index;
    such a vocabulary is refused rather than binarised differently from fairseq.
    """
    out = np.empty(sp.get_piece_size(), dtype=np.int64)
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if _SPACE.sub(" ", piece).strip().split() != [piece]:
            raise InputError(f"SentencePiece piece {i} ({piece!r}) contains whitespace; fairseq would split it")
        out[i] = index.get(piece, UNK)
    return out


def best_dtype(vocab_size: int) -> np.dtype:
    """fairseq's ``best_fitting_int_dtype(len(vocab))``."""
    return np.dtype(np.uint16 if vocab_size < 65500 else np.uint32 if vocab_size < 4294967295 else np.int64)


class IndexedWriter:
    """``PREFIX.bin`` + ``PREFIX.idx`` as fairseq's MMapIndexedDatasetBuilder writes them; both appear
    (atomically renamed) only when :meth:`close` succeeds."""

    def __init__(self, prefix: str | os.PathLike, vocab_size: int):
        self.prefix = Path(prefix)
        self.dtype = best_dtype(vocab_size)
        self._stack = contextlib.ExitStack()
        self._bin = self._stack.enter_context(atomic_write(f"{self.prefix}.bin", "wb", fsync=False))
        self._sizes: list[np.ndarray] = []
        self.lines = 0

    def add(self, rows: Sequence[Sequence[int]], idmap: np.ndarray) -> None:
        """Append sentences given as SentencePiece ids; ``</s>`` is added to each."""
        if not rows:
            return
        lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lens.sum()))
        tokens = np.insert(idmap[flat], np.cumsum(lens), EOS).astype(self.dtype)
        self._bin.write(tokens.tobytes())
        self._sizes.append((lens + 1).astype(np.int32))
        self.lines += len(rows)

    def close(self) -> None:
        sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, np.int32)
        pointers = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        with atomic_write(f"{self.prefix}.idx", "wb", fsync=False) as f:
            f.write(_MAGIC + struct.pack("<Q", 1) + struct.pack("<B", _DTYPE_CODE[self.dtype]))
            f.write(struct.pack("<Q", len(sizes)) + sizes.tobytes() + pointers.tobytes())
        self._stack.close()

    def abort(self) -> None:
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


@contextlib.contextmanager
def indexed_writer(prefix: str | os.PathLike, vocab_size: int) -> Iterator[IndexedWriter]:
    w = IndexedWriter(prefix, vocab_size)
    try:
        yield w
    except BaseException:
        w.abort()
        raise
    w.close()
