#!/usr/bin/env bash
# Builds benchmarks/cuda/kernel_check (GEMM and attention kernels checked against a CPU reference,
# then timed) with nvcc, without CMake or Python. cuBLAS is linked when found: CUBLAS_ROOT (a
# directory with include/cublas_v2.h and lib/libcublas.so*), the toolkit's, or the pip package
# nvidia-cublas. ARCH (default 90) picks the GPU; BIN the binary's path.
#   bash benchmarks/cuda/build_kernel_check.sh && build/kernel_check
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
arch="${ARCH:-90}"
out="${BIN:-$root/build/kernel_check}"
nvcc="${NVCC:-nvcc}"
cuda_home="$(dirname "$(dirname "$(readlink -f "$(command -v "$nvcc")")")")"

cublas_flags=()
find_cublas() {
  local dir
  for dir in "${CUBLAS_ROOT:-}" "$cuda_home" \
      $(python3 -c "import nvidia, os; print(' '.join(p + s for p in nvidia.__path__ for s in ('/cu13', '/cublas')))" 2>/dev/null); do
    [ -n "$dir" ] || continue
    local lib
    for lib in "$dir/lib64" "$dir/lib" "$dir/targets/x86_64-linux/lib"; do
      if [ -f "$dir/include/cublas_v2.h" ] && ls "$lib"/libcublas.so* >/dev/null 2>&1; then
        local so
        so="$(ls "$lib"/libcublas.so* | head -n 1)"
        cublas_flags=(-DTAPEGRAD_WITH_CUBLAS=1 "-I$dir/include" -Xlinker "$so" -Xlinker "-rpath=$lib")
        echo "cuBLAS: $so"
        return 0
      fi
    done
  done
  echo "cuBLAS: not found (own kernels only)"
}
find_cublas

mkdir -p "$(dirname "$out")"
# The Hopper kernels are sm_90a code (wgmma, TMA): compiled on their own, linked in for ARCH=90.
sm90_flags=()
if [ "$arch" = 90 ]; then
  sm90_flags=(-DTAPEGRAD_WITH_SM90=1)
  pids=()
  for src in "$root"/csrc/kernels/cuda/sm90/*.cu; do
    obj="$out.sm90.$(basename "$src" .cu).o"
    "$nvcc" -std=c++17 -O3 -lineinfo -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -I"$root/csrc" \
      -c "$src" -o "$obj" &
    pids+=($!)
    sm90_flags+=("$obj")
  done
  for pid in "${pids[@]}"; do wait "$pid"; done  # set -e: a failed compile stops the script
fi
"$nvcc" -std=c++17 -O3 -lineinfo -arch="sm_$arch" -I"$root/csrc" "${sm90_flags[@]}" \
  "$root/benchmarks/cuda/kernel_check.cu" \
  "$root/csrc/kernels/cuda/gemm.cu" \
  "$root/csrc/kernels/cuda/gemm_cublas.cu" \
  "$root/csrc/kernels/cuda/attention.cu" \
  "$root/csrc/kernels/cuda/attention_tc.cu" \
  "$root/csrc/kernels/cuda/runtime.cu" \
  "$root/csrc/kernels/cuda/allocator.cu" \
  "$root/csrc/kernels/cuda/sync_debug.cpp" \
  "${cublas_flags[@]}" -o "$out"
echo "built $out"
