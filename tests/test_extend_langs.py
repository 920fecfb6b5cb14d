"""mtkit extend-langs: layout checks, bit-identity of the extended model, fairseq-train continuation.

A tiny mBART (arch mbart_base shrunk to 2+2 layers, d=32) is pretrained here for a few updates of
``multilingual_denoising --add-lang-token`` on the synthetic cipher corpus of mtkit/testing.py.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from mtkit import checkpoint as ckpt_io
from mtkit import extend_langs as el
from mtkit.errors import InputError
from mtkit.plugin import user_dir
from mtkit.testing import BIN, train_spm, write_raw

OLD = ["en_XX", "de_DE", "fr_XX"]
NEW = OLD + ["es_XX", "si_LK"]

MBART_TINY_ARCH = [
    "--arch", "mbart_base", "--encoder-layers", "2", "--decoder-layers", "2",
    "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
    "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
    "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
    "--max-source-positions", "64", "--max-target-positions", "64",
]
DENOISE = ["--mask", "0.35", "--mask-length", "span-poisson", "--poisson-lambda", "3.5",
           "--replace-length", "1", "--permute-sentences", "1", "--rotate", "0", "--mask-random", "0.1",
           "--multilang-sampling-alpha", "0.7", "--add-lang-token", "--tokens-per-sample", "60",
           "--sample-break-mode", "eos"]
COMMON = ["--user-dir", user_dir(), "--cpu", "--seed", "1", "--optimizer", "adam", "--lr", "0.001",
          "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "5", "--max-tokens", "1000", "--num-workers", "0",
          "--log-format", "simple", "--log-interval", "1", "--no-epoch-checkpoints", "--no-progress-bar",
          "--dropout", "0.0", "--disable-validation", "--data-buffer-size", "0"]


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd)
    out = res.stdout + res.stderr
    if res.returncode != 0:
        raise AssertionError(f"command failed ({res.returncode}): {' '.join(map(str, cmd))}\n{out[-4000:]}")
    return out


def build_tiny_mbart(root: Path) -> dict[str, Path]:
    """Raw cipher data for NEW, one SPM, a denoising databin (OLD + NEW langs), a translation databin,
    and a tiny mBART denoised on OLD for 6 updates."""
    ckpt = root / "pretrain" / "checkpoint_last.pt"
    paths = {"root": root, "raw": root / "raw", "mono": root / "mono", "para": root / "para",
             "dict": root / "mono" / "dict.txt", "spm": root / "spm.model", "ckpt": ckpt,
             "old_langs": root / "old_langs.txt"}
    if ckpt.exists():
        return paths
    root.mkdir(parents=True, exist_ok=True)
    write_raw(paths["raw"], NEW, n_train=150, n_valid=10, n_test=10)
    train_spm(paths["raw"], root / "spm", vocab_size=100)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(paths["spm"]))
    enc = root / "enc"
    enc.mkdir(exist_ok=True)
    counts: dict[str, int] = {}
    for p in paths["raw"].iterdir():
        lines = [" ".join(sp.encode(x.strip(), out_type=str)) for x in p.read_text(encoding="utf-8").splitlines()]
        (enc / p.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        if p.name.startswith("train."):
            for line in lines:
                for t in line.split():
                    counts[t] = counts.get(t, 0) + 1
    paths["mono"].mkdir(parents=True, exist_ok=True)
    paths["dict"].write_text("".join(f"{t} {c}\n" for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                             encoding="utf-8")
    for lang in NEW:
        pair = "en_XX-de_DE" if lang == "en_XX" else f"en_XX-{lang}"
        _run([BIN / "fairseq-preprocess", "--only-source", "--source-lang", lang,
              "--trainpref", enc / f"train.{pair}", "--validpref", enc / f"valid.{pair}",
              "--destdir", paths["mono"] / lang, "--srcdict", paths["dict"], "--workers", "1"])
        for split in ("train", "valid"):
            for ext in ("bin", "idx"):
                os.replace(paths["mono"] / lang / f"{split}.{lang}-None.{lang}.{ext}",
                           paths["mono"] / lang / f"{split}.{ext}")
    for lang in NEW[1:]:
        _run([BIN / "fairseq-preprocess", "--source-lang", "en_XX", "--target-lang", lang,
              "--trainpref", enc / f"train.en_XX-{lang}", "--validpref", enc / f"valid.en_XX-{lang}",
              "--testpref", enc / f"test.en_XX-{lang}", "--destdir", paths["para"],
              "--srcdict", paths["dict"], "--tgtdict", paths["dict"], "--workers", "1"])
    paths["old_langs"].write_text("\n".join(OLD) + "\n", encoding="utf-8")
    _run([BIN / "fairseq-train", paths["mono"], "--task", "multilingual_denoising", "--langs", ",".join(OLD),
          *DENOISE, *MBART_TINY_ARCH, *COMMON, "--criterion", "cross_entropy", "--max-update", "6",
          "--save-dir", ckpt.parent])
    return paths


@pytest.fixture(scope="module")
def tiny_mbart(tmp_path_factory) -> dict[str, Path]:
    cache = os.environ.get("MTKIT_TEST_CACHE")
    root = Path(cache) / "tiny_mbart" if cache else tmp_path_factory.mktemp("tiny_mbart")
    return build_tiny_mbart(root)


# ------------------------------------------------------------------------------------------------
# fast unit tests on synthetic state dicts


def _fake_state(n_pieces: int, langs: list[str], mask: bool, dim: int = 8, shared: bool = True) -> dict:
    rows = 4 + n_pieces + len(langs) + int(mask)
    emb = torch.randn(rows, dim)
    dec = emb if shared else torch.randn(rows, dim)
    out = dec if shared else torch.randn(rows, dim)
    return {"model": {"encoder.embed_tokens.weight": emb, "decoder.embed_tokens.weight": dec,
                      "decoder.output_projection.weight": out, "encoder.layers.0.w": torch.randn(rows, dim + 1)},
            "last_optimizer_state": {"state": {0: {"exp_avg": torch.ones(rows, dim), "step": torch.tensor(3.0)}}}}


@pytest.mark.parametrize("shared", [True, False])
def test_rows_inserted_before_mask_old_rows_unchanged(shared):
    symbols = [f"p{i}" for i in range(10)]
    state = _fake_state(10, OLD, mask=True, shared=shared)
    before = {k: v.clone() for k, v in state["model"].items()}
    res = el.extend_state(state, symbols, OLD, NEW, init_from=["si_LK=de_DE"])
    m = state["model"]
    assert res.old_size == 18 and res.new_size == 20
    assert res.index_map == list(range(17)) + [19]  # <mask> moves to the end
    for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight"):
        assert m[k].shape == (20, 8)
        assert torch.equal(m[k][:17], before[k][:17])
        assert torch.equal(m[k][19], before[k][17])  # mask stays last
        assert torch.equal(m[k][18], before[k][4 + 10 + 1])  # si_LK copied from de_DE
    assert (m["encoder.embed_tokens.weight"] is m["decoder.output_projection.weight"]) == shared
    assert m["encoder.layers.0.w"].shape == (18, 9)  # not a vocabulary tensor
    adam = state["last_optimizer_state"]["state"][0]["exp_avg"]
    assert adam.shape == (20, 8) and adam[17:19].abs().sum() == 0 and adam[19].sum() == 8


def test_normal_and_mean_init():
    symbols = [f"p{i}" for i in range(50)]
    state = _fake_state(50, OLD, mask=True, dim=64)
    old = state["model"]["encoder.embed_tokens.weight"].clone()
    el.extend_state(state, symbols, OLD, NEW, init="mean")
    new = state["model"]["encoder.embed_tokens.weight"]
    assert torch.allclose(new[57], old[54:57].mean(0)) and torch.allclose(new[58], new[57])
    state = _fake_state(50, OLD, mask=True, dim=64)
    el.extend_state(state, symbols, OLD, OLD + [f"{c}" for c in ("es_XX", "si_LK", "sw_KE", "gl_ES")] * 1)
    rows = state["model"]["encoder.embed_tokens.weight"][57:61]
    assert 0.06 < rows.std().item() < 0.2  # ~ 64 ** -0.5 = 0.125


def test_languages_beyond_ml50_and_flores_codes():
    assert el.read_langs("en_XX,deu_Latn,ast_ES,ast_Latn") == ["en_XX", "de_DE", "ast_ES", "ast_Latn"]
    with pytest.raises(InputError):
        el.read_langs("english")
    state = _fake_state(10, OLD, mask=True)
    res = el.extend_state(state, [f"p{i}" for i in range(10)], OLD, OLD + ["ast_ES"], init_from=["ast_ES=fr_XX"])
    assert res.added_langs == ["ast_ES"]


def test_layout_errors_name_the_problem():
    symbols = [f"p{i}" for i in range(10)]
    with pytest.raises(InputError, match="NO language tokens"):
        el.infer_layout(15, symbols, OLD)
    with pytest.raises(InputError, match="already contains language"):
        el.infer_layout(18, symbols + ["[en_XX]"], OLD)
    with pytest.raises(InputError, match="shorter"):
        el.infer_layout(30, symbols, OLD)
    with pytest.raises(InputError, match="start with the old one"):
        el.extend_state(_fake_state(10, OLD, True), symbols, OLD, ["de_DE", "en_XX", "fr_XX", "es_XX"])
    with pytest.raises(InputError, match="not among the added"):
        el.extend_state(_fake_state(10, OLD, True), symbols, OLD, NEW, init_from=["de_DE=en_XX"])
    lay = el.infer_layout(17, symbols, OLD, style="multilingual")
    assert not lay.has_mask and lay.size == 17


# ------------------------------------------------------------------------------------------------
# real fairseq models


def _load_in_process(model_file: Path, data: Path, lang_dict: Path, task_over: dict):
    from fairseq import checkpoint_utils

    from mtkit import plugin

    plugin.register()  # safe loader and numpy_compat patches (fairseq's TokenBlockDataset)
    over = {"data": str(data), "lang_dict": str(lang_dict), **task_over}
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(model_file)], arg_overrides=over)
    model = models[0].eval()
    return model, task


def _logits(model, src: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out, _ = model(src, torch.tensor([src.shape[1]] * src.shape[0]), prev)
    return out


@pytest.mark.slow
def test_extended_tiny_translation_model_is_bit_identical(tiny_model, tmp_path):
    """tiny_model (translation_multi_simple_epoch, __xx__ tokens, no <mask>): same logits, bit for bit."""
    old_langs = el.read_langs(tiny_model.langs_file)
    new_langs = old_langs + ["es_XX", "si_LK"]
    res = el.extend_model_dir(tiny_model.checkpoint, tiny_model.databin / "dict.en_XX.txt", tiny_model.langs_file,
                              new_langs, tmp_path / "ext", init_from={"es_XX": "fr_XX"},
                              spm_model=tiny_model.spm_model)
    assert res.new_size == res.old_size + 2 and res.index_map == list(range(res.old_size))
    m0, t0 = _load_in_process(tiny_model.checkpoint, tiny_model.databin, tiny_model.langs_file, {})
    m1, t1 = _load_in_process(tmp_path / "ext" / "model.pt", tiny_model.databin, tmp_path / "ext" / "langs.txt", {})
    d0, d1 = t0.source_dictionary, t1.source_dictionary
    assert len(d1) == len(d0) + 2 and d1.index("__si_LK__") == len(d0) + 1
    torch.manual_seed(0)
    for src_lang, tgt_lang in (("en_XX", "de_DE"), ("fr_XX", "en_XX")):
        body = torch.randint(4, len(d0) - 3, (3, 9))
        src = torch.cat([torch.full((3, 1), d0.index(f"__{src_lang}__")), body, torch.full((3, 1), 2)], 1)
        prev = torch.cat([torch.full((3, 1), 2), torch.full((3, 1), d0.index(f"__{tgt_lang}__")),
                          torch.randint(4, len(d0) - 3, (3, 5))], 1)
        a, b = _logits(m0, src, prev), _logits(m1, src, prev)
        assert b.shape[-1] == a.shape[-1] + 2
        assert torch.equal(b[..., : a.shape[-1]], a), "old-vocabulary logits changed"
    # es_XX copied from fr_XX
    e = m1.encoder.embed_tokens.weight
    assert torch.equal(e[d1.index("__es_XX__")], e[d1.index("__fr_XX__")])


@pytest.mark.slow
def test_extended_mbart_bit_identical_and_pieces(tiny_mbart, tmp_path):
    """Tiny denoised mBART ([xx_YY] tokens, <mask> last): same logits for old inputs, with a remapped
    <mask>; the --add-pieces variant too (ids shift, outputs do not)."""
    p = tiny_mbart
    pieces = tmp_path / "pieces.txt"
    pieces.write_text("▁kalomi\nzzq\n", encoding="utf-8")
    res = el.extend_model_dir(p["ckpt"], p["dict"], p["old_langs"], NEW, tmp_path / "ext", spm_model=p["spm"])
    resp = el.extend_model_dir(p["ckpt"], p["dict"], p["old_langs"], NEW, tmp_path / "extp", spm_model=p["spm"],
                               add_pieces=pieces)
    assert resp.added_pieces == ["▁kalomi", "zzq"] and resp.new_size == res.new_size + 2
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "extp" / "spm.model"))
    assert "▁kalomi" in sp.encode("kalomi", out_type=str)
    assert (tmp_path / "extp" / "dict.txt").read_text(encoding="utf-8").endswith("▁kalomi 1\nzzq 1\n")

    over = {"langs": ",".join(OLD)}
    m0, t0 = _load_in_process(p["ckpt"], p["mono"], p["old_langs"], over)
    d0 = t0.source_dictionary
    assert d0[len(d0) - 1] == "<mask>" and len(d0) == res.old_size
    torch.manual_seed(0)
    mask = d0.index("<mask>")
    body = torch.randint(4, mask - len(OLD), (2, 10))
    body[:, 3] = mask
    src = torch.cat([torch.zeros(2, 1, dtype=torch.long), body, torch.full((2, 1), d0.index("[de_DE]"))], 1)
    prev = torch.cat([torch.full((2, 1), d0.index("[de_DE]")), torch.randint(4, mask - len(OLD), (2, 6))], 1)
    a = _logits(m0, src, prev)
    for folder, r in (("ext", res), ("extp", resp)):
        mono = p["mono"]
        if r.added_pieces:  # fairseq reads dict.txt from the data folder: give it the extended one
            mono = tmp_path / "mono_p"
            mono.mkdir()
            (mono / "dict.txt").write_bytes((tmp_path / folder / "dict.txt").read_bytes())
            for lang in NEW:
                (mono / lang).symlink_to(p["mono"] / lang)
        m1, t1 = _load_in_process(tmp_path / folder / "model.pt", mono, tmp_path / folder / "langs.txt",
                                  {"langs": ",".join(NEW)})
        d1 = t1.source_dictionary
        assert len(d1) == r.new_size and d1[len(d1) - 1] == "<mask>"
        assert d1.index("[si_LK]") == len(d1) - 2
        idx = torch.tensor(r.index_map)
        b = _logits(m1, idx[src], idx[prev])
        assert torch.equal(b[..., idx], a), f"{folder}: old-vocabulary logits changed"
    # new piece row = mean of the old pieces it was split into
    e = m1.encoder.embed_tokens.weight
    parts = el.decompose_pieces(p["spm"], ["▁kalomi"])["▁kalomi"]
    want = torch.stack([e[d1.index(x)] for x in parts]).mean(0)
    assert len(parts) > 1 and torch.allclose(e[d1.index("▁kalomi")], want)


@pytest.mark.slow
def test_fairseq_train_continues_from_extended(tiny_mbart, tmp_path):
    """--restore-file (continued denoising on all languages, optimizer kept) and --finetune-from-model
    (many-to-many translation_multi_simple_epoch with mbart-style tokens)."""
    p = tiny_mbart
    ext = tmp_path / "ext"
    el.extend_model_dir(p["ckpt"], p["dict"], p["old_langs"], NEW, ext, init="mean")
    out = _run([BIN / "fairseq-train", p["mono"], "--task", "multilingual_denoising", "--langs", ",".join(NEW),
                *DENOISE, *MBART_TINY_ARCH, *COMMON, "--criterion", "cross_entropy", "--max-update", "9",
                "--save-dir", tmp_path / "cont", "--restore-file", ext / "model.pt"])
    assert "Loaded checkpoint" in out and "num_updates 9" in out.replace("num_updates\": \"9", "num_updates 9")
    sd = ckpt_io.load(tmp_path / "cont" / "checkpoint_last.pt")
    assert sd["model"]["encoder.embed_tokens.weight"].shape[0] == len(el.read_dict_symbols(p["dict"])) + 4 + 6
    assert sd["optimizer_history"][-1]["num_updates"] == 9  # 6 restored + 3 new

    pairs = ",".join([f"en_XX-{t}" for t in NEW[1:]] + [f"{t}-en_XX" for t in NEW[1:]])
    out = _run([BIN / "fairseq-train", p["para"], "--task", "translation_multi_simple_epoch",
                "--lang-dict", ext / "langs.txt", "--lang-tok-style", "mbart", "--lang-pairs", pairs,
                "--encoder-langtok", "src", "--decoder-langtok", "--sampling-method", "temperature",
                "--sampling-temperature", "1.5", *MBART_TINY_ARCH, *COMMON,
                "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2", "--max-update", "3",
                "--save-dir", tmp_path / "ft", "--finetune-from-model", ext / "model.pt"])
    assert "loading pretrained model from" in out.lower() or "Loaded checkpoint" in out
    assert (tmp_path / "ft" / "checkpoint_last.pt").exists()


@pytest.mark.slow
def test_cli_end_to_end(tiny_mbart, tmp_path):
    p = tiny_mbart
    out = tmp_path / "cli"
    res = subprocess.run([str(BIN / "mtkit"), "extend-langs", "-c", str(p["ckpt"]), "--dict", str(p["dict"]),
                          "--langs", str(p["old_langs"]), "--new-langs", ",".join(NEW), "--out", str(out),
                          "--init-from", "es_XX=fr_XX", "--spm-model", str(p["spm"])],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (out / "langs.txt").read_text().split() == NEW and (out / "spm.model").exists()
    bad = subprocess.run([str(BIN / "mtkit"), "extend-langs", "-c", str(p["ckpt"]), "--dict", str(p["dict"]),
                          "--langs", "en_XX,de_DE", "--new-langs", ",".join(NEW), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "shorter" in bad.stderr and "Traceback" not in bad.stderr
