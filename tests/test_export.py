"""mtkit export ct2 / hf on the session's tiny model: agreement with fairseq, logits, refusals, safety."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import malicious_model_folder

from mtkit.translate import Options, Translator

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ct2_dir(tiny_model, tmp_path_factory):
    from mtkit.export.ct2 import export_ct2
    from mtkit.model_folder import find_files

    out = tmp_path_factory.mktemp("ct2") / "float32"
    export_ct2(find_files(tiny_model.root), out, quantization="float32")
    return out


def _lines(tiny_model, pair: str, side: str, n: int = 40) -> list[str]:
    return (tiny_model.raw / f"test.{pair}.{side}").read_text(encoding="utf-8").splitlines()[:n]


@pytest.mark.parametrize("src,tgt,pair", [("en_XX", "de_DE", "en_XX-de_DE"), ("fr_XX", "en_XX", "en_XX-fr_XX")])
def test_ct2_agrees_with_fairseq_beam(tiny_model, ct2_dir, src, tgt, pair):
    lines = _lines(tiny_model, pair, src) + [""]
    opts = Options(beam=5)
    fs = Translator.from_folder(tiny_model.root, src, tgt, options=opts).translate_lines(lines)
    ct = Translator.from_folder(ct2_dir, src, tgt, engine="ct2", options=opts).translate_lines(lines)
    assert len(ct) == len(lines) and ct[-1] == ""
    agree = sum(a == b for a, b in zip(fs, ct)) / len(lines)
    print(f"ct2 float32 top-1 agreement {src}-{tgt} beam 5: {agree:.3f}")
    assert agree >= 0.97, list(zip(fs, ct))[:5]


def test_ct2_workers_keep_output_and_order(tiny_model, ct2_dir):
    """Two CTranslate2 workers, small batches and several chunks: the same lines in the same order."""
    lines = _lines(tiny_model, "en_XX-de_DE", "en_XX", 40)
    lines = lines[::2] + ["", lines[0]] + lines[1::2]
    one = Translator.from_folder(ct2_dir, "en_XX", "de_DE", engine="ct2", options=Options(beam=5))
    two = Translator.from_folder(ct2_dir, "en_XX", "de_DE", engine="ct2", threads=2,
                                 options=Options(beam=5, max_sentences=2))
    assert two.engine.chunk_lines(two.options) == 32 < len(lines)
    a, b = one.translate_lines(lines), two.translate_lines(lines)
    assert a == b and len(b) == len(lines) == 42 and b[20] == "" and b[21] == b[0]


def test_ct2_export_layout(ct2_dir):
    import json

    meta = json.loads((ct2_dir / "mtkit_ct2.json").read_text())
    assert meta["lang_info"]["langs"] == ["en_XX", "de_DE", "fr_XX"]
    vocab = json.loads((ct2_dir / "shared_vocabulary.json").read_text())
    assert "__de_DE__" in vocab and vocab[1] == "<blank>"


def test_hf_logits_match_fairseq(tiny_model, tmp_path):
    import torch

    from mtkit.export import hf as hfx
    from mtkit.model_folder import build_model, find_files

    files = find_files(tiny_model.root)
    lm = build_model(files)
    out = hfx.export_hf(files, tmp_path / "hf", loaded=lm)
    assert {"config.json", "model.safetensors", "sentencepiece.bpe.model", "vocab.json"} <= {
        p.name for p in out.iterdir()}
    import transformers

    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(out)).eval()
    assert type(hf).__name__ == "MBartForConditionalGeneration"
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(files.spm))
    d = lm.dictionary
    text = _lines(tiny_model, "en_XX-de_DE", "en_XX", 1)[0]
    src = [d.index("__en_XX__")] + [d.index(p) for p in sp.encode(text, out_type=str)] + [d.eos()]
    tgt = _lines(tiny_model, "en_XX-de_DE", "de_DE", 1)[0]
    prev = [d.eos(), d.index("__de_DE__")] + [d.index(p) for p in sp.encode(tgt, out_type=str)]
    s, p = torch.tensor([src]), torch.tensor([prev])
    with torch.no_grad():
        fs = lm.model(s, torch.tensor([len(src)]), p)[0]
        ho = hf(input_ids=s, attention_mask=torch.ones_like(s), decoder_input_ids=p).logits
    diff = float((fs - ho).abs().max())
    print(f"HF vs fairseq max |logit diff| = {diff:.2e}")
    assert diff < 1e-4
    assert hfx.compare_logits(lm, out, *hfx.sample_ids(lm)) < 1e-4


def test_hf_refuses_unmappable():
    from mtkit.export.hf import UnmappableModelError, check_mappable

    base = dict(encoder_normalize_before=True, decoder_normalize_before=True, share_all_embeddings=True,
                encoder_embed_dim=64, decoder_embed_dim=64, activation_fn="relu", max_source_positions=64,
                max_target_positions=64, encoder_learned_pos=True, decoder_learned_pos=True,
                layernorm_embedding=True)
    assert check_mappable(argparse.Namespace(**base), {}) == "mbart"
    assert check_mappable(argparse.Namespace(**dict(base, encoder_learned_pos=False, decoder_learned_pos=False,
                                                    layernorm_embedding=False)), {}) == "m2m100"
    for change, why in [(dict(encoder_normalize_before=False, decoder_normalize_before=False), "post-norm"),
                        (dict(share_all_embeddings=False), "not shared"),
                        (dict(layernorm_embedding=False), "layernorm_embedding")]:
        with pytest.raises(UnmappableModelError, match=why):
            check_mappable(argparse.Namespace(**dict(base, **change)), {})


def test_exports_refuse_malicious_checkpoint(tiny_model, tmp_path):
    marker = tmp_path / "pwned"
    folder = malicious_model_folder(tiny_model, tmp_path / "evil", marker)
    for kind in ("ct2", "hf"):
        res = subprocess.run([str(BIN / "mtkit"), "export", kind, "-m", str(folder), "--out", str(tmp_path / kind)],
                             capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert res.returncode == 2, res.stderr
        assert "refusing to load checkpoint" in res.stderr
        assert not marker.exists()
        assert not (tmp_path / kind).exists()
