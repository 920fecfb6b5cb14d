"""mtkit data binarize: SPM train/apply + fairseq-preprocess into one joined dictionary (+ mono layout)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.binarize import binarize, ordered_langs
from data_prep.corpora import gettext as gt
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


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) -> its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _fairseq_preprocess(args: list[str]) -> None:
    subprocess.run([str(Path(sys.executable).parent / "fairseq-preprocess"), *args], check=True, capture_output=True)


@pytest.mark.slow
def test_databin_is_byte_identical_to_fairseq_preprocess(raw, tmp_path):
    """The direct writer against fairseq-preprocess itself, on the same pieces: parallel, --dict, mono."""
    import sentencepiece as spm

    out = tmp_path / "b"
    binarize(raw, out, spm_vocab_size=150, mono=True, spm_input_sentences=5000, workers=2)
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    # a dictionary that lacks some pieces (they become <unk>) and has an extra word: the --dict path
    rows = (out / "databin" / "dict.txt").read_text(encoding="utf-8").splitlines()
    small = tmp_path / "small_dict.txt"
    small.write_text("\n".join(["extra 5"] + rows[::2]) + "\n", encoding="utf-8")
    out2 = tmp_path / "b2"
    binarize(raw, out2, spm_model=str(out / "spm.model"), fairseq_dict=str(small))
    for built, dict_path in ((out, out / "databin" / "dict.txt"), (out2, small)):
        text, ref = tmp_path / f"text_{built.name}", tmp_path / f"ref_{built.name}"
        text.mkdir()
        for src, tgt in (("en_XX", "fr_XX"), ("en_XX", "si_LK")):
            splits = []
            for split in ("train", "valid", "test"):
                a, b = (raw / f"{split}.{src}-{tgt}.{x}" for x in (src, tgt))
                pairs = [(sp.encode(x, out_type=str), sp.encode(y, out_type=str)) for x, y in
                         zip(a.read_text(encoding="utf-8").splitlines(), b.read_text(encoding="utf-8").splitlines())]
                if split == "train":  # binarize drops empty training pairs
                    pairs = [(x, y) for x, y in pairs if x and y]
                for side, lang in ((0, src), (1, tgt)):
                    (text / f"{split}.{lang}").write_text("".join(" ".join(p[side]) + "\n" for p in pairs),
                                                           encoding="utf-8")
                splits += [f"--{split}pref", str(text / split)]
            _fairseq_preprocess(["--source-lang", src, "--target-lang", tgt, "--srcdict", str(dict_path),
                                 "--joined-dictionary", "--destdir", str(ref / f"{src}-{tgt}"), "--workers", "2",
                                 *splits])
            for p in sorted((ref / f"{src}-{tgt}").glob("*.[bi][in][nx]")):
                assert (built / "databin" / p.name).read_bytes() == p.read_bytes(), (built.name, p.name)
    # mono: fairseq-preprocess --only-source on the deduplicated lines of one language
    lines, seen = [], set()
    for p in sorted(raw.glob("train.*.si_LK")):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip() and line.strip() not in seen:
                seen.add(line.strip())
                lines.append(" ".join(sp.encode(line, out_type=str)))
    (tmp_path / "mono.si_LK").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    _fairseq_preprocess(["--source-lang", "si_LK", "--only-source", "--srcdict", str(out / "databin" / "dict.txt"),
                         "--trainpref", str(tmp_path / "mono"), "--destdir", str(tmp_path / "mono_ref")])
    for ext in ("bin", "idx"):
        assert ((out / "databin_mono" / "si_LK" / f"train.{ext}").read_bytes()
                == (tmp_path / "mono_ref" / f"train.si_LK-None.si_LK.{ext}").read_bytes())


# --- reproducible builds (issue 18) -------------------------------------------------------------


def test_two_clean_builds_are_byte_identical(raw, tmp_path):
    """spm.model included: SentencePiece is trained from an iterator, so no temp path enters the model."""
    for name in ("a", "b"):
        binarize(raw, tmp_path / name, spm_vocab_size=150, spm_input_sentences=5000, mono=True, workers=2)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b and "spm.model" in a and "databin/train.en_XX-fr_XX.fr_XX.bin" in a
    assert str(tmp_path).encode() not in a["spm.model"]


def test_line_count_mismatch_is_refused_before_training(raw, tmp_path):
    bad = tmp_path / "raw"
    shutil.copytree(raw, bad)
    with open(bad / "valid.en_XX-fr_XX.fr_XX", "a", encoding="utf-8") as f:
        f.write("one line too many\n")
    (bad / "test.en_XX-si_LK.si_LK").unlink()
    with pytest.raises(InputError) as e:
        binarize(bad, tmp_path / "out", spm_vocab_size=150)
    assert "valid.en_XX-fr_XX.en_XX has" in str(e.value) and "test.en_XX-si_LK.en_XX: the other side" in str(e.value)
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


KILL_DRIVER = """
import os, signal, sys
from data_prep import binarize as b
from data_prep.steps import databin, spm
where = sys.argv[3]
if where == "spm":  # after the training sample is written, inside the .spmtrain temp folder
    orig_sample = spm.write_sample
    def write_sample(*args, **kw):
        out = orig_sample(*args, **kw)
        os.kill(os.getpid(), signal.SIGKILL)
    spm.write_sample = write_sample
else:  # when the first binarised file is complete but not yet renamed into place
    def close(self):
        os.kill(os.getpid(), signal.SIGKILL)
    databin.IndexedWriter.close = close
b.binarize(sys.argv[1], sys.argv[2], spm_vocab_size=150, spm_input_sentences=5000, mono=True)
"""


@pytest.mark.parametrize("where", ["spm", "encode"])
def test_rerun_after_kill_removes_temp_files_and_matches_a_clean_build(raw, tmp_path, where):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    out = tmp_path / "killed"
    p = subprocess.run([sys.executable, "-c", KILL_DRIVER, str(raw), str(out), where], env=env)
    assert p.returncode == -signal.SIGKILL
    left = [q.name for q in out.rglob(".*") if q.name.endswith(".tmp")]
    assert left, "the kill should leave the dead run's temporary files"
    if where == "spm":
        assert any(n.startswith(".spmtrain.") for n in left)
    binarize(raw, out, spm_vocab_size=150, spm_input_sentences=5000, mono=True)
    assert not [q for q in out.rglob("*") if q.name.endswith(".tmp")]
    binarize(raw, tmp_path / "clean", spm_vocab_size=150, spm_input_sentences=5000, mono=True)
    assert tree(out) == tree(tmp_path / "clean")
