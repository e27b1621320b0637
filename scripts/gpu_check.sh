#!/usr/bin/env bash
# GPU check: the one script to run on a device (GPU) machine; results and logs go to $OUT.
#
# Data flow: this working tree + wheels carried in .whl/ -> offline install (project editable,
# no deps) -> `pytest -m gpu` -> `abm-bench --backends numpy cupy` -> $OUT: gpu_check.log,
# env.txt, pytest_gpu.log, bench.log, bench.json, bench.png (6 files; the tool returns <= 8).
#
# Two modes:
#   scripts/gpu_check.sh prepare   HERE, with network: download the pure-Python wheels that the
#                                  device image lacks (mesa, hydra-core, omegaconf, antlr4
#                                  runtime, array-api-strict) into .whl/ (git-ignored through
#                                  .git/info/exclude), at the versions of this venv.
#   scripts/gpu_check.sh           THERE, through the device tool, in one call:
#       run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=570)
#
# Rules (/work/.library/device/README.md): nothing can be downloaded there; never install a
# second cupy (the image has cupy-cuda13x, numpy, h5py, pandas, matplotlib, scipy, pytest,
# pytest-benchmark, threadpoolctl...); 15 min of device time per session, start included, so
# every stage has its own timeout and the whole run stays under ~9 min. If it runs out of
# time, rerun with BENCH_SIZES=small (abm-bench in seconds) or SKIP_PYTEST=1.
set -u
set -o pipefail

if [[ "${1:-}" == "prepare" ]]; then
    cd "$(git rev-parse --show-toplevel)" || exit 1
    mkdir -p .git/info .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    PY=${PYTHON:-python}
    ver() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
    pins=()
    for pkg in mesa hydra-core omegaconf array-api-strict; do pins+=("$pkg==$(ver "$pkg")"); done
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${pins[@]}" || exit 1
    # antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 pins) is published as an sdist only:
    # build its pure-Python wheel here.
    "$PY" -m pip wheel --no-deps -w .whl "antlr4-python3-runtime==$(ver antlr4-python3-runtime)" \
        || exit 1
    ls -l .whl
    du -sh .whl
    exit 0
fi

OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - T0 )) s] $*"; }

stamp "environment -> $OUT/env.txt"
{
    nvidia-smi || true
    "$PY" --version
    "$PY" -c "import cupy; cupy.show_config()" || true
    "$PY" -m pip list 2>/dev/null | grep -i -E '^(cupy|numpy|h5py|pandas|matplotlib|scipy|pytest|threadpoolctl|mesa|hydra|omegaconf)' || true
    nproc
} > "$OUT/env.txt" 2>&1

stamp "install (offline)"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
    echo "no .whl/ carried: mesa/hydra-core/omegaconf must already be there (see 'prepare')"
fi
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
    || { echo "project install failed"; exit 1; }
"$PY" -c "import abm, kernels, abm.conf, mesa, hydra; from abm.backend import cuda_device_count as c; print('CUDA devices:', c())" \
    || { echo "import check failed"; exit 1; }

if [[ -z "${SKIP_PYTEST:-}" ]]; then
    stamp "pytest -m gpu -> $OUT/pytest_gpu.log"
    timeout "${PYTEST_TIMEOUT:-200}" "$PY" -m pytest -m gpu -q -rs --durations=15 \
        --continue-on-collection-errors 2>&1 | tee "$OUT/pytest_gpu.log"
    echo "pytest exit: $?"
fi

stamp "abm-bench --backends numpy cupy -> $OUT/bench.{json,png,log}"
timeout "${BENCH_TIMEOUT:-300}" "$PY" -m abm.cli.bench --backends numpy cupy \
    --sizes "${BENCH_SIZES:-full}" --repeats "${BENCH_REPEATS:-5}" --out "$OUT" 2>&1 \
    | tee "$OUT/bench.log"
echo "abm-bench exit: $?"
stamp "done"
