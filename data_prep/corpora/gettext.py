"""`mtkit data gettext`: a real ML50-style corpus from gettext catalogs, with no network.

Pipeline: discover catalogs -> pick one locale variant per (language, domain) -> parse -> clean
(untranslated/fuzzy/obsolete/header dropped, plurals, accelerators, format-specifier check,
multi-line split, identical sides, length limits) -> dedup pairs -> split by a hash of the English
side (one English sentence is in the same split for every language) -> raw files, a multi-way
Flores-style dev/devtest, and ``manifest.json``.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from data_prep.corpus_files import CORPUS_FILE_RE, SPLITS, corpus_file, progress_settings
from data_prep.sources.gettext import (
    LOCALE_PREFERENCES,
    LOCALE_TO_MBART,
    Catalog,
    dpkg_owners,
    iter_catalog_files,
    load_catalog,
    locale_domain_from_path,
)
from mtkit.errors import InputError
from mtkit.io import clean_stale_tmp, text_hash, versions, write_json, write_lines
from mtkit.langs import ML50_LANGS, to_flores, to_mbart

log = logging.getLogger(__name__)

DEFAULT_CATALOGS = ("/usr/share/locale",)
ENGLISH = "en_XX"


@dataclass
class CleanSettings:
    min_chars: int = 2
    max_chars: int = 1000
    max_words: int = 150


# --- cleaning -----------------------------------------------------------------------------------

_FORMAT_RE = re.compile(
    r"%%"  # literal percent, ignored
    r"|%(?:\d+\$)?(?:\([A-Za-z_][\w.-]*\))?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32|I)?[diouxXeEfFgGaAcspnmS@]"
    r"|%\d+"  # Qt style %1
    r"|\{[A-Za-z0-9_]*(?::[^{}]*)?\}"  # {0} {name} {name:>4}
    r"|\$\{[A-Za-z_]\w*\}|\$[A-Za-z_]\w*"  # shell-like ${NAME} $NAME
)
_POSITIONAL = re.compile(r"^%\d+\$")
_ASIAN_ACCEL = re.compile(r"\s*[(（][_&][A-Za-z0-9][)）]")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LETTER = re.compile(r"[^\W\d_]")


def format_specifiers(text: str) -> list[str]:
    """Format specifiers in ``text`` (positions stripped, sorted), so both sides can be compared."""
    out = []
    for m in _FORMAT_RE.finditer(text):
        tok = m.group(0)
        if tok == "%%":
            continue
        out.append(_POSITIONAL.sub("%", tok))
    return sorted(out)


def strip_accelerators(text: str) -> str:
    """Remove keyboard-accelerator markers: ``(_F)`` suffixes, one ``_`` or one ``&`` before a letter."""
    text = _ASIAN_ACCEL.sub("", text)
    if text.count("_") == 1:
        text = re.sub(r"_(?=[^\W_])", "", text)
    if text.count("&") == 1 and not _ENTITY.search(text):
        text = re.sub(r"&(?=[^\W_])", "", text)
    return text


def _norm_ws(text: str) -> str:
    return " ".join(text.split())


def clean_pair(en: str, xx: str, settings: CleanSettings, drops: Counter) -> list[tuple[str, str]]:
    """Turn one catalog entry into zero or more clean line pairs; reasons for drops go to ``drops``."""
    if not en.strip() or not xx.strip():
        drops["empty"] += 1
        return []
    en, xx = strip_accelerators(en), strip_accelerators(xx)
    if format_specifiers(en) != format_specifiers(xx):
        drops["format_mismatch"] += 1
        return []
    en_lines = [ln for ln in (_norm_ws(_CONTROL.sub(" ", x)) for x in en.split("\n")) if ln]
    xx_lines = [ln for ln in (_norm_ws(_CONTROL.sub(" ", x)) for x in xx.split("\n")) if ln]
    if len(en_lines) != len(xx_lines):
        drops["multiline_mismatch"] += 1
        return []
    out = []
    for a, b in zip(en_lines, xx_lines):
        if a == b:
            drops["identical"] += 1
        elif not _LETTER.search(a):
            drops["no_letters"] += 1
        elif not (settings.min_chars <= len(a) <= settings.max_chars
                  and settings.min_chars <= len(b) <= settings.max_chars):
            drops["length_chars"] += 1
        elif len(a.split()) > settings.max_words or len(b.split()) > settings.max_words:
            drops["length_words"] += 1
        else:
            out.append((a, b))
    return out


def catalog_pairs(cat: Catalog, settings: CleanSettings) -> tuple[list[tuple[str, str]], Counter]:
    """All clean pairs of one catalog plus counts (entries, drops by reason, pairs)."""
    counts: Counter = Counter()
    pairs: list[tuple[str, str]] = []
    for e in cat.entries:
        counts["entries"] += 1
        if e.obsolete:
            counts["drop_obsolete"] += 1
            continue
        if e.fuzzy:
            counts["drop_fuzzy"] += 1
            continue
        if not e.msgstr or not e.msgstr[0].strip():
            counts["drop_untranslated"] += 1
            continue
        candidates = [(e.msgid, e.msgstr[0])]
        if e.msgid_plural is not None and cat.nplurals == 2 and len(e.msgstr) > 1 and e.msgstr[1].strip():
            candidates.append((e.msgid_plural, e.msgstr[1]))
            counts["plural_forms_used"] += 1
        for en, xx in candidates:
            drops: Counter = Counter()
            got = clean_pair(en, xx, settings, drops)
            for k, v in drops.items():
                counts["drop_" + k] += v
            pairs.extend(got)
    counts["pairs"] = len(pairs)
    return pairs, counts


def _work(item: tuple[str, bytes, str, dict]) -> tuple[str, str, str, list[tuple[str, str]], Counter]:
    path, data, lang, settings = item
    cat = load_catalog(data, path)
    pairs, counts = catalog_pairs(cat, CleanSettings(**settings))
    return lang, cat.domain, path, pairs, counts


# --- selection and split ------------------------------------------------------------------------

def resolve_langs(langs: Iterable[str] | None) -> list[str] | None:
    """mBART or Flores codes -> mBART codes in ML50 order (English is implied and removed)."""
    if langs is None:
        return None
    wanted = {to_mbart(c) for c in langs}
    wanted.discard(ENGLISH)
    return [c for c in ML50_LANGS if c in wanted]


def select_catalogs(paths: list[str], langs: list[str]) -> tuple[list[tuple[str, bytes, str]], dict]:
    """Read catalog bytes for the selected languages, one locale variant per (language, domain)."""
    by_key: dict[tuple[str, str], dict[str, list[tuple[str, bytes]]]] = defaultdict(lambda: defaultdict(list))
    wanted_locales = {loc for c in langs for loc in LOCALE_PREFERENCES[c]}

    def keep(path: str) -> bool:
        locale, _ = locale_domain_from_path(path)
        if locale in wanted_locales:
            return True
        return locale not in LOCALE_TO_MBART and (path.endswith(".po") or locale is None)

    for path, data in iter_catalog_files(paths, keep):
        locale, domain = locale_domain_from_path(path.split("::")[-1])
        if locale is None or locale not in LOCALE_TO_MBART:
            if path.endswith(".po") or locale is None:  # the header may name the language
                cat = load_catalog(data, path)
                locale, domain = cat.locale, cat.domain
            if locale not in LOCALE_TO_MBART:
                continue
        lang = LOCALE_TO_MBART[locale]
        if lang in langs:
            by_key[(lang, domain)][locale].append((path, data))
    chosen = []
    locales_used: dict[str, Counter] = defaultdict(Counter)
    for (lang, _domain), variants in sorted(by_key.items()):
        for loc in LOCALE_PREFERENCES[lang]:
            if loc in variants:
                for path, data in variants[loc]:
                    chosen.append((path, data, lang))
                locales_used[lang][loc] += 1
                break
    return chosen, {k: dict(v) for k, v in locales_used.items()}


def assign_splits(
    english_by_lang: dict[str, set[str]], multiway: list[str], valid_size: int, test_size: int,
    flores_size: int, max_heldout_fraction: float,
) -> tuple[dict[str, str], list[str], list[str]]:
    """English sentence -> 'valid'/'test' (absent: train), plus the multi-way dev and devtest lists.

    Multi-way sentences (translated in every language) are placed first; then each language, in
    ML50 order, adds its lowest-hash English sentences until it holds ``min(size, fraction*n)``.
    Assignments are global, so a sentence held out for one language is held out for all of them.
    """
    key = {}
    order = sorted(multiway, key=lambda s: (text_hash(s), s))
    smallest = min((len(v) for v in english_by_lang.values()), default=0)
    n_flores = min(flores_size, int(max_heldout_fraction * smallest))
    devtest, dev = order[:n_flores], order[n_flores:2 * n_flores]
    for s in devtest:
        key[s] = "test"
    for s in dev:
        key[s] = "valid"
    for lang in [c for c in ML50_LANGS if c in english_by_lang]:
        sents = sorted(english_by_lang[lang], key=lambda s: (text_hash(s), s))
        cap = int(max_heldout_fraction * len(sents))
        for split, size in (("test", test_size), ("valid", valid_size)):
            want = min(size, cap)
            have = sum(1 for s in sents if key.get(s) == split)
            for s in sents:
                if have >= want:
                    break
                if s not in key:
                    key[s] = split
                    have += 1
    return key, dev, devtest


# --- the command ---------------------------------------------------------------------------------

@dataclass
class Harvest:
    """What the catalogs gave, per language: pair occurrences and counts for the manifest."""
    pair_counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    domains: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    packages: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


@dataclass
class Split:
    """English sentence -> held-out split (absent: train), and the multi-way dev/devtest rows."""
    split_of: dict[str, str]
    dev: list[str]
    devtest: list[str]
    multiway: int


def harvest(chosen: list[tuple[str, bytes, str]], settings: CleanSettings, workers: int) -> Harvest:
    """Parse and clean every chosen catalog (in ``workers`` processes) and gather the pairs."""
    owners = dpkg_owners()
    h = Harvest()
    items = [(p, d, lang, asdict(settings)) for p, d, lang in chosen]
    ex = ProcessPoolExecutor(workers) if workers > 1 else None
    results = ex.map(_work, items, chunksize=16) if ex else map(_work, items)
    try:
        for lang, domain, path, pairs, c in tqdm(results, total=len(items), desc="catalogs", unit="file",
                                                 **progress_settings()):
            h.counts[lang].update(c)
            h.counts[lang]["catalogs"] += 1
            if pairs:
                h.domains[lang][domain] += len(pairs)
                h.packages[lang].add(owners.get(path, domain))
            h.pair_counts[lang].update(pairs)
    finally:
        if ex is not None:
            ex.shutdown()
    return h


def split_sentences(h: Harvest, found: list[str], valid_size: int, test_size: int, flores_size: int,
                    max_heldout_fraction: float) -> Split:
    english_by_lang = {lang: {en for en, _ in h.pair_counts[lang]} for lang in found}
    multiway = sorted(set.intersection(*english_by_lang.values())) if found else []
    split_of, dev, devtest = assign_splits(english_by_lang, multiway, valid_size, test_size, flores_size,
                                           max_heldout_fraction)
    return Split(split_of, dev, devtest, len(multiway))


def write_raw(raw: Path, h: Harvest, found: list[str], split: Split) -> None:
    """``raw/{split}.en_XX-{xx}.{lang}``: deduplicated pairs in hash order, each in its sentence's split."""
    for lang in found:
        c = h.counts[lang]
        c["after_clean"] = c.pop("pairs", 0)
        c["after_dedup"] = len(h.pair_counts[lang])
        ordered = sorted(h.pair_counts[lang], key=lambda p: (text_hash(p[0]), p[0], p[1]))
        by_split: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
        for en, xx in ordered:
            by_split[split.split_of.get(en, "train")].append((en, xx))
        for name, rows in by_split.items():
            for side, idx in ((ENGLISH, 0), (lang, 1)):
                write_lines(corpus_file(raw, name, ENGLISH, lang, side), (r[idx] for r in rows))
            c[name] = len(rows)


def remove_stale(out: Path, found: list[str]) -> None:
    """Files of an earlier build with other languages would be read as part of this corpus: remove them."""
    raw = out / "raw"
    written = {corpus_file(raw, sp, ENGLISH, lang, side).name for lang in found for sp in SPLITS
               for side in (ENGLISH, lang)}
    for p in (raw.iterdir() if raw.is_dir() else ()):
        if CORPUS_FILE_RE.match(p.name) and p.name not in written:
            log.info("removing %s (not part of this build)", p)
            p.unlink()
    for name in ("dev", "devtest"):
        keep = {f"{to_flores(c)}.{name}" for c in [ENGLISH] + found}
        folder = out / "flores" / name
        for p in (folder.iterdir() if folder.is_dir() else ()):
            if p.name.endswith(f".{name}") and p.name not in keep:
                p.unlink()


def write_flores(folder: Path, h: Harvest, found: list[str], split: Split) -> None:
    """Multi-way Flores-style dev/devtest: the most frequent translation of each English sentence."""
    held = set(split.dev) | set(split.devtest)
    best: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
    for lang in found:
        for (en, xx), n in h.pair_counts[lang].items():
            if en in held and (-n, xx) < best[lang].get(en, (1, "")):
                best[lang][en] = (-n, xx)
    for name, sents in (("dev", split.dev), ("devtest", split.devtest)):
        write_lines(folder / name / f"{to_flores(ENGLISH)}.{name}", sents)
        for lang in found:
            write_lines(folder / name / f"{to_flores(lang)}.{name}", (best[lang][en][1] for en in sents))


def build(
    out: str | os.PathLike,
    catalogs: list[str] | None = None,
    langs: list[str] | None = None,
    valid_size: int = 1000,
    test_size: int = 1000,
    flores_size: int = 1000,
    max_heldout_fraction: float = 0.1,
    min_chars: int = 2,
    max_chars: int = 1000,
    max_words: int = 150,
    workers: int = 1,
) -> dict:
    """Build ``out/raw``, ``out/flores`` and ``out/manifest.json`` from gettext catalogs.

    ``langs``: mBART or Flores codes (default: every ML50 language found). Returns the manifest.
    The same catalogs and settings give byte-identical files, whatever ``out`` and ``workers`` are.
    """
    out = Path(out)
    catalogs = list(catalogs or DEFAULT_CATALOGS)
    wanted = resolve_langs(langs) or [c for c in ML50_LANGS if c != ENGLISH]
    settings = CleanSettings(min_chars=min_chars, max_chars=max_chars, max_words=max_words)
    chosen, locales_used = select_catalogs(catalogs, wanted)
    if not chosen:
        raise InputError(
            f"no gettext catalogs for {', '.join(wanted)} under {', '.join(catalogs)}; "
            "give --catalogs a folder or tarball of .mo/.po files"
        )
    h = harvest(chosen, settings, workers)
    found = [c for c in wanted if h.pair_counts.get(c)]
    missing = [c for c in wanted if c not in found]
    if missing:
        log.warning("no usable catalog pairs for: %s", ", ".join(missing))
    split = split_sentences(h, found, valid_size, test_size, flores_size, max_heldout_fraction)
    clean_stale_tmp(out)
    write_raw(out / "raw", h, found, split)
    remove_stale(out, found)
    write_flores(out / "flores", h, found, split)
    manifest = {
        "command": "mtkit data gettext",
        "catalogs": catalogs,
        "settings": {**asdict(settings), "valid_size": valid_size, "test_size": test_size,
                     "flores_size": flores_size, "max_heldout_fraction": max_heldout_fraction,
                     "langs": wanted},
        "versions": versions(),
        "directions": {f"{ENGLISH}-{lang}": dict(h.counts[lang]) for lang in found},
        "languages_missing": missing,
        "locales_used": locales_used,
        "packages": {lang: sorted(h.packages[lang]) for lang in found},
        "domains": {lang: dict(h.domains[lang].most_common()) for lang in found},
        "flores": {"langs": [to_flores(c) for c in [ENGLISH] + found], "dev": len(split.dev),
                   "devtest": len(split.devtest), "multiway_candidates": split.multiway},
    }
    write_json(out / "manifest.json", manifest)
    return manifest
