"""benchmarks/ML50/mini/seeds.py: the mBART claim's verdict over seeds from each seed's mtkit compare result."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks/ML50/mini/seeds.py"


def _run(folder: Path, seed: int, diffs: dict[str, tuple[float, float, float]], n_lines: int = 173) -> Path:
    """A published run folder whose compare.json has BLEU differences (delta, low, high) per direction."""
    def block(delta, lo, hi):
        d = {"multilingual_ft": {"delta": delta, "low": lo, "high": hi, "p_bs": 0.01, "p_ar": 0.01}}
        return {"bleu": d, "chrf++": d}
    dirs = {d: {"class": "low", "n_lines": n_lines, "in_averages": True, "differences": block(*v)}
            for d, v in diffs.items()}
    mean = [sum(v[i] for v in diffs.values()) / len(diffs) for i in range(3)]
    cmp = {"baseline": "bilingual_scratch", "systems": [{"name": "bilingual_scratch"}, {"name": "multilingual_ft"}],
           "settings": {"n_bootstrap": 1000, "min_lines": 100}, "directions": dirs,
           "groups": {"all": {"directions": list(diffs), "differences": block(*mean)},
                      "low": {"directions": list(diffs), "differences": block(*mean)},
                      "low x->en": {"directions": [], "differences": block(*mean)}}}
    (folder / "compare").mkdir(parents=True)
    (folder / "compare/compare.json").write_text(json.dumps(cmp))
    (folder / "results.json").write_text(json.dumps({"settings": {"SEED": str(seed)}}))
    return folder


def test_verdicts_over_seeds(tmp_path):
    a = _run(tmp_path / "s1", 1, {"en_XX-si_LK": (-4.0, -7.0, -1.0), "si_LK-en_XX": (2.0, 0.5, 3.5)})
    b = _run(tmp_path / "s2", 2, {"en_XX-si_LK": (-2.0, -4.0, -0.2), "si_LK-en_XX": (-1.0, -3.0, 1.0)})
    res = subprocess.run([sys.executable, str(SCRIPT), str(b), str(a), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "out.json").read_text())
    assert s["seeds"] == [1, 2]
    g = s["groups"]
    assert g["en_XX-si_LK"]["bleu"]["verdict"] == "did not hold"  # both intervals below 0
    assert g["si_LK-en_XX"]["bleu"]["verdict"] == "could not tell"  # one above, one across 0
    assert g["en_XX-si_LK"]["bleu"]["mean"] == -3.0 and round(g["en_XX-si_LK"]["bleu"]["sd"], 4) == 1.4142
    assert [p["seed"] for p in g["si_LK-en_XX"]["bleu"]["per_seed"]] == [1, 2]
    assert "low x->en" not in g and g["low"]["bleu"]["mean"] == -1.25
    assert "| en_XX-si_LK | low | 173 |" in (tmp_path / "out.md").read_text()


def test_runs_with_other_test_sets_are_refused(tmp_path):
    a = _run(tmp_path / "s1", 1, {"en_XX-si_LK": (1.0, 0.5, 1.5)})
    b = _run(tmp_path / "s2", 2, {"en_XX-si_LK": (1.0, 0.5, 1.5)}, n_lines=170)
    res = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "share the test sets" in res.stderr
    assert not (tmp_path / "out.json").exists()
