"""recipes/mini/run.sh end to end at a tiny scale (4 languages, a few updates per stage), and the
arithmetic of its report (benchmarks/ML50/mini/report.py).

The numbers are meaningless at this scale; the end-to-end test checks that every stage runs, in order,
through the real tools (mtkit data, fairseq-train, mtkit extend-langs, fairseq-generate, mtkit
evaluate, mtkit translate), that the update budgets are what trained, that results.json carries the
test sizes, the budgets and the wall time, that every training stage has its learning curve, that
nothing is written under benchmarks/ by default, and that a re-run resumes (skips) every stage.
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
sys.path.insert(0, str(REPO / "benchmarks/ML50/mini"))

import report  # noqa: E402  (benchmarks/ML50/mini/report.py)

STAGES = ("data", "pretrain", "extend", "continue", "finetune", "bilingual", "evaluate", "translate", "report")


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_averages_leave_out_small_test_sets_and_keep_them_in_the_table():
    scores = {"a": {"en_XX-fr_XX": {"bleu": 20.0, "chrf++": 40.0, "n_lines": 300},
                    "en_XX-si_LK": {"bleu": 4.0, "chrf++": 10.0, "n_lines": 150},
                    "en_XX-sw_KE": {"bleu": 30.0, "chrf++": 50.0, "n_lines": 5}},
              "b": {"en_XX-si_LK": {"bleu": 1.0, "chrf++": 5.0, "n_lines": 150},
                    "en_XX-sw_KE": {"bleu": 0.0, "chrf++": 1.0, "n_lines": 5}}}
    train = {"fra_Latn": 60000, "sin_Sinh": 1400, "swh_Latn": 44}
    rows = report.direction_rows(scores, train, min_lines=100)
    assert [r["direction"] for r in rows] == ["en_XX-fr_XX", "en_XX-si_LK", "en_XX-sw_KE"]
    assert [r["class"] for r in rows] == ["high", "low", "very low"]
    assert [r["test_lines"] for r in rows] == [300, 150, 5] and [r["in_averages"] for r in rows] == [True, True, False]
    avg = report.averages(rows, ["a", "b"])
    assert avg["left_out"] == ["en_XX-sw_KE"] and avg["shared_directions"] == ["en_XX-si_LK"]
    assert avg["a"] == {"directions": 2, "bleu_all": 12.0, "chrf++_all": 25.0, "bleu_shared": 4.0, "chrf++_shared": 10.0}
    assert avg["b"]["bleu_shared"] == 1.0 and avg["b"]["directions"] == 1
    scores["b"]["en_XX-si_LK"]["n_lines"] = 149
    with pytest.raises(Exception, match="different sizes"):
        report.direction_rows(scores, train, min_lines=100)


def test_mini_stages_names_are_checked_and_stages_need_the_data_first(tmp_path):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", MINI_WORK=str(tmp_path / "mini"), MINI_THREADS="1")
    env.pop("MINI_PUBLISH", None)
    bad = subprocess.run(["bash", str(REPO / "recipes/mini/run.sh")], env=dict(env, MINI_STAGES="data,pretrian"),
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "unknown stage 'pretrian'" in bad.stderr
    early = subprocess.run(["bash", str(REPO / "recipes/mini/run.sh")], env=dict(env, MINI_STAGES="bilingual"),
                           capture_output=True, text=True, cwd=tmp_path)
    assert early.returncode == 2 and "stage bilingual needs the data stage first" in early.stderr
    assert "=== [data] not in MINI_STAGES=bilingual, skipped" in early.stderr
    assert not any((tmp_path / "mini/.done").iterdir())  # nothing marked done


def test_a_stage_another_run_is_doing_is_waited_for_not_run_twice(tmp_path):
    """The two-shell flow: a plain run started while a MINI_STAGES=bilingual run still trains must wait
    for it and skip the stage, not train the same models into the same folders at the same time."""
    import fcntl
    import time

    work = tmp_path / "mini"
    (work / ".done").mkdir(parents=True)
    (work / ".locks").mkdir()
    (work / ".done/data").write_text("2026-01-01T00:00:00Z\n")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", MINI_WORK=str(work), MINI_THREADS="1",
               MINI_STAGES="bilingual")
    env.pop("MINI_PUBLISH", None)
    with open(work / ".locks/bilingual", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # "the other run"
        proc = subprocess.Popen(["bash", str(REPO / "recipes/mini/run.sh")], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in proc.stderr:  # until it says it waits (EOF first: it did not wait)
            seen.append(line)
            if "another run is doing this stage" in line:
                break
        assert "another run is doing this stage" in "".join(seen), "".join(seen)[-3000:]
        time.sleep(1)
        assert proc.poll() is None  # still waiting: not training, not finished
        (work / ".done/bilingual").write_text("2026-01-01T00:00:00Z\n")  # the other run finishes
        fcntl.flock(held, fcntl.LOCK_UN)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "by the run waited for), skipped" in err
    assert not (work / "checkpoints").exists() or not any((work / "checkpoints").iterdir())  # nothing trained


@pytest.mark.slow
@pytest.mark.timeout(1800)  # every stage of the main job: ~14 min on a busy 2-core machine
def test_mini_run_tiny_scale(tmp_path):
    work = tmp_path / "mini"
    before = _tree(REPO / "benchmarks")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", MINI_WORK=str(work), MINI_SCALE="0.01",
               MINI_OLD_LANGS="en_XX,fr_XX,si_LK", MINI_NEW_LANGS="sw_KE", MINI_INIT_FROM="",
               MINI_BILINGUAL="sw_KE", MINI_TEST_SIZE="8", MINI_MAX_TRAIN="300", MINI_SPM_VOCAB="400",
               MINI_THREADS="1", MINI_BEAM="1", MINI_BILINGUAL_PATIENCE="2")
    env.pop("MINI_PUBLISH", None)
    res = subprocess.run(["bash", str(REPO / "recipes/mini/run.sh")], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    for stage in STAGES:
        assert f"=== [{stage}]" in res.stderr and (work / ".done" / stage).exists()
    ext = json.loads((work / "checkpoints/extended/extend_langs.json").read_text())
    assert ext["added_langs"] == ["sw_KE"] and ext["new_size"] == ext["old_size"] + 1

    results = json.loads((work / "report/results.json").read_text())
    m2m, bi = results["systems"]["multilingual_ft"], results["systems"]["bilingual_scratch"]
    assert set(m2m) == {"en_XX-fr_XX", "fr_XX-en_XX", "en_XX-si_LK", "si_LK-en_XX", "en_XX-sw_KE", "sw_KE-en_XX"}
    assert set(bi) == {"en_XX-sw_KE", "sw_KE-en_XX"}
    assert all({"bleu", "chrf++", "test_lines"} <= set(v) for v in m2m.values())
    raw = work / "data/raw"
    for d, v in m2m.items():  # test sizes: the lines of the reference file
        src, tgt = d.split("-")
        ref = raw / f"test.{src}-{tgt}.{tgt}" if src == "en_XX" else raw / f"test.{tgt}-{src}.{tgt}"
        assert v["test_lines"] == len(ref.read_text(encoding="utf-8").splitlines()) == results["directions"][d]["test_lines"]
        assert results["directions"][d]["in_averages"] is False  # every test set here is under 100 lines
    assert results["averages"]["left_out"] and results["averages"]["multilingual_ft"]["directions"] == 0
    # the update budgets (MINI_SCALE 0.01) are what trained; a bilingual model stops at the latest there
    training = results["training"]
    assert training["pretrain"]["updates"] == 4 and training["continue"]["updates"] == 3  # 450, 300 x 0.01
    assert training["finetune"]["updates"] == 12
    assert all(0 < training[f"bilingual_{d}"]["updates"] <= 12 for d in ("en_XX-sw_KE", "sw_KE-en_XX"))
    assert training["finetune"]["best_valid_loss"] is not None
    for stage, t in training.items():
        assert (work / "report" / t["curve"]).stat().st_size > 5000, stage
    assert "finetune=12 updates" in " ".join(f"{k}={v}" for k, v in results["budgets"].items())
    assert results["wall_seconds"] >= sum(results["stage_seconds"].values()) - len(STAGES)
    assert results["versions"]["fairseq"] and results["command"].startswith("MINI_SCALE=0.01")
    md = (work / "report/report.md").read_text()
    assert "left out of the averages" in md and "![finetune](curves/finetune.png)" in md
    assert len((work / "translate.en-fr_XX.txt").read_text().splitlines()) == 5
    cmp = json.loads((work / "eval/compare/compare.json").read_text())  # mtkit compare of the two systems
    assert cmp["baseline"] == "bilingual_scratch" and [s["name"] for s in cmp["systems"]] == ["bilingual_scratch",
                                                                                            "multilingual_ft"]
    assert sorted(cmp["directions"]) == ["en_XX-sw_KE", "sw_KE-en_XX"]
    assert (work / "eval/compare/compare.html").stat().st_size > 5000
    assert _tree(REPO / "benchmarks") == before  # nothing published without MINI_PUBLISH=1

    again = subprocess.run(["bash", str(REPO / "recipes/mini/run.sh")], env=env, capture_output=True, text=True,
                           cwd=tmp_path)
    assert again.returncode == 0 and again.stderr.count("done earlier") == len(STAGES)
