"""Python requirement strings (the parts of PEP 508 mtkit needs), with the standard library only.

Used by ``mtkit doctor`` (which installed packages fairseq and transformers depend on) and by
``scripts/setup_helper.py``, which runs before any of mtkit's dependencies (``packaging`` included)
are installed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def normalize(name: str) -> str:
    """A distribution name in PEP 503 form (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    name: str  #: normalised distribution name
    extras: frozenset[str]  #: extras asked of that distribution (``sacrebleu[ja]`` -> {"ja"})
    extra: str | None  #: the extra of the requiring package this belongs to (``; extra == "hf"``)
    line: str  #: the requirement for pip, with the ``extra == ...`` clause taken out of its marker


def parse(req: str) -> Requirement:
    """Parse one requirement line (``name[extras] specifier ; marker``)."""
    spec, _, marker = req.partition(";")
    m = _NAME.match(spec)
    if not m:
        raise ValueError(f"cannot read a requirement from {req!r}")
    extras = frozenset(e.strip() for e in (m.group(2) or "").split(",") if e.strip())
    em = _EXTRA.search(marker)
    rest = marker
    if em:
        rest = re.sub(r"""\s*and\s+extra\s*==\s*["'][^"']+["']""", "", rest)
        rest = re.sub(r"""extra\s*==\s*["'][^"']+["']\s*(and\s+)?""", "", rest)
    rest = rest.strip()
    line = spec.strip() + (f"; {rest}" if rest else "")
    return Requirement(normalize(m.group(1)), extras, em.group(1) if em else None, line)
