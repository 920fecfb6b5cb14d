"""Sparsely gated Mixture-of-Experts building blocks (see docs/moe.md)."""
from mtkit.modules.moe.balance import (  # noqa: F401
    GlobalCounts,
    balance_loss,
    global_balance_loss,
    micro_balance_loss,
)
from mtkit.modules.moe.cmr import CMRGate, cmr_loss  # noqa: F401
from mtkit.modules.moe.gate import Gate, Routing, capacity, top1_gating, top2_gating  # noqa: F401
from mtkit.modules.moe.moe_layer import Expert, MoELayer  # noqa: F401
