"""The README's two fresh-machine commands are where .ci/run and users look for them, and what they
call exists."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _command_after(marker: str) -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    i = lines.index(marker)
    assert i < 15, "the two commands must be in the README's first lines"
    assert lines[i + 1].startswith("```")
    return lines[i + 2]


def test_ci_runs_exactly_the_readme_test_command():
    cmd = _command_after("<!-- test-command -->")
    out = subprocess.run(["awk", '/<!-- test-command -->/{getline; getline; print; exit}', "README.md"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert out == cmd
    assert "awk '/<!-- test-command -->/" in (ROOT / ".ci" / "run").read_text()


def test_readme_commands_reference_existing_scripts():
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        cmd = _command_after(marker)
        scripts = re.findall(r"bash (\S+\.sh)", cmd)
        assert scripts, cmd
        for script in scripts:
            assert (ROOT / script).exists(), f"{marker}: {script} does not exist"
