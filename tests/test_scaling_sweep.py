"""recipes/scaling/sweep.py: the D grid, the token accounting from fairseq's log, the held-out filter,
the alignment score, the fit plan and the GPU profile's plan (--dry, no data needed); the --smoke run
(slow) goes through every stage with real fairseq, Ray and mtkit scaling fit."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtkit.errors import InputError, MtkitError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_spec = importlib.util.spec_from_file_location("scaling_sweep", REPO / "recipes" / "scaling" / "sweep.py")
sweep = importlib.util.module_from_spec(_spec)
sys.modules["scaling_sweep"] = sweep  # dataclasses look their module up
_spec.loader.exec_module(sweep)


def test_update_grid_is_geometric_and_inside_one_epoch():
    p = sweep.MINI  # 4 blocks per update, 6 points, 97 % of the smaller condition
    grid = sweep.update_grid(p, blocks=7365)
    assert grid == [55, 110, 220, 440, 880, 1760]
    assert grid[-1] * p.batch_size <= 0.97 * 7365
    assert all(b == 2 * a for a, b in zip(grid, grid[1:]))
    with pytest.raises(InputError, match="too little pretraining text"):
        sweep.update_grid(p, blocks=100)


def test_update_grid_respects_the_token_cap():
    p = sweep.GPU
    grid = sweep.update_grid(p, blocks=10**9)
    assert grid[-1] * p.tokens_per_update <= p.max_pretrain_tokens
    assert grid[-1] % 2 ** (p.points - 1) == 0 and len(grid) == p.points


def test_segment_tokens_sums_per_update_counts():
    records = [("train_inner", {"num_updates": str(n), "wpb": "512", "epoch": "1"}) for n in range(1, 11)]
    records[4] = ("train_inner", {"num_updates": "5", "wpb": "300", "epoch": "1"})  # a short last block
    seg = sweep.segment_tokens([("valid", {"valid_loss": "3"}), *records], 4, 10)
    assert seg == {"from": 4, "to": 10, "tokens": 300 + 5 * 512, "epochs": [1]}
    with pytest.raises(MtkitError, match="no token count for 2 updates"):
        sweep.segment_tokens(records[:8], 0, 10)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")


def test_filter_raw_drops_pairs_with_held_out_sentences(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "test.en_XX-ro_RO.en_XX", ["Open the file", "Quit"])
    _write(raw / "test.en_XX-ro_RO.ro_RO", ["Deschide fișierul", "Ieșire"])
    _write(raw / "valid.en_XX-ro_RO.en_XX", ["Save", "Rename..."])
    _write(raw / "valid.en_XX-ro_RO.ro_RO", ["Salvează", "Redenumește"])
    _write(raw / "train.en_XX-ro_RO.en_XX", ["Close", "Exit", "Print"])
    _write(raw / "train.en_XX-ro_RO.ro_RO", ["Închide", "Ieșire", "Tipărește"])  # "Ieșire" is a test target
    _write(raw / "train.en_XX-de_DE.en_XX", ["Quit ", "Help", "Rename\u2026"])  # a test source, in another direction
    _write(raw / "train.en_XX-de_DE.de_DE", ["Beenden", "Hilfe", "Umbenennen"])  # and one in NFKC form
    report = sweep.filter_raw(raw, tmp_path / "out", ("en_XX", "ro_RO"))
    out = tmp_path / "out"
    assert (out / "train.en_XX-ro_RO.ro_RO").read_text(encoding="utf-8") == "Închide\nTipărește\n"
    assert (out / "train.en_XX-ro_RO.en_XX").read_text(encoding="utf-8") == "Close\nPrint\n"
    assert (out / "train.en_XX-de_DE.de_DE").read_text(encoding="utf-8") == "Hilfe\n"
    assert (out / "test.en_XX-ro_RO.ro_RO").read_bytes() == (raw / "test.en_XX-ro_RO.ro_RO").read_bytes()
    assert report == {"held_out_sentences": 8, "dropped_pairs": {"en_XX-de_DE": 2, "en_XX-ro_RO": 1}}
    capped = sweep.filter_raw(raw, tmp_path / "capped", ("en_XX", "ro_RO"), max_lines=1)
    assert (tmp_path / "capped" / "train.en_XX-ro_RO.ro_RO").read_text(encoding="utf-8") == "Închide\n"
    assert capped["dropped_pairs"]["en_XX-ro_RO"] == 0  # it stopped before "Ieșire"
    with pytest.raises(InputError, match="no valid/test files of en_XX-gl_ES"):
        sweep.filter_raw(raw, tmp_path / "x", ("en_XX", "gl_ES"))


def test_alignment_score_matches_isik_et_al():
    d = ("en_XX", "ro_RO")
    assert sweep.alignment_score({"en_XX": 0.5, "ro_RO": 0.5}, d) == pytest.approx(1.0)
    assert sweep.alignment_score({"en_XX": 1.0}, d) == pytest.approx(0.7)
    assert sweep.alignment_score({"de_DE": 0.6, "fr_XX": 0.4}, d) == 0.0
    stats = sweep.condition_stats({"en_XX": 600, "ro_RO": 300, "de_DE": 380}, sweep.dataclasses.replace(
        sweep.MINI, conditions={"with": ("en_XX", "ro_RO"), "without": ("de_DE",)}))
    assert stats["with"]["shares"] == {"en_XX": pytest.approx(2 / 3), "ro_RO": pytest.approx(1 / 3)}
    assert stats["with"]["blocks"] == 5 + 3 and stats["without"]["blocks"] == 4  # 126 tokens a block


def test_fit_plan_holds_out_the_largest_d(tmp_path):
    plan = sweep.fit_plan(["with", "without"], 6, tmp_path / "fits", tmp_path)
    assert [(f["condition"], f["law"], f["fit_on"]) for f in plan][:4] == [
        ("with", "bleu", 5), ("with", "bleu", 4), ("with", "ce", 5), ("with", "ce", 4)]
    assert len(plan) == 8
    cmd = plan[2]["cmd"]
    assert cmd[:4] == ["mtkit", "scaling", "fit", str(tmp_path / "runs_with.csv")]
    assert cmd[cmd.index("--y") + 1] == "test_ce" and cmd[cmd.index("--fit-on") + 1] == "5"
    assert [f["fit_on"] for f in sweep.fit_plan(["with"], 5, tmp_path, tmp_path)] == [4, 4]  # 3 would be too few


def test_mean_over_seeds_and_runs_csv():
    rows = [{"condition": "with", "seed": s, "pretrain_updates": u, "pretrain_tokens": 512.0 * u, "bleu": b,
             "chrf": 2 * b, "test_ce": 3.0 - b / 10, "valid_ce": 3.0, "trial": f"t{s}{u}"}
            for u, s, b in ((10, 1, 4.0), (10, 2, 6.0), (20, 1, 7.0), (20, 2, 7.0))]
    mean = sweep.mean_over_seeds(rows)
    assert [(r["pretrain_updates"], r["bleu"], r["seeds"]) for r in mean] == [(10, 5.0, 2), (20, 7.0, 2)]
    assert mean[0]["test_ce"] == pytest.approx(2.5)
    table = list(csv.DictReader(sweep.csv_text(mean, sweep.RUN_COLUMNS).splitlines()))
    assert table[1]["pretrain_tokens"] == "10240" and table[0]["bleu"] == "5"


def test_gpu_profile_plan_dry_run(tmp_path, capsys):
    assert sweep.main(["--raw", str(tmp_path / "none"), "--work", str(tmp_path / "w"), "--out",
                       str(tmp_path / "o"), "--profile", "gpu", "--dry"]) == 0
    plan = capsys.readouterr().out
    assert "profile gpu: en_XX->de_DE" in plan and "nominal" in plan
    assert "--task multilingual_denoising_mtkit" in plan and "--no-resampling" in plan
    assert "--train-langs de_DE,en_XX" in plan and "--train-langs es_XX,fr_XX,ro_RO" in plan
    assert "--fp16" in plan and "--batch-size 32 --update-freq 4" in plan
    assert "39 configurations x 4000 updates" in plan  # (2 conditions x 6 points + scratch) x 3 seeds
    assert plan.count("mtkit scaling fit") == 8
    assert not (tmp_path / "w").exists() and not (tmp_path / "o").exists()  # nothing ran, nothing written


def test_too_few_points_is_refused(tmp_path):
    with pytest.raises(InputError, match="at least 5 D points"):
        sweep.profile_from(sweep.parse_args(["--raw", "r", "--work", "w", "--out", "o", "--points", "4"]))


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_smoke_run_every_stage(tmp_path):
    """recipes/scaling/run.sh --smoke: gettext data (3000 pairs a direction), 2 x 5 pretraining segments,
    11 finetuning trials on Ray, test cross-entropy, 8 fits. The numbers mean nothing at this size."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", SCALING_WORK=str(tmp_path / "work"))
    out = tmp_path / "out"
    res = subprocess.run(["bash", str(REPO / "recipes/scaling/run.sh"), "--smoke", "--out", str(out),
                          "--num-cpus", "2"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["leaked_sentences_after_filter"] == 0 and len(doc["grid"]) == 5
    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert len(rows) == 11 and {r["condition"] for r in rows} == {"with", "without", "scratch"}
    for cond in ("with", "without"):
        pts = [r for r in rows if r["condition"] == cond]
        tokens = [float(r["pretrain_tokens"]) for r in pts]
        assert tokens == sorted(tokens) and tokens[0] > 0 and all(0 < float(r["epoch_fraction"]) < 1 for r in pts)
        assert all(float(r["test_ce"]) > 0 and 0 <= float(r["bleu"]) <= 100 for r in pts)
    assert len(doc["fits"]) == 4  # 5 points: fit on 4, both laws, both conditions
    ce = [f for f in doc["fits"] if f["law"] == "ce"]
    assert all("report" in f or "error" in f for f in doc["fits"]) and any("report" in f for f in ce)
    assert (out / "summary.md").read_text().count("| with |") >= 5 and (out / "overview.png").stat().st_size > 0
    again = subprocess.run(["bash", str(REPO / "recipes/scaling/run.sh"), "--smoke", "--out", str(out),
                            "--num-cpus", "2"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "pretrain with: updates" not in again.stderr  # resumed: nothing trained again
