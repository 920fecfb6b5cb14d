"""fairseq task registrations and fairseq compatibility shims (imported by mtkit.plugin.register).

Every module in this folder is imported, as fairseq itself does for a --user-dir's ``tasks`` folder.
"""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
