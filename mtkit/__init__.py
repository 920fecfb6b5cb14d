"""mtkit: multilingual machine translation on fairseq.

Importing ``mtkit`` is cheap and does not import fairseq. When fairseq imports this package as
its ``--user-dir`` (``fairseq-train --user-dir "$(mtkit user-dir)"``), fairseq is already loaded,
and :func:`mtkit.plugin.register` installs mtkit's fairseq patches (:mod:`mtkit.patches`) and
registers its models and criteria. Code that uses fairseq in-process calls it itself.
"""
from __future__ import annotations

import sys

__version__ = "0.1.0"

if "fairseq" in sys.modules:  # imported as fairseq's --user-dir
    from mtkit import plugin as _plugin

    _plugin.register()
