"""fairseq registrations (imported by mtkit.plugin.register)."""
from mtkit.tasks import translation_multi  # noqa: F401
