"""fairseq registrations (imported by mtkit.plugin.register)."""
from mtkit.criterions import moe_label_smoothed_cross_entropy  # noqa: F401
