"""What every metric module returns (sacrebleu keeps its ``Score`` in ``metrics/base.py`` the same way)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MetricResult:
    """One corpus-level score with the sacrebleu signature that produced it."""

    name: str
    score: float
    signature: str
    details: dict[str, Any] = field(default_factory=dict)
