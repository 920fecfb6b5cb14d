"""scripts/setup.sh and scripts/setup_helper.py: requirement lists, the fairseq wheel's metadata, options."""
from __future__ import annotations

import importlib.metadata as md
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mtkit.requirements import normalize, parse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import setup_helper  # noqa: E402

PKG_INFO = """Metadata-Version: 2.1
Name: fairseq-fixed
Version: 0.12.3.1
Requires-Dist: cffi
Requires-Dist: hydra-core==1.3.2
Requires-Dist: torchaudio>=0.8.0
Requires-Dist: scikit-learn
Requires-Dist: flake8; extra == "dev"
"""


def test_parse_requirements():
    r = parse('sacrebleu[ja, ko]>=2.4 ; extra == "ja"')
    assert (r.name, r.extras, r.extra, r.line) == ("sacrebleu", frozenset({"ja", "ko"}), "ja", "sacrebleu[ja, ko]>=2.4")
    r = parse('Foo_Bar.baz>=1; python_version < "3.12" and extra == "x"')
    assert (r.name, r.extra, r.line) == ("foo-bar-baz", "x", 'Foo_Bar.baz>=1; python_version < "3.12"')
    assert parse("torch").line == "torch" and parse("torch").extra is None
    assert normalize("Scikit_Learn") == "scikit-learn"
    with pytest.raises(ValueError):
        parse("; extra == 'x'")


def test_project_requirements_expand_extras(tmp_path):
    (tmp_path / "pyproject.toml").write_text("""
[project]
name = "demo"
dependencies = ["fairseq-fixed==0.12.3.1", "numpy>=1.24"]
[project.optional-dependencies]
a = ["pytest>=7"]
b = ["ruff>=0.5", "numpy>=1.24"]
all = ["demo[a,b]"]
""")
    reqs = setup_helper.project_requirements(tmp_path / "pyproject.toml", {"all"}, {"fairseq-fixed"})
    assert reqs == ["numpy>=1.24", "pytest>=7", "ruff>=0.5"]
    assert setup_helper.project_requirements(tmp_path / "pyproject.toml", set(), set()) == [
        "fairseq-fixed==0.12.3.1", "numpy>=1.24"]
    with pytest.raises(SystemExit, match="no extras"):
        setup_helper.project_requirements(tmp_path / "pyproject.toml", {"nope"}, set())


def test_this_projects_test_requirements_name_every_extra():
    reqs = setup_helper.project_requirements(REPO / "pyproject.toml", {"test", "ct2", "hf", "dev", "ja", "ko"},
                                             {"fairseq-fixed"})
    names = {parse(r).name for r in reqs}
    assert {"torch", "sentencepiece", "pytest", "ctranslate2", "transformers", "ruff", "sacrebleu"} <= names
    assert "fairseq-fixed" not in names


def test_fairseq_requirements_drop_torchaudio_from_sdist_and_wheel(tmp_path):
    sdist = tmp_path / "fairseq_fixed-0.12.3.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        data = PKG_INFO.encode()
        info = tarfile.TarInfo("fairseq_fixed-0.12.3.1/PKG-INFO")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    wheel = tmp_path / "fairseq_fixed-0.12.3.1-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("fairseq_fixed-0.12.3.1.dist-info/METADATA", PKG_INFO)
    for artifact in (sdist, wheel):
        assert setup_helper.artifact_requirements(artifact) == ["cffi", "hydra-core==1.3.2", "scikit-learn"]


def test_installed_fairseq_build_has_no_torchaudio_requirement():
    """In a venv made by scripts/setup.sh (CI's), fairseq-fixed is the wheel setup_helper built."""
    version = md.version("fairseq-fixed")
    if "+mtkit." not in version:
        pytest.skip(f"fairseq-fixed {version} here was not built by scripts/setup_helper.py")
    assert not any(parse(r).name == "torchaudio" for r in md.requires("fairseq-fixed") or [])
    import torch  # noqa: F401 - fairseq's extensions load after torch

    for ext in setup_helper.TEXT_EXTENSIONS:
        __import__(ext)


def test_setup_sh_options():
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "setup.sh")]).returncode == 0
    res = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "MTKIT_FAIRSEQ_EXTENSIONS" in res.stdout
    res = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), "--bogus"], capture_output=True, text=True)
    assert res.returncode == 2 and "unknown option" in res.stderr
    res = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), "MTKIT_FAIRSEQ_EXTENSIONS": "some"})
    assert res.returncode == 2 and "text or all" in res.stderr
