"""Language-ID engines whose model ships inside their PyPI wheel, on the gettext corpus's test sides.

For every direction of a ``mtkit data gettext`` corpus, both sides of the test split are labelled by
each engine (the English side must come out ``en``, the other side its ISO 639-1 code). Reported
per engine: accuracy (right answer), wrong (another language: what would make the filter drop a
correct pair), undecided (no answer: the filter keeps the line), the share of test *pairs* the
filter step would drop, lines per second, and the languages it does not know at all. gettext
test lines are UI strings (often a few words), the hard case for language ID.

Engines: pycld2 and langid through ``data_prep.steps.lid`` (what ``--lid`` runs), and
lingua-language-detector (all languages, its default high-accuracy mode) for comparison.

    nice -n 10 python benchmarks/data_prep_speed/lid.py --gettext work/gt --out benchmarks/data_prep_speed/results_lid.json
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from data_prep.corpus_files import list_directions
from data_prep.steps import lid
from mtkit.io import read_lines, versions, write_json


class Lingua:
    name = "lingua"

    def __init__(self) -> None:
        from lingua import LanguageDetectorBuilder

        self._d = LanguageDetectorBuilder.from_all_languages().build()
        from lingua import Language

        self._langs = {lang.iso_code_639_1.name.lower() for lang in Language.all()}

    def languages(self) -> set[str]:
        return self._langs

    def predict(self, texts):
        out = []
        for lang in self._d.detect_languages_in_parallel_of(list(texts)):
            out.append(lang.iso_code_639_1.name.lower() if lang is not None else None)
        return out


def evaluate(engine, sides: dict[str, list[str]], pairs: dict[str, tuple[list[str], list[str]]],
             min_chars: int) -> dict:
    known = engine.languages()
    c: Counter = Counter()
    per_lang = {}
    seconds = 0.0
    for code, texts in sorted(sides.items()):
        if code not in known:
            per_lang[code] = "not supported"
            continue
        t = time.perf_counter()
        got = engine.predict(texts)
        seconds += time.perf_counter() - t
        k = Counter("right" if g == code else "undecided" if g is None else "wrong" for g in got)
        c.update(k)
        c["lines"] += len(texts)
        c.update(("long_" + x) for t, g in zip(texts, got) if len(t) >= min_chars
                 for x in ["right" if g == code else "undecided" if g is None else "wrong", "lines"])
        per_lang[code] = {x: round(k[x] / len(texts), 4) for x in ("right", "wrong", "undecided")} | {"lines": len(texts)}
    dropped = {0: 0, min_chars: 0}
    total = 0
    for d, (en, xx) in sorted(pairs.items()):
        for m in dropped:
            keep = lid.PairChecker(engine, "en_XX", d, min_chars=m).ok(list(zip(en, xx)))
            dropped[m] += len(keep) - sum(keep)
        total += len(keep)
    n, nl = c["lines"], c["long_lines"]
    return {"accuracy": round(c["right"] / n, 4), "wrong": round(c["wrong"] / n, 4),
            "undecided": round(c["undecided"] / n, 4), "lines": n, "lines_per_s": round(n / seconds, 1),
            f"lines_of_{min_chars}_chars_or_more": {"lines": nl, **{x: round(c["long_" + x] / nl, 4)
                                                                      for x in ("right", "wrong", "undecided")}},
            "pairs_dropped_by_filter": {"judging_every_line": round(dropped[0] / total, 4),
                                        f"judging_sides_of_{min_chars}_chars_or_more": round(dropped[min_chars] / total, 4)},
            "pairs": total,
            "not_supported": sorted(k for k, v in per_lang.items() if v == "not supported"), "per_language": per_lang}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gettext", required=True, help="a `mtkit data gettext` output folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--engines", default="pycld2,langid,lingua")
    ap.add_argument("--limit", type=int, default=None, help="first N test pairs of each direction (all by default)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results_lid.json"))
    a = ap.parse_args()
    load = os.getloadavg()[0]
    raw = Path(a.gettext) / "raw"
    sides: dict[str, list[str]] = {"en": []}
    pairs = {}
    for src, tgt in list_directions(raw):
        en = list(read_lines(raw / f"{a.split}.{src}-{tgt}.{src}"))[:a.limit]
        xx = list(read_lines(raw / f"{a.split}.{src}-{tgt}.{tgt}"))[:a.limit]
        sides["en"] += en
        sides.setdefault(lid.iso_code(tgt), []).extend(xx)
        pairs[tgt] = (en, xx)
    sides["en"] = sorted(set(sides["en"]))  # the English side repeats across directions
    results = {}
    for name in a.engines.split(","):
        t = time.perf_counter()
        engine = Lingua() if name == "lingua" else lid.load(name)
        engine.predict(["warm up: load the model"])
        load_s = time.perf_counter() - t
        results[name] = {"load_seconds": round(load_s, 2), **evaluate(engine, sides, pairs, lid.DEFAULT_MIN_CHARS),
                         # running maximum of this process: engines are measured in the order given
                         "process_peak_rss_mb_after": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        print(name, {k: v for k, v in results[name].items() if k != "per_language"}, file=sys.stderr)
        write_json(a.out, {  # after every engine
            "command": f"nice -n {os.nice(0)} python benchmarks/data_prep_speed/lid.py " + " ".join(sys.argv[1:]),
            "corpus": str(a.gettext), "split": a.split, "limit_per_direction": a.limit, "directions": sorted(pairs),
            "versions": versions(("mtkit", "pycld2", "langid", "lingua-language-detector")),
            "load_1min_at_start": load, "engines": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
