#!/usr/bin/env python3
"""Helpers for scripts/setup.sh: build fairseq-fixed's wheel for text work, list requirements.

Run with the interpreter of the venv being set up (it needs torch, numpy, Cython and setuptools
there: fairseq's setup.py imports torch). Standard library only, so it works before mtkit is installed.

    python scripts/setup_helper.py fairseq-fetch --wheelhouse DIR --requirements FILE
    python scripts/setup_helper.py fairseq-build --wheelhouse DIR       # prints the wheel's path
    python scripts/setup_helper.py requirements --extras test,hf --exclude fairseq-fixed

Why a wheel of our own instead of ``pip install fairseq-fixed``: fairseq-fixed is an sdist whose
setup.py compiles six extensions one after the other. Three of them include torch's C++ headers
(``libbase``: BASE layers, ``libnat``: non-autoregressive models, ``alignment_train_cpu_binding``:
an example operator) and take most of the build; mtkit's text work needs only ``libbleu``
(fairseq-generate's default scorer) and the Cython ``data_utils_fast`` / ``token_block_utils_fast``.
``fairseq-build`` runs fairseq's unmodified setup.py from the sdist with these settings changed:

- the extension list: ``--extensions text`` (the default) or ``all``;
- parallel compilation: ``build_ext --parallel``, one compiler per extension (torch's ninja
  builder off, as its one build.ninja per folder cannot be shared by parallel builds);
- the ``torchaudio`` requirement dropped: fairseq imports torchaudio only inside its speech tasks,
  and pip's torchaudio is a CUDA build that fails to import next to a CPU torch;
- a local version label (``0.12.3.1+mtkit.text``), so that ``pip list`` shows this build;
  ``fairseq-fixed==0.12.3.1`` still matches it.

The wheel is kept in a wheelhouse and reused by later setups on the machine (the text build does
not depend on torch's ABI; an ``all`` build is keyed by the torch version).
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # mtkit's source tree (not installed yet)
from mtkit.requirements import normalize, parse  # noqa: E402 - standard library only

FAIRSEQ = "fairseq-fixed"
FAIRSEQ_VERSION = "0.12.3.1"
#: the extensions mtkit's text work needs (the rest is opt-in with --extensions all)
TEXT_EXTENSIONS = ("fairseq.libbleu", "fairseq.data.data_utils_fast", "fairseq.data.token_block_utils_fast")
#: requirements of fairseq-fixed that are left out of the wheel's metadata
DROPPED_REQUIREMENTS = ("torchaudio",)
#: bump when the build recipe changes, so wheels built by an older recipe are not reused
RECIPE = "1"


def label(extensions: str) -> str:
    """Local version label of the wheel: the extension set, and torch's version for ``all``."""
    if extensions == "text":
        return "mtkit.text"
    import torch

    return "mtkit.all.torch" + re.sub(r"[^a-z0-9]+", ".", torch.__version__.lower()).strip(".")


def cached_wheel(wheelhouse: Path, extensions: str) -> Path | None:
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    pattern = f"fairseq_fixed-{FAIRSEQ_VERSION}+{label(extensions)}-{tag}-{tag}-*.whl"
    found = sorted(glob.glob(str(wheelhouse / f"recipe{RECIPE}" / pattern)))
    return Path(found[-1]) if found else None


def fetch_sdist(dest: Path) -> Path:
    """Download fairseq-fixed's sdist with pip (so pip's index settings apply)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-build-isolation",
           "--no-binary", FAIRSEQ, f"{FAIRSEQ}=={FAIRSEQ_VERSION}", "-d", str(dest)]
    subprocess.run(cmd, check=True)
    found = sorted(dest.glob(f"fairseq_fixed-{FAIRSEQ_VERSION}.tar.gz")) + sorted(
        dest.glob(f"fairseq-fixed-{FAIRSEQ_VERSION}.tar.gz"))
    if not found:
        raise SystemExit(f"setup_helper: pip download left no {FAIRSEQ} {FAIRSEQ_VERSION} sdist in {dest}")
    return found[0]


def _metadata_requirements(text: str) -> list[str]:
    """Requires-Dist lines without an extra marker, minus :data:`DROPPED_REQUIREMENTS`."""
    out = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = parse(line.split(":", 1)[1])
        if req.extra is None and req.name not in DROPPED_REQUIREMENTS:
            out.append(req.line)
    return out


def artifact_requirements(path: Path) -> list[str]:
    """Runtime requirements of a fairseq sdist (PKG-INFO) or wheel (METADATA)."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            return _metadata_requirements(z.read(name).decode("utf-8"))
    with tarfile.open(path) as t:
        member = next(m for m in t.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        f = t.extractfile(member)
        assert f is not None
        return _metadata_requirements(f.read().decode("utf-8"))


def build_wheel(sdist: Path, wheelhouse: Path, extensions: str, jobs: int,
                only: tuple[str, ...] | None = None) -> Path:
    """Run fairseq's own setup.py from ``sdist`` with the settings above; return the wheel."""
    out = wheelhouse / f"recipe{RECIPE}"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fairseq-build-"))
    with tarfile.open(sdist) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(work, filter="data")
        else:  # Python < 3.10.12 / 3.11.4
            t.extractall(work)
    src = next(p for p in work.iterdir() if p.is_dir())
    os.chdir(src)
    sys.path.insert(0, str(src))
    sys.argv = ["setup.py"]
    import setuptools

    original_setup = setuptools.setup
    tag = label(extensions)
    keep = only if only is not None else (TEXT_EXTENSIONS if extensions == "text" else None)

    def setup(**kw):  # noqa: ANN003 - setuptools.setup's keywords
        names = [e.name for e in kw.get("ext_modules", [])]
        if keep is not None:
            missing = [n for n in keep if n not in names]
            if missing:
                raise SystemExit(f"setup_helper: {sdist.name} does not define the extensions {missing}; "
                                 f"it defines {names}")
            kw["ext_modules"] = [e for e in kw["ext_modules"] if e.name in keep]
        kw["install_requires"] = [r for r in kw.get("install_requires", [])
                                  if parse(r).name not in DROPPED_REQUIREMENTS]
        kw["version"] = f"{kw['version']}+{tag}"
        options = kw.setdefault("options", {})
        options.setdefault("build_ext", {})["parallel"] = jobs
        # torch's BuildExtension writes one build.ninja per build folder: with extensions built in
        # parallel they would overwrite each other's; without ninja each compiler call is separate
        build_ext = kw.get("cmdclass", {}).get("build_ext")
        if build_ext is not None and hasattr(build_ext, "with_options"):
            kw["cmdclass"]["build_ext"] = build_ext.with_options(use_ninja=False)
        print(f"setup_helper: building {FAIRSEQ} {kw['version']} with extensions "
              f"{[e.name for e in kw['ext_modules']]} ({jobs} parallel jobs)", file=sys.stderr)
        return original_setup(**kw)

    setuptools.setup = setup
    os.environ.setdefault("MAX_JOBS", str(jobs))  # torch's ninja builds (only with --extensions all)
    from setuptools import build_meta

    tmp_out = Path(tempfile.mkdtemp(prefix="wheel-", dir=out))
    saved_stdout = os.dup(1)
    try:
        sys.stdout.flush()
        os.dup2(2, 1)  # setup.py and the compilers print to stdout: keep stdout for the wheel's path
        name = build_meta.build_wheel(str(tmp_out))
        final = out / name
        os.replace(tmp_out / name, final)
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
        os.chdir(out)
        shutil.rmtree(tmp_out, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return final


def read_pyproject(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
        from pip._vendor import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def project_requirements(pyproject: Path, extras: set[str], exclude: set[str]) -> list[str]:
    """A project's requirements with ``extras``, as lines for pip, read from its pyproject.toml.

    Self-references (``all = ["mtkit[test,ct2]"]``) are expanded; names in ``exclude`` are left out.
    """
    project = read_pyproject(pyproject)["project"]
    name = normalize(project["name"])
    optional = {e: [parse(r) for r in reqs] for e, reqs in project.get("optional-dependencies", {}).items()}
    unknown = extras - set(optional)
    if unknown:
        raise SystemExit(f"setup_helper: {pyproject} has no extras {sorted(unknown)} (it has {sorted(optional)})")
    selected: set[str] = set()
    pending = set(extras)
    while pending:
        extra = pending.pop()
        selected.add(extra)
        pending |= {e for r in optional[extra] if r.name == name for e in r.extras} - selected
    reqs = [parse(r) for r in project.get("dependencies", [])] + [r for e in sorted(selected) for r in optional[e]]
    out: list[str] = []
    for r in reqs:
        if r.name not in exclude | {name} and r.line not in out:
            out.append(r.line)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fairseq-fetch", help="find a cached wheel or download the sdist; write its requirements")
    b = sub.add_parser("fairseq-build", help="build the wheel from the fetched sdist (no-op when cached)")
    for sp in (f, b):
        sp.add_argument("--wheelhouse", required=True, type=Path)
        sp.add_argument("--extensions", choices=("text", "all"), default="text")
    f.add_argument("--requirements", required=True, type=Path, help="write fairseq's requirements here")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    r = sub.add_parser("requirements", help="requirements of a pyproject.toml with some of its extras")
    r.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    r.add_argument("--extras", default="")
    r.add_argument("--exclude", default="")
    a = p.parse_args(argv)

    if a.cmd == "requirements":
        extras = {e for e in a.extras.split(",") if e}
        exclude = {normalize(e) for e in a.exclude.split(",") if e}
        print("\n".join(project_requirements(a.pyproject, extras, exclude)))
        return 0
    a.wheelhouse = a.wheelhouse.resolve()
    sdist_dir = a.wheelhouse / f"recipe{RECIPE}" / "sdist"
    wheel = cached_wheel(a.wheelhouse, a.extensions)
    if a.cmd == "fairseq-fetch":
        source = wheel or fetch_sdist(sdist_dir)
        a.requirements.write_text("\n".join(artifact_requirements(source)) + "\n", encoding="utf-8")
        print(source)
        return 0
    if wheel is None:
        sdists = sorted(sdist_dir.glob("*.tar.gz"))
        if not sdists:
            raise SystemExit("setup_helper: no sdist fetched yet: run fairseq-fetch first")
        wheel = build_wheel(sdists[0], a.wheelhouse, a.extensions, max(1, a.jobs))
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
