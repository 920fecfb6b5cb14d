"""Errors that carry a message meant for the user: the CLI prints them without a traceback."""
from __future__ import annotations


class MtkitError(Exception):
    """A user-facing error: say what was wrong, where, and what to do."""


class InputError(MtkitError, ValueError):
    """Bad input data (mismatched files, invalid UTF-8, unknown codes, missing pieces)."""
