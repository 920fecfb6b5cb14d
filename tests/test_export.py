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


def test_ct2_ranking_ct2_is_ctranslate2s_own_top1(tiny_model, ct2_dir):
    """--ct2-ranking ct2: no re-ranking pass, so the output is CTranslate2's own best hypothesis for the
    same pieces and language tokens; the default re-ranks and must still give fairseq's top-1 above."""
    import ctranslate2
    import sentencepiece as spm

    lines = _lines(tiny_model, "en_XX-de_DE", "en_XX")
    t = Translator.from_folder(ct2_dir, "en_XX", "de_DE", engine="ct2", options=Options(beam=5, ranking="ct2"))
    sp = spm.SentencePieceProcessor(model_file=str(tiny_model.root / "spm.model"))
    pieces = [["__en_XX__"] + sp.encode(x, out_type=str) for x in lines]
    direct = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1).translate_batch(
        pieces, target_prefix=[["__de_DE__"]] * len(lines), beam_size=5, max_batch_size=32,
        max_decoding_length=201, min_decoding_length=0)
    expected = [sp.decode(r.hypotheses[0][1:]) for r in direct]
    assert t.translate_lines(lines) == expected
    assert t.settings()["options"]["ranking"] == "ct2"  # a resumed run with the other ranking is refused


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


@pytest.fixture(scope="module")
def hf_export(tiny_model, tmp_path_factory):
    from mtkit.export import hf as hfx
    from mtkit.model_folder import build_model, find_files

    files = find_files(tiny_model.root)
    lm = build_model(files)
    out = hfx.export_hf(files, tmp_path_factory.mktemp("hf") / "hf", loaded=lm)
    return files, lm, out


def test_hf_logits_match_fairseq(tiny_model, hf_export):
    import torch
    import transformers

    from mtkit.export import hf as hfx

    files, lm, out = hf_export
    assert {"config.json", "model.safetensors", "sentencepiece.bpe.model", "vocab.json"} <= {
        p.name for p in out.iterdir()}
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


# What a user does with the exported folder, in a fresh interpreter of the project's venv that
# imports neither mtkit nor fairseq: plain transformers, the folder's SentencePiece model and
# vocab.json, and the language tokens that mtkit_hf.json names (source token first, target token
# forced after the decoder's start token).
HF_USER_SCRIPT = r"""
import json, sys
from pathlib import Path
import sentencepiece as spm
import torch
import transformers

folder, src_lang, tgt_lang, beam = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
meta = json.loads((folder / "mtkit_hf.json").read_text())
vocab = json.loads((folder / "vocab.json").read_text())
pieces_of = {i: p for p, i in vocab.items()}
sp = spm.SentencePieceProcessor(model_file=str(folder / meta["spm"]))
model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
cfg = model.config
langtok = meta["lang_token_ids"]
special = {cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id, *langtok.values()}
out = []
for line in sys.stdin.read().split("\n")[:-1]:
    ids = [langtok[src_lang]] + [vocab.get(p, vocab["<unk>"]) for p in sp.encode(line, out_type=str)]
    ids.append(cfg.eos_token_id)
    with torch.no_grad():
        gen = model.generate(torch.tensor([ids]), num_beams=beam, forced_bos_token_id=langtok[tgt_lang],
                             max_length=cfg.max_position_embeddings, length_penalty=1.0, early_stopping=True,
                             do_sample=False)
    out.append(sp.decode_pieces([pieces_of[i] for i in gen[0].tolist() if i not in special]))
print(json.dumps({"transformers": transformers.__version__, "lines": out,
                  "mtkit_or_fairseq_imported": any(m in sys.modules for m in ("mtkit", "fairseq"))}))
"""


def _beam_scores(folder: Path, src_lang: str, tgt_lang: str, source: str, hyp: str) -> tuple[float, float]:
    """A finished hypothesis's score as fairseq's beam search and as transformers' compute it.

    Both divide the summed log-probabilities by the same length (target-language token, pieces,
    </s>; length penalty 1). fairseq's sum includes the log-probability the model gives the
    target-language token it is forced to emit; transformers' ForcedBOSTokenLogitsProcessor sets
    that token's score to 0, so its sum leaves it out."""
    import json

    import sentencepiece as spm
    import torch
    import transformers

    meta = json.loads((folder / "mtkit_hf.json").read_text())
    vocab = json.loads((folder / "vocab.json").read_text())
    sp = spm.SentencePieceProcessor(model_file=str(folder / meta["spm"]))
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    eos, langtok = model.config.eos_token_id, meta["lang_token_ids"]
    src = [langtok[src_lang]] + [vocab[p] for p in sp.encode(source, out_type=str)] + [eos]
    tgt = [langtok[tgt_lang]] + [vocab[p] for p in sp.encode(hyp, out_type=str)] + [eos]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([[eos] + tgt[:-1]])).logits[0]
    lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(tgt)[:, None])[:, 0].tolist()
    return sum(lp) / len(tgt), sum(lp[1:]) / len(tgt)


@pytest.mark.parametrize("src,tgt,pair", [("en_XX", "de_DE", "en_XX-de_DE"), ("fr_XX", "en_XX", "en_XX-fr_XX")])
def test_hf_folder_with_plain_transformers_translates_like_mtkit(tiny_model, hf_export, src, tgt, pair):
    """Beam search (5) in transformers on the exported folder vs `mtkit translate` on the model folder.

    Lines may differ only where the two beam searches' scoring conventions disagree (see
    :func:`_beam_scores`): fairseq's score must prefer mtkit's output and transformers' score
    the output of transformers. Any other difference fails."""
    import json

    _, _, out = hf_export
    sources = _lines(tiny_model, pair, src)
    text = "\n".join(sources) + "\n"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)  # a user's interpreter: nothing from this checkout on the path
    hf = subprocess.run([sys.executable, "-c", HF_USER_SCRIPT, str(out), src, tgt, "5"], input=text,
                        capture_output=True, text=True, env=env, cwd=out)
    assert hf.returncode == 0, hf.stderr[-3000:]
    res = json.loads(hf.stdout.strip().splitlines()[-1])
    assert not res["mtkit_or_fairseq_imported"]
    mt = subprocess.run([str(BIN / "mtkit"), "translate", "-m", str(tiny_model.root), "--src-lang", src,
                         "--tgt-lang", tgt, "--beam", "5", "--no-progress"], input=text, capture_output=True,
                        text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert mt.returncode == 0, mt.stderr[-3000:]
    ours = mt.stdout.split("\n")[:-1]
    theirs = res["lines"]
    assert len(ours) == len(theirs) == len(sources)
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"transformers {res['transformers']} beam 5 vs mtkit translate {src}-{tgt}: {same}/{len(ours)} identical")
    assert same >= 0.9 * len(ours)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            fs_ours, hf_ours = _beam_scores(out, src, tgt, sources[i], a)
            fs_theirs, hf_theirs = _beam_scores(out, src, tgt, sources[i], b)
            print(f"  line {i}: mtkit {a!r} (fairseq score {fs_ours:.4f}, transformers score {hf_ours:.4f}) vs "
                  f"transformers {b!r} ({fs_theirs:.4f}, {hf_theirs:.4f})")
            assert fs_ours >= fs_theirs and hf_theirs >= hf_ours, (i, a, b)


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
