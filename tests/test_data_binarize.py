"""mtkit data binarize: SPM train/apply + fairseq-preprocess into one joined dictionary (+ mono layout)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from data_prep import gettext as gt
from data_prep.binarize import binarize, ordered_langs
from mtkit.cli import main
from mtkit.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "data" / "gettext"
CATALOGS = [str(FIX / "locale"), str(FIX / "podomain")]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gt")
    gt.build(out, catalogs=CATALOGS, valid_size=3, test_size=3, flores_size=3)
    return out / "raw"


def test_lang_order_is_ml50(tmp_path):
    assert ordered_langs({"si_LK", "en_XX", "fr_XX", "pt_XX"}) == ["en_XX", "fr_XX", "si_LK", "pt_XX"]
    f = tmp_path / "langs.txt"
    f.write_text("fr_XX\nen_XX\n")
    with pytest.raises(InputError, match="si_LK"):
        ordered_langs({"si_LK", "en_XX"}, str(f))


def test_needs_exactly_one_spm_option(raw, tmp_path):
    with pytest.raises(InputError, match="exactly one"):
        binarize(raw, tmp_path / "b")


@pytest.mark.slow
def test_binarize_train_apply_mono_and_rerun(raw, tmp_path):
    import sentencepiece as spm
    from fairseq.data import Dictionary, data_utils

    out = tmp_path / "b"
    m = binarize(raw, out, spm_vocab_size=150, max_pieces=12, mono=True, spm_input_sentences=5000)
    db = out / "databin"
    langs = ["de_DE", "en_XX", "fr_XX", "si_LK", "pt_XX"]
    assert (db / "langs.txt").read_text().split() == langs == m["langs"]
    dicts = {(db / f"dict.{x}.txt").read_bytes() for x in langs}
    assert dicts == {(db / "dict.txt").read_bytes()} == {(out / "databin_mono" / "dict.txt").read_bytes()}
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    d = Dictionary.load(str(db / "dict.txt"))
    for i in range(3, sp.get_piece_size()):  # fairseq index = SentencePiece id + 1 (mBART layout)
        assert d.index(sp.id_to_piece(i)) == i + 1
    # the binarised lines are the SPM pieces of the kept raw lines, both sides aligned
    c = m["directions"]["en_XX-fr_XX"]["train"]
    assert c["drop_max_pieces"] > 0 and c["kept"] == c["lines"] - c["drop_max_pieces"] - c["drop_empty"]
    src = data_utils.load_indexed_dataset(str(db / "train.en_XX-fr_XX.en_XX"), d, "mmap")
    tgt = data_utils.load_indexed_dataset(str(db / "train.en_XX-fr_XX.fr_XX"), d, "mmap")
    assert len(src) == len(tgt) == c["kept"]
    raw_en = (raw / "train.en_XX-fr_XX.en_XX").read_text(encoding="utf-8").splitlines()
    raw_fr = (raw / "train.en_XX-fr_XX.fr_XX").read_text(encoding="utf-8").splitlines()
    kept = [(a, b) for a, b in zip(raw_en, raw_fr)
            if len(sp.encode(a)) <= 12 and len(sp.encode(b)) <= 12]
    for k, (a, b) in enumerate(kept):
        assert d.string(src[k]) == " ".join(sp.encode(a, out_type=str))
        assert d.string(tgt[k]) == " ".join(sp.encode(b, out_type=str))
    # multilingual_denoising layout: every side of every direction, deduplicated
    mono = out / "databin_mono" / "en_XX"
    en_lines = set()
    for p in raw.glob("train.*.en_XX"):
        en_lines |= set(p.read_text(encoding="utf-8").splitlines())
    assert len(data_utils.load_indexed_dataset(str(mono / "train"), d, "mmap")) == len(en_lines)
    assert (out / "databin_mono" / "si_LK" / "valid.bin").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mono"]["en_XX"]["train"] == len(en_lines)

    # re-run with unchanged inputs: nothing is rebuilt
    stamp = {p: os.stat(p).st_mtime_ns for p in db.glob("*.bin")}
    binarize(raw, out, spm_vocab_size=150, max_pieces=12, spm_input_sentences=5000)
    assert stamp == {p: os.stat(p).st_mtime_ns for p in db.glob("*.bin")}

    # applying the trained model elsewhere gives the same databin
    out2 = tmp_path / "b2"
    assert main(["data", "binarize", "--raw", str(raw), "--out", str(out2), "--spm-model", str(out / "spm.model"),
                 "--max-pieces", "12"]) == 0
    for p in db.glob("*.bin"):
        assert (out2 / "databin" / p.name).read_bytes() == p.read_bytes(), p.name
