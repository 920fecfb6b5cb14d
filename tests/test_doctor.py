"""mtkit doctor's import checks: every installed package fairseq or transformers may import is
imported, and a broken one (shadowed here by a module that raises) fails doctor with its name."""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from mtkit import doctor

MTKIT = [sys.executable, "-m", "mtkit.cli"]


def _doctor_json(shadow_dir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(shadow_dir), os.environ.get("PYTHONPATH")])))
    res = subprocess.run([*MTKIT, "doctor", "--json"], capture_output=True, text=True, env=env)
    return res, {c["name"]: c for c in json.loads(res.stdout)["checks"]}


def test_every_installed_package_imports_here():
    """The venv this suite runs in (built by scripts/setup.sh in CI) holds no package that fails to import."""
    checks = doctor._import_checks()
    assert [c.name for c in checks] == ["imports"], [c.detail for c in checks]
    assert checks[0].ok


def test_a_broken_torchaudio_fails_doctor_with_its_name(tmp_path):
    # what pip's CUDA torchaudio does next to a CPU torch
    (tmp_path / "torchaudio").mkdir()
    (tmp_path / "torchaudio" / "__init__.py").write_text(
        "raise OSError('libc10_cuda.so: cannot open shared object file: No such file or directory')\n")
    res, checks = _doctor_json(tmp_path)
    assert res.returncode == 1, res.stdout
    bad = checks["import torchaudio"]
    assert not bad["ok"] and bad["required"]
    assert "OSError: libc10_cuda.so" in bad["detail"]
    assert "fairseq or transformers import it when it is installed" in bad["detail"]
    assert "pip uninstall" in bad["detail"]
    assert "import torchaudio" in res.stderr
    assert "imports" not in checks  # no "all import" summary when one does not


def test_a_broken_declared_dependency_fails_doctor(tmp_path):
    # tabulate: sacrebleu's requirement (sacrebleu is fairseq-fixed's)
    assert "tabulate" in doctor.import_targets()
    (tmp_path / "tabulate.py").write_text("raise ImportError('broken on purpose')\n")
    res, checks = _doctor_json(tmp_path)
    assert res.returncode == 1
    bad = checks["import tabulate"]
    assert not bad["ok"] and "broken on purpose" in bad["detail"]
    assert "installed as a dependency of fairseq-fixed" in bad["detail"]


def test_targets_follow_declared_requirements():
    targets = doctor.import_targets()
    for mod in ("sklearn", "hydra", "omegaconf", "bitarray", "regex"):  # fairseq-fixed's
        assert targets[mod] == "installed as a dependency of fairseq-fixed", mod
    for mod in ("tokenizers", "safetensors", "huggingface_hub"):
        assert targets[mod] == "installed as a dependency of transformers", mod
    assert targets["fairseq"] == targets["transformers"] == "installed"
    assert "MeCab" in targets  # mtkit[ja] asks for sacrebleu[ja]: extras of a requirement are followed
    assert "mtkit" not in targets and "pylab" not in targets


def _imported_names(package_dir: Path, skip: str | None = None) -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.M)
    for path in package_dir.rglob("*.py"):
        if skip and skip in path.parts:
            continue
        names.update(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names


def test_soft_imports_cover_what_fairseq_and_transformers_import():
    """Re-read fairseq's and transformers' import statements: each module they name that some
    installed distribution provides is one doctor imports (declared closure or SOFT_IMPORTS).
    Private modules (``_pytest``) come in with their package."""
    installed = set(md.packages_distributions())
    named: set[str] = set()
    for pkg, skip in (("fairseq", "examples"), ("transformers", None)):
        spec = importlib.util.find_spec(pkg)
        assert spec is not None and spec.submodule_search_locations
        named |= _imported_names(Path(list(spec.submodule_search_locations)[0]), skip)
    mine = {"fairseq", "fairseq_cli", "transformers", "mtkit", "apex"}  # apex: a check of its own
    needed = {n for n in named & installed if not n.startswith("_")} - set(sys.stdlib_module_names) - mine
    missing = needed - set(doctor.import_targets())
    assert not missing, f"add to mtkit.doctor.SOFT_IMPORTS: {sorted(missing)}"
