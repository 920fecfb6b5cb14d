import json
import os
import subprocess
import sys
from pathlib import Path

MTKIT = [sys.executable, "-m", "mtkit.cli"]


def run(*args, **kw):
    return subprocess.run([*MTKIT, *args], capture_output=True, text=True, **kw)


def test_help_lists_every_design_verb():
    res = run("--help")
    assert res.returncode == 0
    for verb in ("data", "extend-langs", "translate", "evaluate", "export", "doctor", "user-dir"):
        assert f"    {verb}" in res.stdout, verb


def test_help_does_not_import_fairseq():
    code = "import sys; from mtkit import cli; cli.build_parser(); print('fairseq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_user_dir_is_the_importable_plugin_package():
    res = run("user-dir")
    assert res.returncode == 0
    path = Path(res.stdout.strip())
    assert (path / "__init__.py").exists()
    assert path.name == "mtkit"


def test_doctor_reports_versions_and_passes_here():
    res = run("doctor", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    names = {c["name"]: c for c in report["checks"]}
    for required in ("python", "torch", "fairseq", "sentencepiece", "sacrebleu", "cuda", "apex"):
        assert required in names
    assert report["ok"] is True
    assert names["extension fairseq.data.data_utils_fast"]["ok"]


def test_doctor_fails_clearly_when_a_required_part_is_broken(tmp_path):
    # a sitecustomize-free way to break an import: shadow sacrebleu with a module that raises
    (tmp_path / "sacrebleu.py").write_text("raise ImportError('broken on purpose')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    res = run("doctor", env=env)
    assert res.returncode == 1
    assert "sacrebleu" in res.stderr and "broken" in res.stderr
