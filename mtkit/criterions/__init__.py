"""fairseq registrations (imported by mtkit.plugin.register)."""
