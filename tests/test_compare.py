"""mtkit compare: sacrebleu's paired tests per direction, stratified averages, compare-mt analyses,
bad input (different directions, line counts, ids missing from fairseq-generate output), reports."""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF

from mtkit.cli import main as mtkit_main
from mtkit.errors import InputError, MtkitError
from mtkit.evaluation import compare_analyses as analyses
from mtkit.evaluation.compare_inputs import load_files, load_folders, parse_systems
from mtkit.evaluation.compare_stats import (
    Stats,
    bootstrap_group,
    compare_group,
    paired_tests,
    sacrebleu_seed,
)
from mtkit.evaluation.compare_tables import mark

sys.path.insert(0, str(Path(__file__).parent))
from compare_data import corrupt, make_systems  # noqa: E402

from mtkit.testing import english_sentences, translate_words  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    make_systems(root, {"de_DE": 120, "fr_XX": 110, "si_LK": 30}, {"base": 0.35, "new": 0.25})
    return root


def _hyps_refs(n: int = 150):
    rng = random.Random(1)
    refs = [translate_words(s, "de_DE") for s in english_sentences(n, 5)]
    return {"base": [corrupt(r, 0.4, rng) for r in refs], "new": [corrupt(r, 0.3, rng) for r in refs]}, refs


# ---------------------------------------------------------------------------------------------
# statistics


@pytest.mark.parametrize("metric", [BLEU(), CHRF(word_order=2)], ids=["bleu", "chrf++"])
def test_one_direction_reproduces_sacrebleus_paired_tests(metric):
    """Our resampling of one direction is sacrebleu's: same scores, means, intervals and p-values."""
    hyps, refs = _hyps_refs()
    scores, p_bs, p_ar, sigs = paired_tests(hyps, refs, {"m": metric}, 300, 600, seed=7)
    assert "bs:300" in sigs["m"] and "seed:7" in sigs["m"]
    stats = Stats.extract(metric, hyps, refs)
    g = compare_group([stats], "base", ["base", "new"], 300, 600, seed=7)
    for name in ("base", "new"):
        assert g.scores[name].score == scores["m"][name].score == metric.corpus_score(hyps[name], [refs]).score
        assert g.scores[name].mean == pytest.approx(scores["m"][name].mean, abs=1e-4)
        assert g.scores[name].ci == pytest.approx(scores["m"][name].ci, abs=1e-4)
    d = g.differences["new"]
    assert d.p_bs == p_bs["m"]["new"] and d.p_ar == p_ar["m"]["new"]
    assert d.delta == scores["m"]["new"].score - scores["m"]["base"].score
    assert d.low < d.delta < d.high


def test_seed_is_used_and_restored(monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "99")
    hyps, refs = _hyps_refs(60)
    a = paired_tests(hyps, refs, {"bleu": BLEU()}, 100, 0, seed=1)
    b = paired_tests(hyps, refs, {"bleu": BLEU()}, 100, 0, seed=2)
    assert a[0]["bleu"]["new"].mean != b[0]["bleu"]["new"].mean
    assert a[0]["bleu"]["new"].mean == paired_tests(hyps, refs, {"bleu": BLEU()}, 100, 0, seed=1)[0]["bleu"]["new"].mean
    assert __import__("os").environ["SACREBLEU_SEED"] == "99"
    with pytest.raises(MtkitError, match="sacrebleu treats 0 as 'no seed'"):
        with sacrebleu_seed(0):
            pass


def test_average_resamples_each_direction_on_its_own():
    """Stratified: the mean of per-direction scores; resampling keeps each direction's size."""
    metric = CHRF(word_order=2)
    h1, r1 = _hyps_refs(150)
    h2, r2 = {k: v[:40] for k, v in h1.items()}, r1[:40]
    stats = [Stats.extract(metric, h1, r1), Stats.extract(metric, h2, r2)]
    real, resampled = bootstrap_group(stats, "base", ["base", "new"], 200, seed=3)
    for name in ("base", "new"):
        assert real[name] == pytest.approx((metric.corpus_score(h1[name], [r1]).score
                                            + metric.corpus_score(h2[name], [r2]).score) / 2)
        assert resampled[name].shape == (200,)
    # a direction resampled alone has the same spread as in sacrebleu's test of that direction
    g = compare_group(stats, "base", ["base", "new"], 200, 300, seed=3)
    assert g.differences["new"].delta == pytest.approx(real["new"] - real["base"])
    assert g.differences["new"].low < g.differences["new"].delta < g.differences["new"].high
    assert 0 < g.differences["new"].p_bs <= 1 and 0 < g.differences["new"].p_ar <= 1
    again = compare_group(stats, "base", ["base", "new"], 200, 300, seed=3)
    assert again == g


def test_marks_need_a_significant_nonzero_difference():
    assert mark({"delta": 1.5, "p_bs": 0.01}, 0.05)[0] == "\u25b2"
    assert mark({"delta": -1.5, "p_bs": 0.01}, 0.05)[0] == "\u25bc"
    assert mark({"delta": 1.5, "p_bs": 0.2}, 0.05)[0] == ""
    # sacrebleu's p-value of two identical outputs is 1/(N+1) (its count is strict): never a mark
    hyps, refs = _hyps_refs(50)
    _, p_bs, p_ar, _ = paired_tests({"base": hyps["base"], "same": hyps["base"]}, refs, {"bleu": BLEU()},
                                    100, 100, seed=1)
    assert p_bs["bleu"]["same"] == 1 / 101 and p_ar["bleu"]["same"] == 1 / 101
    assert mark({"delta": 0.0, "p_bs": p_bs["bleu"]["same"]}, 0.05)[0] == ""
    assert mark({"delta": 0.0014, "p_bs": 0.001}, 0.05)[0] == ""  # shows as +0.00


# ---------------------------------------------------------------------------------------------
# analyses (compare-mt's functions on sacrebleu's words)


def test_word_accuracy_by_training_frequency_hand_checked():
    ref = [["the", "cat", "sat"], ["a", "dog"]]
    outs = {"a": [["the", "cat", "ran"], ["a", "dog"]], "b": [["the", "dog", "sat"], ["a", "cat"]]}
    counts = {"the": 50, "a": 40, "cat": 3, "dog": 3}  # "sat" is unseen
    res = analyses.word_accuracy(ref, outs, counts, cutoffs=[1, 5])
    rows = {r["bucket"]: r for r in res["rows"]}
    assert list(rows) == ["<1", "[1,5)", ">=5"]
    assert rows["<1"]["ref_words"] == 1 and rows["[1,5)"]["ref_words"] == 2 and rows[">=5"]["ref_words"] == 2
    # system a: both frequent words right, both rare words right, unseen "sat" missed (output "ran")
    assert rows[">=5"]["fmeasure"]["a"] == 1.0 and rows["[1,5)"]["fmeasure"]["a"] == 1.0
    assert rows["<1"]["fmeasure"]["a"] == 0.0 and rows["<1"]["out_words"]["a"] == 1
    # system b: "sat" right; "dog" and "cat" put in the wrong sentences: no rare word matched
    assert rows["<1"]["fmeasure"]["b"] == 1.0 and rows["[1,5)"]["fmeasure"]["b"] == 0.0


def test_ngrams_one_system_matches_and_the_other_misses():
    ref = [["red", "house", "near", "tree"]] * 3
    base = [["red", "house", "near", "river"]] * 3
    new = [["blue", "house", "near", "tree"]] * 3
    res = analyses.ngram_differences(ref, base, new, top=3, max_order=2)
    assert res["baseline_better"][0]["ngram"] in ("red", "red house")
    assert res["baseline_better"][0]["baseline_matches"] == 3 and res["baseline_better"][0]["system_matches"] == 0
    assert res["baseline_better"][0]["score"] == pytest.approx((3 + 1) / (3 + 0 + 2))
    assert {r["ngram"] for r in res["system_better"]} == {"tree", "near tree"} | (
        {r["ngram"] for r in res["system_better"]} - {"tree", "near tree"})
    assert all(r["system_matches"] > r["baseline_matches"] for r in res["system_better"])


def test_buckets_and_sentence_scores_come_from_sacrebleu():
    hyps, refs = _hyps_refs(80)
    metric = CHRF(word_order=2)
    st = Stats.extract(metric, hyps, refs)
    sent = st.sentence_scores("new")
    assert sent[:5] == pytest.approx([metric.sentence_score(h, [r]).score for h, r in zip(hyps["new"][:5], refs)])
    lengths = [len(r.split()) for r in refs]
    res = analyses.length_buckets(lengths, {"chrf++": st}, ["base", "new"], cutoffs=[5])
    short = [i for i, n in enumerate(lengths) if n < 5]
    assert res["rows"][0]["bucket"] == "<5" and res["rows"][0]["n_lines"] == len(short)
    assert res["rows"][0]["scores"]["chrf++"]["new"] == pytest.approx(
        metric.corpus_score([hyps["new"][i] for i in short], [[refs[i] for i in short]]).score)
    b = analyses.sentence_buckets({"new": sent}, cutoffs=[50])
    assert b["buckets"] == ["<50", ">=50"] and sum(b["counts"]["new"]) == 80
    assert b["counts"]["new"][0] == int(np.sum(sent < 50))


def test_words_are_sacrebleus_tokens():
    assert analyses.word_tokenizer("en_XX")("Hello, world!") == ["Hello", ",", "world", "!"]
    assert analyses.word_tokenizer("zho_Hans")("我们是朋友") == ["我", "们", "是", "朋", "友"]


# ---------------------------------------------------------------------------------------------
# bad input


def test_systems_are_name_path_pairs(tmp_path):
    with pytest.raises(MtkitError, match="write NAME=PATH"):
        parse_systems(["base", f"new={tmp_path}"])
    with pytest.raises(MtkitError, match="given twice"):
        parse_systems([f"a={tmp_path}", f"a={tmp_path}"])
    with pytest.raises(MtkitError, match="at least two systems"):
        parse_systems([f"a={tmp_path}"])
    with pytest.raises(InputError, match="does not exist"):
        parse_systems([f"a={tmp_path}", f"b={tmp_path / 'nope'}"])


def test_different_directions_are_compared_on_the_shared_ones(data, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("en_XX-de_DE.hyp", "fr_XX-en_XX.hyp"):
        (partial / name).write_bytes((data / "new" / name).read_bytes())
    systems = parse_systems([f"base={data / 'base'}", f"partial={partial}"])
    directions, left_out = load_folders(systems, data / "raw")
    assert [d.name for d in directions] == ["en_XX-de_DE", "fr_XX-en_XX"]
    assert left_out == {d: ["base"] for d in ("de_DE-en_XX", "en_XX-fr_XX", "en_XX-si_LK", "si_LK-en_XX")}
    other = tmp_path / "other"
    other.mkdir()
    (other / "en_XX-ro_RO.hyp").write_text("x\n", encoding="utf-8")
    with pytest.raises(InputError, match="share no direction"):
        load_folders(parse_systems([f"base={data / 'base'}", f"other={other}"]), data / "raw")


def test_a_line_count_mismatch_names_the_files(data, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    lines = (data / "new" / "en_XX-si_LK.hyp").read_text(encoding="utf-8").splitlines()
    (short / "en_XX-si_LK.hyp").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    systems = parse_systems([f"base={data / 'base'}", f"short={short}"])
    with pytest.raises(InputError, match=r"en_XX-si_LK\.hyp have 29 lines but references .*test\.en_XX-si_LK\.si_LK have 30"):
        load_folders(systems, data / "raw")


def _generate_file(path: Path, hyps: list[str], skip: set[int]) -> Path:
    """fairseq-generate's layout: results in batch order, S/T/H/D/P lines per id."""
    order = list(range(len(hyps)))
    random.Random(0).shuffle(order)
    lines = []
    for i in order:
        if i in skip:
            continue
        lines += [f"S-{i}\tsrc {i}", f"T-{i}\tref {i}", f"H-{i}\t-0.5\t{hyps[i]}", f"D-{i}\t-0.5\t{hyps[i]}",
                  f"P-{i}\t-0.1 -0.2"]
    path.write_text("\n".join(lines) + "\nGenerate test with beam=4: BLEU4 = 10.0\n", encoding="utf-8")
    return path


def test_ids_missing_from_generate_output_error_empty_or_drop(data, tmp_path):
    ref = data / "raw" / "test.en_XX-si_LK.si_LK"
    src = data / "raw" / "test.en_XX-si_LK.en_XX"
    hyps = (data / "new" / "en_XX-si_LK.hyp").read_text(encoding="utf-8").splitlines()
    gen = _generate_file(tmp_path / "generate-en_XX-si_LK.txt", hyps, skip={3, 17})
    systems = parse_systems([f"base={data / 'base' / 'en_XX-si_LK.hyp'}", f"gen={gen}"])
    with pytest.raises(InputError, match=r"no hypothesis for 2 of 30 sentence ids: 3, 17\..*--missing drop"):
        load_files(systems, ref, "si_LK", "en_XX", src)
    empty = load_files(systems, ref, "si_LK", "en_XX", src, missing="empty")
    assert empty.n_lines == 30 and empty.hyps["gen"][3] == "" and empty.hyps["gen"][4] == hyps[4]
    assert re.search(r"gen: 2 sentence ids missing from .* scored as empty hypotheses: 3, 17", empty.notes[0])
    dropped = load_files(systems, ref, "si_LK", "en_XX", src, missing="drop")
    refs = ref.read_text(encoding="utf-8").splitlines()
    assert dropped.n_lines == 28 and 3 not in dropped.line_ids and 17 not in dropped.line_ids
    for k, i in enumerate(dropped.line_ids):  # every kept line still pairs with its own reference
        assert dropped.refs[k] == refs[i] and dropped.hyps["gen"][k] == hyps[i]
    assert "2 sentence ids left out for every system" in dropped.notes[0] and "gen lacks 3, 17" in dropped.notes[0]


# ---------------------------------------------------------------------------------------------
# the command line and the reports


FAST = ["--bootstrap", "200", "--ar-trials", "300", "--examples", "3", "--ngrams", "4"]


@pytest.fixture(scope="module")
def report(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "cmp"
    assert mtkit_main(["compare", f"base={data / 'base'}", f"new={data / 'new'}", "--ref-dir", str(data / "raw"),
                       "--train-dir", str(data / "raw"), "--resource-thresholds", "high=350,low=0",
                       "--out", str(out), *FAST]) == 0
    return out


def test_report_files_and_json(report):
    assert sorted(p.name for p in report.iterdir()) == ["compare.html", "compare.json", "report.md"]
    r = json.loads((report / "compare.json").read_text(encoding="utf-8"))
    assert r["baseline"] == "base" and [s["name"] for s in r["systems"]] == ["base", "new"]
    s = r["settings"]
    assert (s["n_bootstrap"], s["n_trials"], s["seed"], s["min_lines"]) == (200, 300, 12345, 100)
    assert set(r["directions"]) == {f"{a}-{b}" for x in ("de_DE", "fr_XX", "si_LK")
                                    for a, b in (("en_XX", x), (x, "en_XX"))}
    # 30-line directions are kept, marked and left out of the averages
    assert r["below_min_lines"] == ["en_XX-si_LK", "si_LK-en_XX"]
    assert r["directions"]["en_XX-si_LK"]["in_averages"] is False
    assert r["groups"]["all"]["directions"] == ["de_DE-en_XX", "en_XX-de_DE", "en_XX-fr_XX", "fr_XX-en_XX"]
    assert r["directions"]["en_XX-de_DE"]["class"] == "high" and r["directions"]["en_XX-fr_XX"]["class"] == "low"
    d = r["directions"]["en_XX-de_DE"]
    assert d["scores"]["bleu"]["new"]["score"] > d["scores"]["bleu"]["base"]["score"]
    assert d["differences"]["chrf++"]["new"]["p_bs"] < 0.05
    assert "bs:200" in d["signatures"]["bleu"] and "seed:12345" in d["signatures"]["bleu"]
    a = d["analyses"]
    assert a["length"]["side"] == "source" and sum(r["n_lines"] for r in a["length"]["rows"]) == 120
    assert sum(a["sentence_chrf"]["counts"]["new"]) == 120
    assert sum(row["ref_words"] for row in a["word_accuracy"]["rows"]) > 0
    assert len(a["examples"]["new"]["system_better"]) == 3
    # the group average is the mean of its directions' scores
    g = r["groups"]["all"]["scores"]["bleu"]["new"]["score"]
    assert g == pytest.approx(np.mean([r["directions"][n]["scores"]["bleu"]["new"]["score"]
                                       for n in r["groups"]["all"]["directions"]]))


def test_min_lines_is_an_option(data, tmp_path):
    out = tmp_path / "cmp"
    assert mtkit_main(["compare", f"base={data / 'base'}", f"new={data / 'new'}", "--ref-dir", str(data / "raw"),
                       "--out", str(out), "--min-lines", "20", "--ar-trials", "0", *FAST[:2]]) == 0
    r = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert r["below_min_lines"] == [] and len(r["groups"]["all"]["directions"]) == 6
    assert r["groups"]["all"]["differences"]["bleu"]["new"]["p_ar"] is None


def test_html_is_one_self_contained_page(report):
    page = (report / "compare.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for external in (r"<link\b", r"\bsrc=", r"url\(", r"@import", r"https?://"):
        assert not re.search(external, page), external
    assert 'id="overview"' in page and 'id="averages"' in page and 'id="settings"' in page
    for name in ("en_XX-de_DE", "si_LK-en_XX"):
        assert f'href="#dir-{name}"' in page and f'id="dir-{name}"' in page
    assert page.count('class="sortable"') >= 10 and "<svg" in page
    assert "1000 resamples" not in page and "200 resamples" in page and "seed 12345" in page


def test_markdown_report(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# Comparison: base vs new")
    assert "| en_XX-si_LK | low | en->x | 30 \u2020 |" in md
    assert "| all | 4 |" in md and "200 resamples" in md and "seed 12345" in md


def test_one_direction_from_files(data, tmp_path, capsys):
    out = tmp_path / "one"
    raw = data / "raw"
    assert mtkit_main(["compare", f"base={data / 'base' / 'en_XX-fr_XX.hyp'}", f"new={data / 'new' / 'en_XX-fr_XX.hyp'}",
                       "--ref", str(raw / "test.en_XX-fr_XX.fr_XX"), "--src", str(raw / "test.en_XX-fr_XX.en_XX"),
                       "--src-lang", "en_XX", "--tgt-lang", "fr_XX", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("paired bootstrap: 200 resamples; approximate randomization: 300 trials; seed 12345")
    assert re.search(r"all\s+BLEU\s+new: \+\d+\.\d\d \[\+\d+\.\d\d, \+\d+\.\d\d\] 0\.\d{4} 0\.\d{4}", printed)
    r = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert list(r["directions"]) == ["en_XX-fr_XX"] and r["directions"]["en_XX-fr_XX"]["n_lines"] == 110
    assert r["directions"]["en_XX-fr_XX"]["analyses"]["word_accuracy"] == {
        "skipped": "no training folder given (--train-dir)"}


def test_bad_input_writes_nothing(data, tmp_path, capsys):
    short = tmp_path / "short"
    short.mkdir()
    (short / "en_XX-de_DE.hyp").write_text("one line\n", encoding="utf-8")
    out = tmp_path / "cmp"
    assert mtkit_main(["compare", f"base={data / 'base'}", f"short={short}", "--ref-dir", str(data / "raw"),
                       "--out", str(out), *FAST]) == 2
    assert "line counts differ" in capsys.readouterr().err
    assert not out.exists()
    assert mtkit_main(["compare", f"base={data / 'base'}", f"new={data / 'new'}", "--ref-dir", str(data / "raw"),
                       "--out", str(out), "--seed", "0"]) == 2
    assert "sacrebleu treats 0 as 'no seed'" in capsys.readouterr().err
    assert mtkit_main(["compare", f"base={data / 'base'}", f"new={data / 'new'}", "--out", str(out)]) == 2
    assert "give --ref-dir" in capsys.readouterr().err
    assert not out.exists()


def test_flores_layout_and_a_direction_without_english(tmp_path):
    fix = Path(__file__).parent / "fixtures" / "evaluate"
    other = tmp_path / "other"
    other.mkdir()
    for p in (fix / "flores_hyps").iterdir():  # the second system drops each line's first word
        lines = p.read_text(encoding="utf-8").splitlines()
        (other / p.name).write_text("".join(" ".join(x.split()[1:]) + "\n" for x in lines), encoding="utf-8")
    out = tmp_path / "cmp"
    assert mtkit_main(["compare", f"a={fix / 'flores_hyps'}", f"b={other}", "--ref-dir", str(fix / "flores"),
                       "--min-lines", "1", "--out", str(out), *FAST]) == 0
    r = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert list(r["directions"]) == ["deu_Latn-fra_Latn", "eng_Latn-deu_Latn"]
    assert r["directions"]["deu_Latn-fra_Latn"]["kind"] == "x->y"
    assert r["directions"]["deu_Latn-fra_Latn"]["files"]["reference"].endswith("devtest/fra_Latn.devtest")
    assert set(r["groups"]) == {"all", "en->x", "x->y"}
    assert all(d["differences"]["chrf++"]["b"]["delta"] < 0 for d in r["directions"].values())
