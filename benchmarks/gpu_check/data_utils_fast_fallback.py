"""Pure-Python stand-in for fairseq's Cython ``fairseq.data.data_utils_fast`` (same algorithm, line for
line; slower). benchmarks/gpu_check/run.sh copies it into its scratch fairseq tree ONLY when the Cython
build fails there (no compiler or no Python headers), and says so in its log and summary."""
from __future__ import annotations

import numpy as np


def batch_by_size_vec(indices: np.ndarray, num_tokens_vec: np.ndarray, max_tokens: int,
                      max_sentences: int, bsz_mult: int) -> list:
    if indices.shape[0] == 0:
        return []
    assert max_tokens <= 0 or np.max(num_tokens_vec) <= max_tokens, (
        f"Sentences lengths should not exceed max_tokens={max_tokens}")
    n = indices.shape[0]
    ends = np.zeros(n, dtype=np.int32)
    ntok = num_tokens_vec.tolist()
    count = batch_start = tail_max = batch_max = 0
    for pos in range(n):
        tail_max = max(tail_max, ntok[pos])
        new_end = pos + 1
        new_max = max(batch_max, tail_max)
        new_sents = new_end - batch_start
        overflow = new_sents > max_sentences > 0 or new_sents * new_max > max_tokens > 0
        size_ok = new_sents < bsz_mult or new_sents % bsz_mult == 0
        if overflow:
            if tail_max * (new_end - int(ends[count])) > max_tokens > 0:
                count += 1
                ends[count] = pos
                tail_max = ntok[pos]
            batch_start = int(ends[count])
            count += 1
            new_max = tail_max
        if overflow or size_ok:
            ends[count] = new_end
            batch_max = new_max
            tail_max = 0
    if ends[count] != n:
        count += 1
    return np.split(indices, ends[:count])


def batch_by_size_fn(indices: np.ndarray, num_tokens_fn, max_tokens: int, max_sentences: int,  # noqa: ANN001
                     bsz_mult: int) -> list:
    vec = np.fromiter((num_tokens_fn(i) for i in indices), dtype=np.int64, count=len(indices))
    return batch_by_size_vec(indices, vec, max_tokens, max_sentences, bsz_mult)


def batch_fixed_shapes_fast(indices, num_tokens_fn, fixed_shapes_sorted):  # noqa: ANN001, ANN201
    raise NotImplementedError("fixed-shape batching needs the compiled Cython extension")
