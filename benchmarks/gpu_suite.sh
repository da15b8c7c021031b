#!/usr/bin/env bash
# Every hybrax benchmark at GPU-sized settings, in under 8 minutes, JSON under $OUT.
#
# Run it from the repository root on a machine with a GPU:
#     OUT=/tmp/results bash benchmarks/gpu_suite.sh
# On the workplace's lent GPU machines (see the device tool), jax, equinox, diffrax, optax,
# flax, orbax, lineax, optimistix and xarray are preinstalled; hybrax runs from src/ without
# installation. The peer libraries are not there: download their wheels here first
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         -d .whl jax-md jax-cfd exponax pyqg-jax phiflow phiml zarr numcodecs donfig crc32c
# and carry `.whl`: this script installs whatever it finds there. A peer that does not
# import is skipped by its benchmark's failure, not by the suite's.
#
# Each benchmark gets a wall-clock budget (seconds) so the whole suite ends in time; one that
# runs over or fails is reported and the suite goes on. The 2-process/8-device scaling
# benchmark is left out: one GPU has nothing to scale over.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(pwd)/gpu-results}"
mkdir -p "$OUT"
export PYTHONPATH="$(pwd)/src:${PYTHONPATH:-}"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/hybrax-site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/hybrax-site"
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
} | tee "$OUT/device.txt"

run() {  # run NAME BUDGET_SECONDS ARGS...
    local name=$1 budget=$2
    shift 2
    local start=$SECONDS
    echo "=== $name (budget ${budget}s): $*"
    timeout "$budget" python3 "benchmarks/$name.py" --json "$OUT/$name.json" "$@" \
        >"$OUT/$name.log" 2>&1
    local status=$?
    tail -n 40 "$OUT/$name.log"
    echo "=== $name: exit $status after $((SECONDS - start))s"
    echo "$name $status $((SECONDS - start))" >>"$OUT/summary.txt"
}

run lorenz96 40 --no-search                       # 1,024-member ensemble, 10k-step gradient
run fluids 90 --sizes 256,1024,2048              # Kolmogorov flow vs jax-cfd, exponax
run climate 75 --sizes 256,512,1024               # two-layer QG vs pyqg-jax
run md_lj 90 --sizes 20,40 --steps 200 --warmup 100 --search formats --rounds 1  # vs jax-md's fastest format
run incompressible 90 --sizes=128,256,-32         # MAC channel (2-D, and 3-D at 32^3) vs PhiFlow (jax-cfd's channel fails)
run fluids3d 45 --sizes 128,256                # 3-D spectral Taylor-Green vs exponax and the FFT floor
run fluids_walls 60 --sizes 128,256             # cavity and DFG cylinder vs PhiFlow; gradient through 100 steps
run fluids_periodic_fv 75 --sizes=256,1024,-64    # periodic FV Kolmogorov vs jax-cfd's FV (its home ground), PhiFlow
run md_manybody 60                                # EAM, SW, Tersoff forces vs jax-md's fastest format
run memory 50                                     # 10,000-step Kolmogorov gradient at 128^2
run insitu 45                                     # fused vs zarr-separated generate + train
run mixed_precision 90 --quick --no-bf16-training   # bf16 vs f32 networks inside a solver (trains a quick run)
echo "suite done in ${SECONDS}s" | tee -a "$OUT/summary.txt"
