"""benchmarks/seed_claims/extension: the runs it plans (what each arm loads and trains on) and the
verdicts its report draws from paired-bootstrap intervals."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "seed_claims"))
import common  # noqa: E402


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"ext_{name}", REPO / "benchmarks/seed_claims/extension" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


run = _load("run")
report = _load("report")


def _corpus(tmp_path: Path) -> common.Corpus:
    databin = tmp_path / "bin" / "databin"
    databin.mkdir(parents=True)
    (databin / "langs.txt").write_text("en_XX\nfr_XX\nes_XX\ngl_ES\n", encoding="utf-8")
    return common.Corpus(tmp_path)


def _opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_arms_train_from_the_base_or_the_extended_model(tmp_path):
    corpus = _corpus(tmp_path)
    work = tmp_path / "work"
    jobs = {j.name: j for j in run.jobs(corpus, work, run.SCALES["cpu"], (1, 2))}
    assert sorted(jobs) == sorted(f"{a}_s{s}" for a in run.ARMS for s in (1, 2))
    cont, init, rand = jobs["cont_s2"].args, jobs["ext_init_s2"].args, jobs["ext_rand_s2"].args
    # the control never sees the new language: old language list, old directions, the base checkpoint
    assert _opt(cont, "--lang-dict") == str(work / "langs.old.txt")
    assert _opt(cont, "--lang-pairs") == "en_XX-fr_XX,fr_XX-en_XX,en_XX-es_XX,es_XX-en_XX"
    assert _opt(cont, "--finetune-from-model") == str(work / "runs/base/checkpoint_last.pt")
    # the extended arms: extend-langs' language list and model, old + new directions
    assert _opt(init, "--lang-dict") == str(work / "extended/init/langs.txt")
    assert _opt(rand, "--finetune-from-model") == str(work / "extended/rand/model.pt")
    assert _opt(init, "--lang-pairs").split(",")[-2:] == ["en_XX-gl_ES", "gl_ES-en_XX"]
    # equal further training: same updates, schedule, batch and seed in every arm
    strip = {"--lang-dict", "--lang-pairs", "--finetune-from-model"}

    def rest(a: list[str]) -> list[str]:
        return [x for i, x in enumerate(a) if x not in strip and (i == 0 or a[i - 1] not in strip)]

    assert rest(cont) == rest(init) == rest(rand)
    assert _opt(cont, "--max-update") == str(run.SCALES["cpu"]["updates"]) and _opt(cont, "--seed") == "2"


def _results(old: list[tuple[float, float, float]], new: list[tuple[float, float, float]]) -> dict:
    def cmp(delta_low_high: tuple[float, float, float], systems: list[str]) -> dict:
        d, lo, hi = delta_low_high
        diff = {s: {"delta": d, "low": lo, "high": hi, "p_bs": 0.01} for s in systems}
        return {"all": {"differences": {"chrf++": diff, "bleu": diff},
                        "scores": {"chrf++": {s: 30.0 for s in ["ext_init", "ext_rand", *systems]}}}}

    return {"seeds": [1, 2, 3][:len(old)], "new_language": "gl_ES", "init_from": "es_XX",
            "old": {f"s{i}": cmp(x, ["ext_init", "ext_rand", "base"]) for i, x in enumerate(old, 1)},
            "new": {f"s{i}": cmp(x, ["ext_init"]) for i, x in enumerate(new, 1)}}


@pytest.mark.parametrize("old, verdict", [
    ([(-0.3, -0.9, 0.4), (0.1, -0.5, 0.7), (-0.2, -0.8, 0.5)], "held"),  # every interval holds 0
    ([(-2.0, -2.6, -1.4), (-1.5, -2.1, -0.9), (-1.8, -2.5, -1.1)], "did not hold"),
    ([(-0.6, -1.1, -0.1), (0.1, -0.5, 0.7), (-0.2, -0.8, 0.5)], "partly"),
])
def test_old_language_verdict(old, verdict):
    s = report.summary(_results(old, [(1.0, 0.2, 1.8)] * 3))
    assert s["verdict_old_kept"] == verdict
    assert s["old"]["chrf++"]["ext_init_minus_cont"]["mean_delta"] == pytest.approx(sum(x[0] for x in old) / 3, abs=1e-3)
    assert s["verdict_init_from"] == "held" and "gl_ES=es_XX" in s["sentence"]


def test_init_from_verdict_needs_every_seed():
    s = report.summary(_results([(0.0, -0.5, 0.5)] * 3, [(1.0, 0.2, 1.8), (0.4, -0.3, 1.1), (0.9, 0.1, 1.7)]))
    assert s["verdict_init_from"] == "could not tell at this scale"
