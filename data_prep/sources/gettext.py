"""gettext catalogs (.mo and .po) as a parallel-text source: English msgid -> translated msgstr.

Readers return :class:`Entry` objects; cleaning lives in :mod:`data_prep.corpora.gettext`. Catalogs come
from a folder (any depth) or a tarball; the locale is taken from ``<locale>/LC_MESSAGES/<domain>.mo``,
from ``<domain>/<locale>.po``, or from the catalog's ``Language:`` header.
"""
from __future__ import annotations

import ast
import logging
import os
import re
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mtkit.errors import InputError

log = logging.getLogger(__name__)

#: ML50 code -> gettext locale names, most preferred first. For each catalog domain the first
#: locale present is used, so one domain never contributes two variants of one language.
#: Choices: pt_XX <- pt_BR before pt (ML50's TED Portuguese and Flores por_Latn are Brazilian);
#: zh_CN <- zh_CN / zh_Hans / zh only (never zh_TW / zh_HK: Traditional script);
#: tl_XX <- tl, then fil (Filipino, standardised Tagalog); az_AZ <- az (not az_IR, Arabic script);
#: bn_IN <- bn_IN, bn, then bn_BD; sr/be "@latin"-style variants are never used.
LOCALE_PREFERENCES: dict[str, tuple[str, ...]] = {
    "ar_AR": ("ar",), "cs_CZ": ("cs", "cs_CZ"), "de_DE": ("de", "de_DE"), "es_XX": ("es", "es_ES"),
    "et_EE": ("et", "et_EE"), "fi_FI": ("fi", "fi_FI"), "fr_XX": ("fr", "fr_FR"),
    "gu_IN": ("gu", "gu_IN"), "hi_IN": ("hi", "hi_IN"), "it_IT": ("it", "it_IT"),
    "ja_XX": ("ja", "ja_JP"), "kk_KZ": ("kk", "kk_KZ"), "ko_KR": ("ko", "ko_KR"),
    "lt_LT": ("lt", "lt_LT"), "lv_LV": ("lv", "lv_LV"), "my_MM": ("my", "my_MM"),
    "ne_NP": ("ne", "ne_NP"), "nl_XX": ("nl", "nl_NL"), "ro_RO": ("ro", "ro_RO"),
    "ru_RU": ("ru", "ru_RU"), "si_LK": ("si", "si_LK"), "tr_TR": ("tr", "tr_TR"),
    "vi_VN": ("vi", "vi_VN"), "zh_CN": ("zh_CN", "zh_Hans", "zh"), "af_ZA": ("af", "af_ZA"),
    "az_AZ": ("az", "az_AZ"), "bn_IN": ("bn_IN", "bn", "bn_BD"), "fa_IR": ("fa", "fa_IR"),
    "he_IL": ("he", "he_IL"), "hr_HR": ("hr", "hr_HR"), "id_ID": ("id", "id_ID"),
    "ka_GE": ("ka", "ka_GE"), "km_KH": ("km", "km_KH"), "mk_MK": ("mk", "mk_MK"),
    "ml_IN": ("ml", "ml_IN"), "mn_MN": ("mn", "mn_MN"), "mr_IN": ("mr", "mr_IN"),
    "pl_PL": ("pl", "pl_PL"), "ps_AF": ("ps", "ps_AF"), "pt_XX": ("pt_BR", "pt", "pt_PT"),
    "sv_SE": ("sv", "sv_SE"), "sw_KE": ("sw", "sw_KE", "sw_TZ"), "ta_IN": ("ta", "ta_IN"),
    "te_IN": ("te", "te_IN"), "th_TH": ("th", "th_TH"), "tl_XX": ("tl", "fil", "tl_PH"),
    "uk_UA": ("uk", "uk_UA"), "ur_PK": ("ur", "ur_PK"), "xh_ZA": ("xh", "xh_ZA"),
    "gl_ES": ("gl", "gl_ES"), "sl_SI": ("sl", "sl_SI"),
}
LOCALE_TO_MBART: dict[str, str] = {
    loc: code for code, locs in LOCALE_PREFERENCES.items() for loc in locs
}


@dataclass
class Entry:
    msgid: str
    msgstr: list[str]  # one item, or one per plural form
    msgid_plural: str | None = None
    context: str | None = None
    fuzzy: bool = False
    obsolete: bool = False


@dataclass
class Catalog:
    locale: str
    domain: str
    path: str  # file path, or "tarball::member"
    entries: list[Entry] = field(default_factory=list)
    nplurals: int | None = None


def _charset(header: str) -> str:
    m = re.search(r"charset=([\w.-]+)", header)
    cs = m.group(1) if m else "utf-8"
    return "utf-8" if cs.upper() in ("CHARSET", "") else cs


def _nplurals(header: str) -> int | None:
    m = re.search(r"nplurals\s*=\s*(\d+)", header)
    return int(m.group(1)) if m else None


def parse_mo(data: bytes, where: str) -> tuple[list[Entry], str]:
    """Parse a compiled catalog; returns (entries without the header, header text)."""
    if len(data) < 28:
        raise InputError(f"{where}: not a .mo file (only {len(data)} bytes); is it truncated?")
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x950412DE:
        end = "<"
    elif magic == 0xDE120495:
        end = ">"
    else:
        raise InputError(f"{where}: not a .mo file (bad magic {data[:4]!r})")
    _rev, n, o_orig, o_trans = struct.unpack(end + "4I", data[4:20])
    if o_orig + 8 * n > len(data) or o_trans + 8 * n > len(data):
        raise InputError(f"{where}: .mo string table out of range; the file is truncated or corrupt")
    raw: list[tuple[bytes, bytes]] = []
    for i in range(n):
        ln, off = struct.unpack(end + "2I", data[o_orig + 8 * i:o_orig + 8 * i + 8])
        tl, toff = struct.unpack(end + "2I", data[o_trans + 8 * i:o_trans + 8 * i + 8])
        if off + ln > len(data) or toff + tl > len(data):
            raise InputError(f"{where}: .mo entry {i} out of range; the file is truncated or corrupt")
        raw.append((data[off:off + ln], data[toff:toff + tl]))
    header = ""
    for k, v in raw:
        if k == b"":
            header = v.decode("utf-8", "replace")
    cs = _charset(header)
    entries = []
    for k, v in raw:
        if k == b"":
            continue
        try:
            ks, vs = k.decode(cs), v.decode(cs)
        except (UnicodeDecodeError, LookupError):
            log.debug("%s: undecodable entry skipped", where)
            continue
        ctx = None
        if "\x04" in ks:
            ctx, ks = ks.split("\x04", 1)
        parts = ks.split("\x00")
        entries.append(Entry(msgid=parts[0], msgid_plural=parts[1] if len(parts) > 1 else None,
                             msgstr=vs.split("\x00"), context=ctx))
    return entries, header


_PO_KEY = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')


def _po_string(lit: str, where: str) -> str:
    try:
        return ast.literal_eval(lit) if "\\" in lit else lit[1:-1]
    except (ValueError, SyntaxError):
        raise InputError(f"{where}: bad string literal {lit[:60]!r}") from None


def parse_po(text: str, where: str) -> tuple[list[Entry], str]:
    """Parse a .po catalog (fuzzy and obsolete entries are kept and flagged; the caller drops them)."""
    entries: list[Entry] = []
    header = ""
    cur: dict | None = None
    last_key: tuple[str, int] | None = None
    pending_fuzzy = False

    def flush() -> None:
        nonlocal cur, header
        if cur is not None and "msgid" in cur:
            strs = [cur["msgstr"][i] for i in sorted(cur["msgstr"])]
            if cur["msgid"] == "" and cur.get("msgctxt") is None:
                header = strs[0] if strs else ""
            else:
                entries.append(Entry(msgid=cur["msgid"], msgstr=strs, msgid_plural=cur.get("msgid_plural"),
                                     context=cur.get("msgctxt"), fuzzy=cur["fuzzy"], obsolete=cur["obsolete"]))
        cur = None

    for lineno, line in enumerate(text.splitlines(), 1):
        loc = f"{where}:{lineno}"
        s = line.strip()
        obsolete = False
        if s.startswith("#~"):
            obsolete = True
            s = s[2:].strip()
            if s.startswith("|"):
                continue
        elif s.startswith("#"):
            if cur is not None and "msgid" in cur:
                flush()
            if s.startswith("#,") and "fuzzy" in s:
                pending_fuzzy = True
            continue
        if not s:
            continue
        if s.startswith('"'):
            if cur is None or last_key is None:
                raise InputError(f"{loc}: string continuation without a keyword")
            val = _po_string(s, loc)
            k, idx = last_key
            if k == "msgstr":
                cur["msgstr"][idx] += val
            else:
                cur[k] += val
            continue
        m = _PO_KEY.match(s)
        if not m:
            raise InputError(f"{loc}: cannot parse {s[:60]!r}")
        key, idx, lit = m.group(1), m.group(2), m.group(3)
        val = _po_string(lit, loc)
        base = key.split("[")[0]
        if base == "msgctxt" and cur is not None:
            flush()
        elif base == "msgid" and cur is not None and "msgid" in cur:
            flush()
        if cur is None:
            if base not in ("msgctxt", "msgid"):
                raise InputError(f"{loc}: {key} before msgid")
            cur = {"msgstr": {}, "fuzzy": pending_fuzzy, "obsolete": obsolete}
            pending_fuzzy = False
        if base == "msgstr":
            i = int(idx) if idx is not None else 0
            cur["msgstr"][i] = val
            last_key = ("msgstr", i)
        else:
            cur[base] = val
            last_key = (base, 0)
    flush()
    return entries, header


def locale_domain_from_path(path: str) -> tuple[str | None, str]:
    """(locale, domain) from ``<locale>/LC_MESSAGES/<domain>.mo`` or ``<domain>/<locale>.po`` (locale None if neither)."""
    p = Path(path)
    if p.parent.name == "LC_MESSAGES":
        return p.parent.parent.name, p.stem
    if p.suffix == ".po":
        return p.stem, p.parent.name or p.stem
    return None, p.stem


def _header_language(header: str) -> str | None:
    m = re.search(r"^Language:\s*([\w@.-]+)", header, re.M)
    return m.group(1) if m else None


def load_catalog(data: bytes, path: str) -> Catalog:
    """Parse one catalog given its bytes and its path (used for locale and domain)."""
    if path.endswith(".mo"):
        entries, header = parse_mo(data, path)
    else:
        head = data[:4096].decode("latin-1")
        cs = _charset(head)
        try:
            text = data.decode(cs)
        except (UnicodeDecodeError, LookupError):
            raise InputError(f"{path}: not valid {cs} (charset from the header)") from None
        entries, header = parse_po(text.lstrip("\ufeff"), path)
    locale, domain = locale_domain_from_path(path.split("::")[-1])
    if locale is None or (locale not in LOCALE_TO_MBART and _header_language(header)):
        locale = _header_language(header) or locale
    return Catalog(locale=locale or "", domain=domain, path=path, entries=entries, nplurals=_nplurals(header))


def iter_catalog_files(paths: list[str], keep=None) -> Iterator[tuple[str, bytes]]:
    """Yield (path, bytes) for every .mo/.po under folders, files or tarballs, in sorted order.

    ``keep(path) -> bool`` lets the caller skip files (by their path) before they are read.
    """
    keep = keep or (lambda _p: True)
    for root in paths:
        if os.path.isdir(root):
            found = []
            for dirpath, _dirs, files in os.walk(root):
                found += [os.path.join(dirpath, f) for f in files if f.endswith((".mo", ".po"))]
            for f in sorted(found):
                if not keep(f):
                    continue
                try:
                    with open(f, "rb") as fh:
                        yield f, fh.read()
                except OSError as e:
                    log.warning("cannot read %s: %s (skipped)", f, e)
        elif tarfile.is_tarfile(root) if os.path.isfile(root) else False:
            try:
                with tarfile.open(root, "r:*") as tar:
                    members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith((".mo", ".po"))),
                                     key=lambda m: m.name)
                    for m in members:
                        if not keep(m.name):
                            continue
                        fh = tar.extractfile(m)
                        if fh is not None:
                            yield f"{root}::{m.name}", fh.read()
            except (tarfile.TarError, EOFError, OSError) as e:
                raise InputError(f"{root}: cannot read the tarball ({e}); is it truncated? re-download it") from None
        elif os.path.isfile(root) and root.endswith((".mo", ".po")):
            with open(root, "rb") as fh:
                yield root, fh.read()
        elif os.path.exists(root):
            raise InputError(f"{root}: neither a folder, a .mo/.po file, nor a readable tarball")
        else:
            raise InputError(f"{root}: no such file or folder")


def dpkg_owners(prefix: str = "/usr/share/locale/") -> dict[str, str]:
    """Map catalog paths to the Debian package that installed them (empty when dpkg is absent)."""
    owners: dict[str, str] = {}
    info = Path("/var/lib/dpkg/info")
    if not info.is_dir():
        return owners
    for lst in info.glob("*.list"):
        pkg = lst.stem.split(":")[0]
        try:
            for line in lst.read_text(errors="replace").splitlines():
                if line.startswith(prefix) and line.endswith(".mo"):
                    owners[line] = pkg
        except OSError:
            continue
    return owners
