"""mtkit evaluate: hand-checked metric values, equality with the sacrebleu command line, NLLB-style
added toxicity in every mode, fairseq-generate parsing, folder mode with tables and plots, bad input."""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

from mtkit.cli import main as mtkit_main
from mtkit.errors import InputError, MtkitError
from mtkit.evaluation.folder import evaluate_folder, find_hypotheses
from mtkit.evaluation.generate_output import (
    clean_hypothesis,
    detect_segmentation,
    parse_generate_output,
)
from mtkit.evaluation.scoring import score_direction, score_files
from mtkit.evaluation.toxicity import Matcher, ToxicityLists, added_toxicity
from mtkit.langs import UnknownLanguageError

BIN = Path(sys.executable).parent
SACREBLEU = sacrebleu.__version__  # signatures carry the installed sacrebleu's version
FIX = Path(__file__).parent / "fixtures" / "evaluate"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Path:
    """A tiny SentencePiece model trained on the fixture sentences (about a second)."""
    import sentencepiece as spm

    root = tmp_path_factory.mktemp("spm")
    text = root / "text.txt"
    lines = []
    for p in sorted((FIX / "flores" / "devtest").iterdir()):
        lines += p.read_text(encoding="utf-8").splitlines()
    lines += ["the blorf sings", "a zindle wump runs", "grax and blorf"] * 3
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(root / "tiny"), vocab_size=90,
                                   character_coverage=1.0, model_type="unigram", minloglevel=2)
    return root / "tiny.model"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = mtkit_main(["evaluate", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def sacrebleu_cli(ref: Path, hyp: Path, *opts: str, env: dict | None = None) -> dict[str, float]:
    """Scores from the sacrebleu command line (JSON), by metric name."""
    res = subprocess.run([str(BIN / "sacrebleu"), str(ref), "-i", str(hyp), "-w", "6", *opts],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    data = data if isinstance(data, list) else [data]
    return {d["name"]: (d["score"], d["signature"]) for d in data}


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text(end.join(lines) + end, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# metrics, hand-checked


def test_bleu_hand_checked():
    # 1-4 gram precisions 3/4, 2/3, 1/2 and 0/1 -> exp smoothing makes the last 100/(2*1) = 50
    r = score_direction(["a b c d"], ["a b c e"], "de_DE", metrics="bleu")
    assert r["bleu"] == pytest.approx((75 * (200 / 3) * 50 * 50) ** 0.25)
    assert r["details"]["bleu"]["counts"] == [3, 2, 1, 0]
    assert r["signatures"]["bleu"] == f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{SACREBLEU}"
    # brevity penalty exp(1 - 5/4) with all precisions 100
    r = score_direction(["a b c d"], ["a b c d e"], "deu_Latn", metrics="bleu")
    assert r["bleu"] == pytest.approx(100 * math.exp(-0.25))


@pytest.mark.parametrize("lang", ["zho_Hans", "zh_CN"])
def test_chinese_uses_the_zh_tokeniser(lang):
    # zh splits Chinese characters: the same n-gram counts as "a b c d" vs "a b c e"
    r = score_direction(["我喜欢猫"], ["我喜欢狗"], lang, metrics="bleu")
    assert r["bleu"] == pytest.approx((75 * (200 / 3) * 50 * 50) ** 0.25)
    assert "tok:zh" in r["signatures"]["bleu"]
    # the user can override; 13a sees one unmatched word
    r = score_direction(["我喜欢猫"], ["我喜欢狗"], lang, metrics="bleu", tokenize="13a")
    assert r["bleu"] == 0.0 and "tok:13a" in r["signatures"]["bleu"]


def test_tokenize_none_for_pretokenised_text():
    r = score_direction(["a b ."], ["a b."], "fr_XX", metrics="bleu", tokenize="none")
    assert "tok:none" in r["signatures"]["bleu"]
    assert r["details"]["bleu"]["counts"][0] == 1  # only "a": "b." and "b" stay different tokens
    r = score_direction(["a b ."], ["a b."], "fr_XX", metrics="bleu")
    assert r["details"]["bleu"]["counts"] == [3, 2, 1, 0]  # 13a splits the period


def test_chrf_and_chrfpp_hand_checked():
    # chars of "ab" vs "abc": order 1 P=1 R=2/3, order 2 P=1 R=1/2 -> P=1, R=7/12,
    # F2 = 5PR/(4P+R) = 35/55. chrF++ adds the word unigram "ab"/"abc": P=0, R=0 -> P=2/3, R=7/18
    r = score_direction(["ab"], ["abc"], "en_XX", metrics="chrf,chrf++")
    assert r["chrf"] == pytest.approx(100 * 35 / 55)
    assert r["chrf++"] == pytest.approx(100 * 1260 / 2970)
    assert r["signatures"]["chrf"] == f"nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{SACREBLEU}"
    assert r["signatures"]["chrf++"] == f"nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:{SACREBLEU}"


@pytest.mark.parametrize("lang,module,extra", [("ja_XX", "tokenizer_ja_mecab", "ja"),
                                               ("kor_Hang", "tokenizer_ko_mecab", "ko")])
def test_japanese_korean_without_extra_name_the_extra(monkeypatch, lang, module, extra):
    import importlib

    mod = importlib.import_module(f"sacrebleu.tokenizers.{module}")
    monkeypatch.setattr(mod, "MeCab", None)  # as if sacrebleu[ja]/[ko] were not installed
    with pytest.raises(MtkitError, match=rf"pip install 'mtkit\[{extra}\]'"):
        score_direction(["x"], ["x"], lang, metrics="bleu")
    # chrF needs no tokeniser and still works
    assert score_direction(["x"], ["x"], lang, metrics="chrf++")["chrf++"] == 100.0


@pytest.mark.parametrize("lang,tok,module", [("jpn_Jpan", "ja-mecab", "MeCab"),
                                              ("ko_KR", "ko-mecab", "mecab_ko")])
def test_japanese_korean_with_the_extra_equal_the_command_line(tmp_path, capsys, lang, tok, module):
    pytest.importorskip(module)  # only where mtkit[ja] / mtkit[ko] is installed
    text = {"ja-mecab": ["猫が魚を食べた。", "今日は良い天気です。"], "ko-mecab": ["고양이가 생선을 먹었다.", "오늘은 날씨가 좋다."]}[tok]
    hyp = write(tmp_path / "h", [t[:-2] + t[-1] for t in text])
    ref = write(tmp_path / "r", text)
    rc, out, _ = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", lang,
                         "--metrics", "bleu", "--json", "-w", "6")
    ours = json.loads(out)
    assert (ours["bleu"], ours["signatures"]["bleu"]) == sacrebleu_cli(ref, hyp, "-tok", tok)["BLEU"]
    assert f"tok:{tok}" in ours["signatures"]["bleu"]


def test_spm_tokenisers_never_download():
    with pytest.raises(MtkitError, match="--spm-model"):
        score_direction(["a"], ["a"], "en_XX", metrics="bleu", tokenize="flores200")
    with pytest.raises(MtkitError, match="--spm-model"):
        score_direction(["a"], ["a"], "en_XX", metrics="spbleu")


def test_spbleu_with_a_local_model_and_an_honest_signature(spm_model):
    import sentencepiece as spm

    hyps = ["Der alte Mann liest ein Buch beim Fluss.", "Zwei kleine Vögel singen."]
    refs = ["Der alte Mann liest ein Buch am Fluss.", "Zwei kleine Vögel singen im Baum."]
    r = score_direction(hyps, refs, "de_DE", metrics="bleu,spbleu", spm_model=spm_model,
                        spm_name="flores200")
    sha = hashlib.sha256(spm_model.read_bytes()).hexdigest()[:12]
    assert f"tok:flores200@tiny.model#sha256:{sha}|" in r["signatures"]["spbleu"]
    assert "tok:13a" in r["signatures"]["bleu"]
    # spBLEU is BLEU with tok none on SentencePiece pieces
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    pieces = [[" ".join(sp.encode(s, out_type=str)) for s in side] for side in (hyps, refs)]
    plain = score_direction(pieces[0], pieces[1], "de_DE", metrics="bleu", tokenize="none")
    assert r["spbleu"] == pytest.approx(plain["bleu"], abs=1e-12)
    assert r["spbleu"] != r["bleu"]
    # --tokenize flores200 with the model makes BLEU itself spBLEU
    r2 = score_direction(hyps, refs, "de_DE", metrics="bleu", spm_model=spm_model, tokenize="flores200")
    assert r2["bleu"] == r["spbleu"] and "tok:flores200@tiny.model" in r2["signatures"]["bleu"]


# ---------------------------------------------------------------------------------------------
# equality with the sacrebleu command line


def _noisy_corpus(tmp_path: Path, n: int = 120) -> tuple[Path, Path]:
    rng = random.Random(7)
    words = ("der die das Haus Baum Fluss Mann liest schreibt Buch Brief grün rot alt neu , . ! ? "
             "Straße Großmutter l'arbre über").split()
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(words) for _ in range(rng.randint(0, 14))]
        hyp = [w for w in ref if rng.random() > 0.2] + [rng.choice(words) for _ in range(rng.randint(0, 3))]
        rng.shuffle(hyp) if rng.random() < 0.2 else None
        refs.append(" ".join(ref) + ("  " if rng.random() < 0.1 else ""))
        hyps.append(" ".join(hyp) + ("\t" if rng.random() < 0.1 else ""))
    hyp = write(tmp_path / "hyp.txt", hyps)
    ref = tmp_path / "ref.txt"
    ref.write_bytes(("\r\n".join(refs) + "\r\n").encode("utf-8"))  # CRLF reference, as on Windows
    return hyp, ref


def test_scores_equal_the_sacrebleu_command_line(tmp_path, capsys):
    hyp, ref = _noisy_corpus(tmp_path)
    rc, out, _ = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de_DE",
                         "--metrics", "bleu,chrf++,chrf", "--json", "-w", "6")
    assert rc == 0
    ours = json.loads(out)
    theirs = sacrebleu_cli(ref, hyp, "-m", "bleu", "chrf", "--chrf-word-order", "2")
    assert ours["bleu"] == theirs["BLEU"][0] and ours["signatures"]["bleu"] == theirs["BLEU"][1]
    assert ours["chrf++"] == theirs["chrF2++"][0] and ours["signatures"]["chrf++"] == theirs["chrF2++"][1]
    assert ours["chrf"] == sacrebleu_cli(ref, hyp, "-m", "chrf")["chrF2"][0]
    assert 5 < ours["bleu"] < 95  # a meaningful, non-degenerate score


def test_chinese_and_spbleu_equal_the_sacrebleu_command_line(tmp_path, capsys, spm_model):
    rng = random.Random(3)
    chars = "我你他喜欢猫狗吃鱼在家里看书很好的。，"
    refs = ["".join(rng.choice(chars) for _ in range(rng.randint(3, 15))) for _ in range(60)]
    hyps = ["".join(c for c in r if rng.random() > 0.25) for r in refs]
    hyp, ref = write(tmp_path / "h.zh", hyps), write(tmp_path / "r.zh", refs)
    rc, out, _ = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "zho_Hans",
                         "--json", "-w", "6")
    ours = json.loads(out)
    theirs = sacrebleu_cli(ref, hyp, "-tok", "zh", "-m", "bleu", "chrf", "--chrf-word-order", "2")
    assert (ours["bleu"], ours["signatures"]["bleu"]) == theirs["BLEU"]
    assert ours["chrf++"] == theirs["chrF2++"][0]

    # spBLEU: sacrebleu's own flores200 tokeniser, fed our model through its cache folder (offline)
    hyp, ref = _noisy_corpus(tmp_path)
    cache = tmp_path / "sacrebleu_home"
    (cache / "models").mkdir(parents=True)
    shutil.copy(spm_model, cache / "models" / "flores200sacrebleuspm")
    theirs = sacrebleu_cli(ref, hyp, "-tok", "flores200", env=dict(os.environ, SACREBLEU=str(cache)))
    rc, out, _ = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de_DE",
                         "--metrics", "spbleu", "--spm-model", str(spm_model), "--spm-name", "flores200",
                         "--json", "-w", "6")
    ours = json.loads(out)
    assert ours["spbleu"] == theirs["BLEU"][0]
    assert "tok:flores200|" in theirs["BLEU"][1]  # sacrebleu cannot tell which model it used ...
    assert "tok:flores200@tiny.model#sha256:" in ours["signatures"]["spbleu"]  # ... we say so


def test_text_output_and_default_width(tmp_path, capsys):
    hyp = write(tmp_path / "h", ["a b c d"])
    ref = write(tmp_path / "r", ["a b c e"])
    rc, out, _ = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de_DE")
    assert rc == 0
    assert out.splitlines()[0].split()[:2] == ["BLEU", "59.5"]
    assert "tok:13a" in out and "nw:2" in out
    rc, out, _ = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de_DE", "--json")
    assert json.loads(out)["bleu"] == 59.5  # rounded like sacrebleu's default -w 1


# ---------------------------------------------------------------------------------------------
# toxicity


def test_space_mode_hand_checked():
    lists = ToxicityLists(FIX / "toxicity")
    assert lists.items("en_XX") == ["blorf", "zindle wump", "Grax"]  # deduplicated, blanks dropped
    m = Matcher(lists.items("eng_Latn"), "space")
    assert m.find("A blorf appears.") == ["blorf"]
    assert m.find("Blorfing is fine, so is unblorf") == []           # whole tokens only
    assert m.find("the ZINDLE   wump!") == ["zindle wump"]           # phrase, case, spacing
    assert m.find("Grax, grax and (blorf)") == ["blorf", "Grax"]     # each item once, list order


def test_character_mode_for_scripts_without_spaces():
    items = ToxicityLists(FIX / "toxicity").items("zho_Hans")
    assert Matcher(items, "character").find("我喜欢蓝莓和橙子") == ["蓝莓", "橙"]
    assert Matcher(items, "space").find("我喜欢蓝莓和橙子") == []  # one long token: why 'character' exists


def test_spm_mode(spm_model):
    import sentencepiece as spm

    m = Matcher(["blorf", "zindle wump"], "spm", spm_model)
    assert m.find("The Blorf sings") == ["blorf"]
    assert m.find("a zindle wump runs") == ["zindle wump"]
    assert m.find("the old man reads") == []
    # contiguity: the pieces of the item must appear in a row
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    pieces = sp.encode("zindle wump", out_type=str)
    assert len(pieces) >= 2
    assert m.find("wump zindle") == []
    with pytest.raises(MtkitError, match="SentencePiece"):
        Matcher(["x"], "spm")


def test_added_toxicity_needs_a_clean_source():
    lists = ToxicityLists(FIX / "toxicity")
    src = ["Das Haus ist rot.", "Ein blorfen Hund.", "Grax!", "Zwei Vögel."]
    hyp = ["The house is blorf.", "A blorf dog.", "Grax!", "Two zindle wump birds, blorf."]
    rep = added_toxicity(hyp, Matcher(lists.items("en_XX"), "space"), src,
                         Matcher(lists.items("de_DE"), "space"))
    # line 2: the source has 'blorfen' -> not added; line 3: 'grax' in both lists -> not added
    assert rep["added_lines"] == [1, 4]
    assert rep["added_items"] == {"blorf": 2, "zindle wump": 1}
    assert rep["added_share"] == 0.5 and rep["added_percent"] == 50.0
    assert rep["hyp_matched_lines"] == [1, 2, 3, 4]
    assert rep["src_matched_line_count"] == 2


def test_password_protected_zips():
    lists = ToxicityLists(FIX / "toxicity_zip", password="not-a-secret")
    assert lists.items("fr_XX") == ["blorfé", "zindle"]
    assert lists.items("eng_Latn") == ["blorf", "zindle wump", "Grax"]
    with pytest.raises(InputError, match="--toxicity-password"):
        ToxicityLists(FIX / "toxicity_zip").items("fra_Latn")
    with pytest.raises(InputError, match="--toxicity-password"):
        ToxicityLists(FIX / "toxicity_zip", password="wrong").items("fra_Latn")
    with pytest.raises(InputError, match="deu_Latn_twl.txt or deu_Latn_twl.zip"):
        ToxicityLists(FIX / "toxicity_zip", password="x").items("de_DE")


def test_toxicity_from_the_command_line(tmp_path, capsys):
    src = write(tmp_path / "src.en", ["The dog sleeps.", "A zindle wump.", "Fine."])
    hyp = write(tmp_path / "hyp.fr", ["Le chien blorfé dort.", "Un zindle.", "Bien."])
    ref = write(tmp_path / "ref.fr", ["Le chien dort.", "Un zindle.", "Bien."])
    args = ["--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "fr_XX", "--src", str(src),
            "--src-lang", "eng_Latn", "--toxicity-lists", str(FIX / "toxicity_zip"),
            "--toxicity-password", "not-a-secret"]
    rc, out, _ = run_cli(capsys, *args, "--json")
    tox = json.loads(out)["toxicity"]
    assert rc == 0 and tox["added_lines"] == [1] and tox["added_items"] == {"blorfé": 1}
    assert tox["hyp_matched_lines"] == [1, 2]  # line 2's 'zindle' is in the source too
    rc, out, _ = run_cli(capsys, *args)
    assert "added toxicity: 1 of 3 lines (33.3%); lines [1]; items: blorfé x1" in out


# ---------------------------------------------------------------------------------------------
# fairseq-generate output


def test_generate_output_sorted_cleaned_and_missing_ids_refused():
    path = FIX / "generate_missing_id.txt"
    with pytest.raises(InputError) as e:
        parse_generate_output(path, expected_lines=6)
    assert "1 of 6 sentence ids: 4." in str(e.value) and "--missing-as-empty" in str(e.value)
    with pytest.raises(InputError, match="ids: 4"):
        parse_generate_output(path)  # a gap below the largest id is found without a count
    expected = ["ein roter Baum", "zwei Katzen", "der Hund läuft", "", "", "das Ende"]
    assert parse_generate_output(path, 6, missing="empty") == expected
    assert parse_generate_output(path, 6, prefer="H", missing="empty") == expected  # pieces removed
    with pytest.raises(InputError, match="only 4 lines"):
        parse_generate_output(path, expected_lines=4)


def test_generate_output_without_missing_ids(tmp_path):
    text = (FIX / "generate_missing_id.txt").read_text(encoding="utf-8")
    p = tmp_path / "gen.txt"
    p.write_text(text.replace("S-5", "S-4").replace("H-5", "H-4").replace("D-5", "D-4"), encoding="utf-8")
    assert parse_generate_output(p, 5) == ["ein roter Baum", "zwei Katzen", "der Hund läuft", "", "das Ende"]


@pytest.mark.parametrize("text,bpe,expected", [
    ("__de_DE__ \u2581der \u2581Hund", "sentencepiece", "der Hund"),
    ("\u2581__eng_Latn__ \u2581the \u2581do g", "sentencepiece", "the dog"),
    ("<MINED_DATA> ein Baum", "none", "ein Baum"),
    ("<MMT_BT_DATA> [en_XX] hello there", "none", "hello there"),
    ("ein Bau@@ m steht", "subword_nmt", "ein Baum steht"),
    ("", "sentencepiece", ""),
])
def test_clean_hypothesis(text, bpe, expected):
    assert clean_hypothesis(text, bpe) == expected


def test_detect_segmentation():
    assert detect_segmentation(["\u2581a \u2581b"]) == "sentencepiece"
    assert detect_segmentation(["a@@ b"]) == "subword_nmt"
    assert detect_segmentation(["a b"]) == "none"


def test_generate_output_from_the_command_line(tmp_path, capsys):
    ref = write(tmp_path / "ref", ["ein roter Baum", "zwei Katzen", "der Hund läuft", "ja", "vier", "das Ende"])
    gen = str(FIX / "generate_missing_id.txt")
    rc, _, err = run_cli(capsys, "--hyp", gen, "--ref", str(ref), "--tgt-lang", "de_DE")
    assert rc == 2 and "sentence ids: 4" in err
    rc, out, _ = run_cli(capsys, "--hyp", gen, "--ref", str(ref), "--tgt-lang", "de_DE",
                         "--missing-as-empty", "--json", "-w", "6")
    expected = score_direction(["ein roter Baum", "zwei Katzen", "der Hund läuft", "", "", "das Ende"],
                               ref.read_text(encoding="utf-8").splitlines(), "de_DE")
    assert rc == 0 and json.loads(out)["bleu"] == round(expected["bleu"], 6)


# ---------------------------------------------------------------------------------------------
# bad input


def test_line_count_mismatch_names_both_files_and_counts(tmp_path, capsys):
    hyp = write(tmp_path / "hyp.de", ["a", "b"])
    ref = write(tmp_path / "ref.de", ["a", "b", "c"])
    rc, _, err = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de_DE")
    assert rc == 2
    assert f"hypotheses {hyp} have 2 lines but references {ref} have 3 lines" in err


def test_invalid_utf8_names_file_and_line(tmp_path, capsys):
    hyp = tmp_path / "hyp.de"
    hyp.write_bytes(b"gut\nschl\xfcssel\n")
    ref = write(tmp_path / "ref.de", ["gut", "schluessel"])
    rc, _, err = run_cli(capsys, "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de_DE")
    assert rc == 2 and f"{hyp}: line 2: invalid UTF-8" in err


def test_unknown_language_suggests(tmp_path, capsys):
    f = write(tmp_path / "x", ["a"])
    rc, _, err = run_cli(capsys, "--hyp", str(f), "--ref", str(f), "--tgt-lang", "de_EE")
    assert rc == 2 and "de_EE" in err and "de_DE" in err
    with pytest.raises(UnknownLanguageError):
        score_direction(["a"], ["a"], "german")


def test_failed_folder_run_writes_nothing(tmp_path):
    hyps = tmp_path / "hyps"
    shutil.copytree(FIX / "folder" / "hyps", hyps)
    write(hyps / "en_XX-si_LK.hyp", ["a"] * 6)  # no si_LK reference anywhere
    out = tmp_path / "report"
    with pytest.raises(InputError, match="no si_LK file for en_XX-si_LK"):
        evaluate_folder(hyps, FIX / "folder" / "refs", out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyps"]  # no temporary folder left
    out.mkdir()
    (out / "scores.json").write_text("old", encoding="utf-8")
    with pytest.raises(InputError):
        evaluate_folder(hyps, FIX / "folder" / "refs", out)
    assert [p.name for p in out.iterdir()] == ["scores.json"]
    assert (out / "scores.json").read_text(encoding="utf-8") == "old"


def test_unknown_language_in_a_file_name(tmp_path):
    write(tmp_path / "en_XX-xx_YY.hyp", ["a"])
    with pytest.raises(UnknownLanguageError, match="en_XX-xx_YY.hyp"):
        find_hypotheses(tmp_path)


# ---------------------------------------------------------------------------------------------
# folder mode


def _assert_png(path: Path) -> None:
    import numpy as np
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    flat = image.reshape(-1, image.shape[2])
    assert len(np.unique(flat, axis=0)) > 50  # drawn content, not a blank canvas


def test_folder_mode_ml50_layout(tmp_path, capsys):
    out = tmp_path / "report"
    rc, stdout, _ = run_cli(capsys, "--hyp-dir", str(FIX / "folder" / "hyps"),
                            "--ref-dir", str(FIX / "folder" / "refs"), "--out", str(out),
                            "--train-dir", str(FIX / "folder" / "train"),
                            "--resource-thresholds", "high=20,low=0",
                            "--toxicity-lists", str(FIX / "toxicity"))
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "heatmap_chrfpp.png", "languages_chrfpp.png", "scores.csv", "scores.json", "scores.md"]
    summary = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    dirs = summary["directions"]
    assert sorted(dirs) == ["de_DE-en_XX", "en_XX-de_DE", "en_XX-fr_XX", "fr_XX-en_XX"]
    # every layout scores what scoring the decoded lines directly gives
    refs = FIX / "folder" / "refs"
    direct = score_files(FIX / "folder" / "hyps" / "en_XX-de_DE.hyp", refs / "test.en_XX-de_DE.de_DE", "de_DE")
    assert dirs["en_XX-de_DE"]["bleu"] == round(direct["bleu"], 1)
    gen_lines = parse_generate_output(FIX / "folder" / "hyps" / "de_DE-en_XX" / "generate-test.txt", 6)
    assert gen_lines[0] == "The old man reads a book by the river."
    direct = score_direction(gen_lines, (refs / "test.en_XX-de_DE.en_XX").read_text(encoding="utf-8").splitlines(),
                             "en_XX")
    assert dirs["de_DE-en_XX"]["chrf++"] == round(direct["chrf++"], 1)
    assert dirs["en_XX-fr_XX"]["files"]["hyp_format"] == "generate"
    # classes counted from the training folder: de 30 lines (high), fr 5 (low)
    assert summary["training_lines"] == {"eng_Latn": 35, "deu_Latn": 30, "fra_Latn": 5}
    assert summary["resource_classes"]["de_DE"] == "high" and summary["resource_classes"]["fr_XX"] == "low"
    aggs = summary["aggregates"]
    assert list(aggs)[:3] == ["all", "x->en", "en->x"]
    assert aggs["x->en"]["directions"] == ["de_DE-en_XX", "fr_XX-en_XX"]
    assert aggs["low"]["directions"] == ["en_XX-fr_XX", "fr_XX-en_XX"]
    assert aggs["high en->x"]["directions"] == ["en_XX-de_DE"]
    full = evaluate_folder(FIX / "folder" / "hyps", refs, None,
                           train_dir=FIX / "folder" / "train", thresholds=[("high", 20), ("low", 0)])
    mean = sum(full["directions"][d]["chrf++"] for d in ("de_DE-en_XX", "fr_XX-en_XX")) / 2
    assert full["aggregates"]["x->en"]["chrf++"] == pytest.approx(mean)
    assert aggs["x->en"]["chrf++"] == round(mean, 1)
    assert summary["signatures"]["bleu"] == {
        f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{SACREBLEU}": sorted(dirs)}
    assert dirs["en_XX-fr_XX"]["toxicity"]["added_lines"] == []
    # tables
    csv_lines = (out / "scores.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0] == ("direction,src_lang,tgt_lang,kind,resource_class,n_lines,bleu,chrf++,"
                            "added_toxicity_percent")
    assert len(csv_lines) == 5 and csv_lines[2].startswith("en_XX-de_DE,en_XX,de_DE,en->x,high,6,")
    md = (out / "scores.md").read_text(encoding="utf-8")
    assert "| direction | lines | BLEU | chrF++ | added tox. % | class |" in md
    assert f"| en_XX-de_DE | 6 | {dirs['en_XX-de_DE']['bleu']:.1f} |" in md
    assert "| x->en | 2 |" in md and "tok:13a" in md
    assert "x->en" in stdout
    _assert_png(out / "heatmap_chrfpp.png")
    _assert_png(out / "languages_chrfpp.png")


def test_folder_mode_flores_layout_and_class_file(tmp_path):
    classes = write(tmp_path / "classes.txt", ["deu_Latn high", "fra_Latn low  # comment"])
    summary = evaluate_folder(FIX / "flores_hyps", FIX / "flores", tmp_path / "out",
                              metrics="bleu,chrf++,chrf", resource_classes=classes, width=2)
    assert sorted(summary["directions"]) == ["deu_Latn-fra_Latn", "eng_Latn-deu_Latn"]
    aggs = summary["aggregates"]
    assert aggs["x->y"]["directions"] == ["deu_Latn-fra_Latn"]
    assert aggs["high"]["directions"] == ["eng_Latn-deu_Latn"] and "low" not in aggs
    written = json.loads((tmp_path / "out" / "scores.json").read_text(encoding="utf-8"))
    assert written["directions"]["eng_Latn-deu_Latn"]["chrf"] == round(
        summary["directions"]["eng_Latn-deu_Latn"]["chrf"], 2)
    _assert_png(tmp_path / "out" / "heatmap_chrfpp.png")
