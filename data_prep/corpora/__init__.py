"""Corpus builders: gettext catalogs, the ML50 benchmark (with its source table), Flores folders."""
