#!/usr/bin/env bash
# Build what benchmarks/gpu_check/run.sh needs on a CUDA machine WITHOUT network access
# (the device of this workplace): Python 3.12 wheels of fairseq's missing dependencies in .whl/,
# and fairseq's source plus the test models and data in .devdata/. Both folders are git-ignored
# (.git/info/exclude) and travel with `carry`. Run once, here, from anywhere:
#
#   benchmarks/gpu_check/prepare_offline.sh
#
# Environment: PIP [.venv/bin/pip], PY312 [/tmp/py312/bin/python, optional, see 2b], FAIRSEQ_SDIST [/tmp/fsdl/fairseq_fixed-0.12.3.1.tar.gz, else
# pip download], TINY [/tmp/mtcache/tiny: tests/tiny.py's model, MTKIT_TEST_CACHE], MINI_MODEL
# [work/mini/model-m2m], MINI_SRC / MINI_REF [/tmp/tsb/a.en_XX, /tmp/tsb/a.fr_XX], GPU_CHECK_MODELS [1; 0: only
# the wheels and fairseq's source (steps 1-2b), what benchmarks/seed_claims/gpu/run.sh needs].
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
PIP=${PIP:-$repo/.venv/bin/pip}
FAIRSEQ_SDIST=${FAIRSEQ_SDIST:-/tmp/fsdl/fairseq_fixed-0.12.3.1.tar.gz}
TINY=${TINY:-/tmp/mtcache/tiny}
MINI_MODEL=${MINI_MODEL:-$repo/work/mini/model-m2m}
MINI_SRC=${MINI_SRC:-/tmp/tsb/a.en_XX}
MINI_REF=${MINI_REF:-/tmp/tsb/a.fr_XX}

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for p in /.whl/ /.devdata/; do grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"; done

# 1. wheels for CPython 3.12 on x86-64 Linux (versions = fairseq-fixed 0.12.3.1's pins)
rm -rf .whl && mkdir .whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
"$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d .whl hydra-core==1.3.2 omegaconf==2.3.0 bitarray==3.8.0
# antlr4-python3-runtime is an sdist only (pure Python): build a py3-none-any wheel
"$PIP" wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3

# 2. fairseq source without fairseq/examples (17 MB, never imported by the paths we run)
rm -rf .devdata && mkdir -p .devdata
if [[ ! -f "$FAIRSEQ_SDIST" ]]; then
  "$PIP" download -q --no-deps --no-binary :all: -d /tmp/fsdl fairseq-fixed==0.12.3.1
fi
tmp=$(mktemp -d)
tar -xzf "$FAIRSEQ_SDIST" -C "$tmp"
src=$(echo "$tmp"/fairseq*-0.12.3.1)
rm -rf "$src/fairseq/examples"
find "$src" -name '*.so' -delete
tar -czf .devdata/fairseq-src.tar.gz -C "$src" fairseq fairseq_cli
rm -rf "$tmp"

# 2b. optional fallback: the two extensions prebuilt for CPython 3.12 (used on the device only if its own
# Cython build fails, e.g. no Python headers there). PY312: a python3.12 with Cython, numpy>=2, setuptools.
PY312=${PY312:-/tmp/py312/bin/python}
if [[ -x "$PY312" ]] && "$PY312" -c "import Cython, numpy, setuptools" 2>/dev/null; then
  tmp=$(mktemp -d)
  tar -xzf .devdata/fairseq-src.tar.gz -C "$tmp"
  if "$PY312" benchmarks/gpu_check/build_fairseq_ext.py "$tmp" >"$tmp/build.log" 2>&1; then
    mkdir -p .devdata/fairseq-ext-cp312 && cp "$tmp"/fairseq/data/*.cpython-312-*.so .devdata/fairseq-ext-cp312/
    strip --strip-debug .devdata/fairseq-ext-cp312/*.so 2>/dev/null || true
  else
    echo "prebuilding the cp312 extensions failed (optional): $tmp/build.log"
  fi
  rm -rf "$tmp"
else
  echo "no usable PY312 ($PY312): skipping the prebuilt cp312 extensions (optional fallback)"
fi

if [[ "${GPU_CHECK_MODELS:-1}" == 1 ]]; then
# 3. tiny test model (tests/tiny.py) as a model folder, its databin, and en_XX->fr_XX text
mkdir -p .devdata/tiny .devdata/mini
cp "$TINY/checkpoints/checkpoint_last.pt" .devdata/tiny/checkpoint.pt
cp "$TINY"/{dict.txt,spm.model,langs.txt} .devdata/tiny/
cp -r "$TINY/databin" .devdata/tiny/databin
for s in test valid train; do
  cat "$TINY/raw/$s.en_XX-fr_XX.en_XX" >>.devdata/tiny/src.en_XX
  cat "$TINY/raw/$s.en_XX-fr_XX.fr_XX" >>.devdata/tiny/ref.fr_XX
done

# 4. ML50-mini model (en_XX->fr_XX) and 2,000 test lines with references
cp "$MINI_MODEL"/{checkpoint.pt,dict.txt,spm.model,langs.txt} .devdata/mini/
cp "$MINI_SRC" .devdata/mini/src.en_XX
cp "$MINI_REF" .devdata/mini/ref.fr_XX
fi

du -sh .whl .devdata
