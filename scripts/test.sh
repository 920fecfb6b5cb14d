#!/usr/bin/env bash
# Set up (with the test extras) and run the test suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m "not slow"     # the quick subset
#
# The browser tests of `mtkit compare`'s HTML report need Debian's chromium and chromium-driver;
# they are installed here with apt-get when missing (as root, or through sudo). Set
# MTKIT_SKIP_BROWSER=1 to skip that step and those tests (e.g. on a machine without apt-get).
# MTKIT_TEST_WORKERS=N runs the test files on N processes (default 2; 0: one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
VENV="${MTKIT_VENV:-.venv}"
# transformers' own fairseq NLLB-MoE converter (last released in 4.46.3): a test reads its key renaming
# from the wheel to check mtkit's MoE checkpoints against it (the wheel is not installed)
ref="$VENV/share/mtkit-test/transformers-4.46.3-py3-none-any.whl"
if [ ! -f "$ref" ]; then
  echo "==> [test] downloading the transformers 4.46.3 wheel (reference NLLB-MoE converter) to $ref"
  "$VENV/bin/python" -m pip download -q --no-deps transformers==4.46.3 -d "$(dirname "$ref")"
fi

if [ "${MTKIT_SKIP_BROWSER:-0}" != 1 ]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "==> [test] installing Debian's chromium and chromium-driver (headless browser test of mtkit compare's report)"
    SUDO=()
    [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=(sudo -n)
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "test.sh: chromium and chromedriver are missing and apt-get is not available; install a headless" \
           "Chromium and its driver (chromium, chromedriver on PATH) or set MTKIT_SKIP_BROWSER=1" >&2
      exit 1
    fi
    if ! { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
           chromium chromium-driver; }; then
      echo "test.sh: could not install chromium chromium-driver with apt-get (needs root or sudo); install them" \
           "or set MTKIT_SKIP_BROWSER=1 to skip the browser tests" >&2
      exit 1
    fi
  fi
  export MTKIT_REQUIRE_BROWSER=1  # the browser tests fail, not skip, when the browser does not start
fi

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Test files run on MTKIT_TEST_WORKERS processes (pytest-xdist; default 2: most tests wait on one
# single-threaded fairseq process, so two keep two cores busy). 0 runs everything in this process.
WORKERS="${MTKIT_TEST_WORKERS:-2}"
par=()
[ "$WORKERS" != 0 ] && par=(-n "$WORKERS" --dist loadfile)
exec "$VENV/bin/python" -m pytest -q --durations=25 --timeout=900 "${par[@]}" "$@"
