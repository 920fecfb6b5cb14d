"""fairseq registrations (imported by mtkit.plugin.register)."""
from mtkit.models import transformer_moe  # noqa: F401
