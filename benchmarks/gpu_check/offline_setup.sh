# setup_offline (sourced by benchmarks/gpu_check/run.sh and benchmarks/seed_claims/gpu/run.sh): make
# fairseq importable on a machine without network. fairseq 0.12.3.1 from the source tarball in
# $DATA/fairseq-src.tar.gz with only its two Cython extensions built (build_fairseq_ext.py; fallbacks:
# extensions prebuilt for cp312 in $DATA/fairseq-ext-cp312/, then a pure-Python data_utils_fast), its
# dependencies from the wheels in $repo/.whl/ (both made by benchmarks/gpu_check/prepare_offline.sh).
# Needs: repo, W (scratch folder), PY (python), DATA, OUT; sets PYTHONPATH, GPU_CHECK_FAIRSEQ_EXT and,
# when the wheels do not install, SETUP_RC.
setup_offline() {  # fairseq 0.12.3.1 from source + Cython extensions only; deps from carried wheels
  local site=$W/site src=$W/fsq
  echo "--- wheels -> $site"
  timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$repo"/.whl/*.whl || { SETUP_RC=$?; echo "!!! wheel install failed (rc=$SETUP_RC)"; }
  mkdir -p "$src" && tar -xzf "$DATA/fairseq-src.tar.gz" -C "$src"
  echo "--- Cython extensions (data_utils_fast, token_block_utils_fast) in $src"
  if [[ "${GPU_CHECK_SKIP_EXT_BUILD:-0}" != 1 ]] &&  # 1: test the fallbacks below
     timeout 240 "$PY" "$repo/benchmarks/gpu_check/build_fairseq_ext.py" "$src" >"$W/ext_build.log" 2>&1; then
    export GPU_CHECK_FAIRSEQ_EXT=cython-built-here
  else
    echo "!!! Cython build failed; last lines:"; tail -15 "$W/ext_build.log"
    if compgen -G "$DATA/fairseq-ext-cp312/*.so" >/dev/null; then  # built by prepare_offline.sh
      cp "$DATA"/fairseq-ext-cp312/*.so "$src/fairseq/data/"; export GPU_CHECK_FAIRSEQ_EXT=prebuilt-cp312
    fi
    if ! PYTHONPATH=$src "$PY" -c "import fairseq.data.data_utils_fast" 2>/dev/null; then
      rm -f "$src"/fairseq/data/data_utils_fast*.so
      cp "$repo/benchmarks/gpu_check/data_utils_fast_fallback.py" "$src/fairseq/data/data_utils_fast.py"
      export GPU_CHECK_FAIRSEQ_EXT=python-fallback
    fi
  fi
  echo "--- fairseq extensions: $GPU_CHECK_FAIRSEQ_EXT"
  cp "$W/ext_build.log" "$OUT/" 2>/dev/null
  export PYTHONPATH=$repo:$src:$site${PYTHONPATH:+:$PYTHONPATH}
}
