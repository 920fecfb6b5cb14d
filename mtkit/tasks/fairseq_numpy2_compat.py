"""numpy >= 2 removed ``numpy.compat``; fairseq 0.12 still uses ``np.compat.long`` in
TokenBlockDataset (every ``multilingual_denoising`` / ``denoising`` run) and LanguagePairDataset.
Importing this module restores exactly that alias (``np.compat.long`` = ``np.int64``, what numpy 1.x
defined). fairseq imports every file in ``mtkit/tasks`` when mtkit is its ``--user-dir``; in-process
users import it before building datasets (mtkit.extend_langs / tests do).
"""
from __future__ import annotations

import types

import numpy as np

try:
    np.compat.long  # noqa: B018  (numpy < 2: nothing to do)
except AttributeError:
    np.compat = types.SimpleNamespace(long=np.int64)  # type: ignore[attr-defined]
