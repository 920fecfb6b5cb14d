"""fairseq registrations (imported by mtkit.plugin.register)."""
from mtkit.tasks import denoising, translation_multi  # noqa: F401
