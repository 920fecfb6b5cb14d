"""Corpus steps: each reads one folder of ``{split}.{src}-{tgt}.{lang}`` files and writes the next.

- :mod:`.dedup`: exact duplicate training pairs, by 64-bit hashes in bounded memory;
- :mod:`.overlap`: training pairs whose source or target is in any valid/test set (fairseq's
  ``remove_valid_test_in_train.py``);
- :mod:`.filters`: empty / bad lines, length, length ratio, optional language ID (:mod:`.lid`);
- :mod:`.pipeline`: runs them per direction with ``--workers``, a manifest and re-run skipping;
- :mod:`.spm`: SentencePiece training text, training and loading;
- :mod:`.databin`: fairseq's dictionary and binarised (mmap) datasets written from SentencePiece ids.
"""
