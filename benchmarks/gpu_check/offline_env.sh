# Sourced by benchmarks/gpu_check/run.sh and benchmarks/gpu_scale/run.sh: setup_offline installs
# fairseq 0.12.3.1 on a machine without network (the device of this workplace) from what
# prepare_offline.sh put in .devdata/ (fairseq's source) and .whl/ (its missing dependencies), builds
# only its two Cython extensions, and puts repo:fairseq-src:wheels on PYTHONPATH.
# Needs: W (scratch folder), PY (python), repo, DATA (.devdata), OUT (where ext_build.log goes).
GPU_CHECK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

setup_offline() {  # fairseq 0.12.3.1 from source + Cython extensions only; deps from carried wheels
  local site=$W/site src=$W/fsq
  echo "--- wheels -> $site"
  timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$repo"/.whl/*.whl || { SETUP_RC=$?; echo "!!! wheel install failed (rc=$SETUP_RC)"; }
  mkdir -p "$src" && tar -xzf "$DATA/fairseq-src.tar.gz" -C "$src"
  echo "--- Cython extensions (data_utils_fast, token_block_utils_fast) in $src"
  if [[ "${GPU_CHECK_SKIP_EXT_BUILD:-0}" != 1 ]] &&  # 1: test the fallbacks below
     timeout 240 "$PY" "$GPU_CHECK_DIR/build_fairseq_ext.py" "$src" >"$W/ext_build.log" 2>&1; then
    export GPU_CHECK_FAIRSEQ_EXT=cython-built-here
  else
    echo "!!! Cython build failed; last lines:"; tail -15 "$W/ext_build.log"
    if compgen -G "$DATA/fairseq-ext-cp312/*.so" >/dev/null; then  # built by prepare_offline.sh
      cp "$DATA"/fairseq-ext-cp312/*.so "$src/fairseq/data/"; export GPU_CHECK_FAIRSEQ_EXT=prebuilt-cp312
    fi
    if ! PYTHONPATH=$src "$PY" -c "import fairseq.data.data_utils_fast" 2>/dev/null; then
      rm -f "$src"/fairseq/data/data_utils_fast*.so
      cp "$GPU_CHECK_DIR/data_utils_fast_fallback.py" "$src/fairseq/data/data_utils_fast.py"
      export GPU_CHECK_FAIRSEQ_EXT=python-fallback
    fi
  fi
  echo "--- fairseq extensions: $GPU_CHECK_FAIRSEQ_EXT"
  cp "$W/ext_build.log" "$OUT/" 2>/dev/null
  export PYTHONPATH=$repo:$src:$site${PYTHONPATH:+:$PYTHONPATH}
}
