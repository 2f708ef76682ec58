#!/usr/bin/env bash
# Everything a GPU session runs, in one go or stage by stage (each stage fits in 10 minutes on a
# 16-core H100 machine; the build stays in build/gpu between stages on the same machine):
#
#   bash benchmarks/gpu_session.sh [all | build | check | hopper | test | sanitize | bench | examples]...
#
#   build     the extension with the CUDA backend for this GPU's architecture only (fast)
#   check     benchmarks/cuda/{gemm,attention,rows}_check --check: the GEMM, fused-attention and row
#             kernels against double-precision CPU references (built by build_checks.sh)
#   hopper    the Hopper attention kernels (wgmma, the default for bfloat16 on sm_90) against the
#             mma.sync ones (TAPEGRAD_CUDA_ATTENTION=mma): attention_check's checks and timings of
#             both, the suite's CUDA attention rows of both (beside PyTorch's flash backend), the
#             attention tests, and those under compute-sanitizer memcheck
#   test      the whole test suite on the GPU machine (CUDA rows run; nothing may skip for lack of a GPU)
#   sanitize  the CUDA tests under compute-sanitizer memcheck (the issue's bar: 0 errors)
#   bench     the suite's CUDA cases (python -m tapegrad.bench --device cuda) beside PyTorch CUDA,
#             JSON into $OUT (or out/)
#   examples  every example with --device cuda (the short modes of the long ones)
#
# Logs and JSON go to $OUT when set (the lent machine's output folder), else out/gpu; the examples'
# checkpoints and plots to $EXAMPLES_OUT (default: examples/ below that).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-out/gpu}
EXAMPLES_OUT=${EXAMPLES_OUT:-$OUT_DIR/examples}  # checkpoints and plots of the examples stage
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
stages=("${@:-all}")
[[ "${stages[0]}" == all ]] && stages=(build check hopper test sanitize bench examples)
status=0

run_stage() {  # name, command...: runs it, tees its log, remembers a failure
  local name=$1
  shift
  echo "=== $name: $*"
  if ! "$@" 2>&1 | tee "$OUT_DIR/$name.log"; then
    echo "=== $name FAILED"
    status=1
  fi
}

build() {
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
  local arch
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
  cmake -S . -B build/gpu -G Ninja -DTAPEGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/python/tapegrad" &&
    ninja -k 0 -C build/gpu &&
    python3 -c "import tapegrad as tg; assert tg.cuda.is_available(), 'no GPU seen'; print('tapegrad sees', tg.cuda.device_count(), 'GPU(s); matmul:', tg.cuda.matmul_backend(), '| cuBLAS built:', tg.cuda.cublas_built())"
}

for stage in "${stages[@]}"; do
  case $stage in
    build) run_stage build build ;;
    check) run_stage checks bash -c "bash benchmarks/cuda/build_checks.sh &&
        build/gemm_check --check && build/attention_check --check && build/rows_check --check" ;;
    # Time limits: kernels that have never run on a GPU may hang (an mbarrier phase that never completes).
    hopper) run_stage hopper bash -c "set -e
        [ -x build/attention_check ] || bash benchmarks/cuda/build_checks.sh
        timeout 300 build/attention_check --check
        timeout 120 build/attention_check --bench
        TAPEGRAD_CUDA_ATTENTION=mma timeout 120 build/attention_check --bench
        timeout 300 python3 -m tapegrad.bench --device cuda --only attention --json '$OUT_DIR/bench_hopper_attention.json'
        TAPEGRAD_CUDA_ATTENTION=mma timeout 300 python3 -m tapegrad.bench --device cuda --only 'attention.*bfloat16'
        timeout 300 python3 -m pytest -q -p no:cacheprovider tests/cuda/test_cuda_kernels.py -k attention
        timeout 300 compute-sanitizer --tool memcheck --error-exitcode 1 --print-limit 20 \
          python3 -m pytest -q -x -p no:cacheprovider tests/cuda/test_cuda_kernels.py -k attention" ;;
    test) run_stage test python3 -m pytest -q -p no:cacheprovider --maxfail=30 --timeout=300 -rfE tests ;;
    # The CUDA tests and the op tables' CUDA rows. The out-of-memory test is left out: the cudaMalloc
    # failure it provokes on purpose is an API error to the sanitizer (the test stage runs it).
    sanitize) run_stage sanitize compute-sanitizer --tool memcheck --error-exitcode 1 --print-limit 20 \
      python3 -m pytest -q -x -p no:cacheprovider tests/cuda tests/test_ops_forward.py tests/test_ops_grad.py tests/test_bfloat16.py \
      -k "cuda and not out_of_memory" ;;
    bench) run_stage bench python3 -m tapegrad.bench --device cuda --json "$OUT_DIR/bench_cuda.json" ;;
    examples) run_stage examples bash -c "set -e
        python3 examples/masked_lm.py --steps 300 --device cuda --out '$EXAMPLES_OUT'
        python3 examples/sentiment_lstm.py --quick --device cuda --out '$EXAMPLES_OUT'
        python3 examples/matmul_sgd.py --device cuda --out '$EXAMPLES_OUT'
        python3 examples/linear_regression.py --device cuda --out '$EXAMPLES_OUT'
        python3 examples/sigmoid_neuron.py --device cuda --out '$EXAMPLES_OUT'" ;;
    *) echo "unknown stage: $stage"; status=1 ;;
  esac
done
exit $status
