"""recipes/mini/run.sh end to end at a tiny scale (4 languages, seconds of training per stage).

The numbers are meaningless at this scale; the test checks that every stage runs, in order, through
the real tools (mtkit data, fairseq-train, mtkit extend-langs, fairseq-generate, mtkit evaluate,
mtkit translate), that results.json comes from the run, and that a re-run resumes (skips) every stage.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mini_run_tiny_scale(tmp_path):
    work = tmp_path / "mini"
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", MINI_WORK=str(work), MINI_SCALE="0.01",
               MINI_OLD_LANGS="en_XX,fr_XX,si_LK", MINI_NEW_LANGS="sw_KE", MINI_INIT_FROM="",
               MINI_BILINGUAL="sw_KE", MINI_TEST_SIZE="8", MINI_MAX_TRAIN="300", MINI_SPM_VOCAB="400",
               MINI_THREADS="1", MINI_PUBLISH="0", MINI_BEAM="1")
    res = subprocess.run(["bash", str(REPO / "recipes/mini/run.sh")], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    for stage in ("data", "pretrain", "extend", "continue", "finetune", "bilingual", "evaluate", "translate"):
        assert f"=== [{stage}]" in res.stderr and (work / ".done" / stage).exists()
    ext = json.loads((work / "checkpoints/extended/extend_langs.json").read_text())
    assert ext["added_langs"] == ["sw_KE"] and ext["new_size"] == ext["old_size"] + 1
    results = json.loads((work / "report/results.json").read_text())
    m2m, bi = results["systems"]["multilingual_ft"], results["systems"]["bilingual_scratch"]
    assert set(m2m) == {"en_XX-fr_XX", "fr_XX-en_XX", "en_XX-si_LK", "si_LK-en_XX", "en_XX-sw_KE", "sw_KE-en_XX"}
    assert set(bi) == {"en_XX-sw_KE", "sw_KE-en_XX"}
    assert all({"bleu", "chrf++"} <= set(v) for v in m2m.values())
    assert results["versions"]["fairseq"] and results["command"].startswith("MINI_SCALE=0.01")
    assert (work / "report/report.md").exists() and (work / "report/compare_bleu.png").stat().st_size > 1000
    assert len((work / "translate.en-fr_XX.txt").read_text().splitlines()) == 5
    again = subprocess.run(["bash", str(REPO / "recipes/mini/run.sh")], env=env, capture_output=True, text=True,
                           cwd=tmp_path)
    assert again.returncode == 0 and again.stderr.count("done earlier") == 8
