#!/usr/bin/env bash
# Builds the check-and-bench programs of benchmarks/cuda/, one per kernel family, into BUILD
# (default build/), without CMake or Python:
#   gemm_check        the GEMM kernels (gemm.cu, its SIMT / mma.sync / wgmma kernels, cuBLAS)
#   attention_check   fused attention (attention.cu, attention_tc.cu, sm90/attention_wgmma.cu)
#   rows_check        the row kernels of the nn functions (nn.cu)
# Each checks its kernels against a double-precision CPU reference, then times them (see the head
# of each program for its modes). Two builds:
#   nvcc (default)  for a GPU: ARCH (default 90) picks it, and ARCH=90 links the Hopper kernels
#                   (sm90/, compiled for sm_90a). cuBLAS is linked when found: CUBLAS_ROOT (a
#                   directory with include/cublas_v2.h and lib/libcublas.so*), the toolkit's, or
#                   the pip package nvidia-cublas.
#   EMULATOR=1      with CXX (default g++) against emulator/: the same kernel sources run on the
#                   CPU, on an emulated sm_90 device (tests/test_cuda_emulated.py builds them so).
# Every source is compiled once, JOBS (default: the number of cores) at a time.
#   bash benchmarks/cuda/build_checks.sh && build/gemm_check --check
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$root/build}"
arch="${ARCH:-90}"
jobs="${JOBS:-$(nproc)}"
cuda="$root/csrc/kernels/cuda"
checks="$root/benchmarks/cuda"

if [ "${EMULATOR:-0}" = 1 ]; then
  objects="$build/check-objects-emulator"
  cxx="${CXX:-g++}"
  flags=(-std=c++17 -O2 -pthread -Wno-psabi -DTG_WARP_EMULATOR -DTAPEGRAD_WITH_SM90=1 "-I$root/emulator" "-I$root/csrc")
  compile() { "$cxx" "${flags[@]}" -x c++ -c "$1" -o "$2"; }
  link_flags=(-pthread)
  linker="$cxx"
  sm90=1
else
  objects="$build/check-objects"
  nvcc="${NVCC:-nvcc}"
  cuda_home="$(dirname "$(dirname "$(readlink -f "$(command -v "$nvcc")")")")"
  flags=(-std=c++17 -O3 -lineinfo --expt-relaxed-constexpr "-I$root/csrc")
  link_flags=("-arch=sm_$arch")
  find_cublas() {
    local dir lib so
    for dir in "${CUBLAS_ROOT:-}" "$cuda_home" \
        $(python3 -c "import nvidia, os; print(' '.join(p + s for p in nvidia.__path__ for s in ('/cu13', '/cublas')))" 2>/dev/null); do
      [ -n "$dir" ] || continue
      for lib in "$dir/lib64" "$dir/lib" "$dir/targets/x86_64-linux/lib"; do
        if [ -f "$dir/include/cublas_v2.h" ] && ls "$lib"/libcublas.so* >/dev/null 2>&1; then
          so="$(ls "$lib"/libcublas.so* | head -n 1)"
          flags+=(-DTAPEGRAD_WITH_CUBLAS=1 "-I$dir/include")
          link_flags+=(-Xlinker "$so" -Xlinker "-rpath=$lib")
          echo "cuBLAS: $so"
          return 0
        fi
      done
    done
    echo "cuBLAS: not found (own kernels only)"
  }
  find_cublas
  # The Hopper kernels are sm_90a code (wgmma, TMA): compiled on their own, linked in for ARCH=90.
  sm90=0
  if [ "$arch" = 90 ]; then sm90=1; flags+=(-DTAPEGRAD_WITH_SM90=1); fi
  compile() {
    case "$1" in
      */sm90/*) "$nvcc" "${flags[@]}" -gencode=arch=compute_90a,code=sm_90a -c "$1" -o "$2" ;;
      *) "$nvcc" "${flags[@]}" "-arch=sm_$arch" -c "$1" -o "$2" ;;
    esac
  }
  linker="$nvcc"
fi
mkdir -p "$objects"

# What each program links besides its own source.
runtime=("$cuda/runtime.cu" "$cuda/allocator.cu" "$cuda/sync_debug.cpp")
gemm=("$cuda/gemm.cu" "$cuda/gemm_cublas.cu")
hopper=()
if [ "$sm90" = 1 ]; then hopper=("$cuda"/sm90/*.cu); fi
gemm_check=("$checks/gemm_check.cu" "${gemm[@]}" "${hopper[@]}" "${runtime[@]}")
attention_check=("$checks/attention_check.cu" "$cuda/attention.cu" "$cuda/attention_tc.cu" "${gemm[@]}" "${hopper[@]}"
                 "${runtime[@]}")
rows_check=("$checks/rows_check.cu" "$cuda/nn.cu" "${runtime[@]}")

object_of() {  # sm90/gemm_wgmma.cu -> sm90_gemm_wgmma.o: one name per source
  local rel="${1#"$root"/}"
  rel="${rel#csrc/kernels/cuda/}"
  rel="${rel#benchmarks/cuda/}"
  echo "$objects/${rel//\//_}.o"
}

# Compile every source once, at most $jobs at a time; a failed compile leaves a mark.
failed="$objects/failed"
rm -f "$failed"
mapfile -t sources < <(printf '%s\n' "${gemm_check[@]}" "${attention_check[@]}" "${rows_check[@]}" | sort -u)
for src in "${sources[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  ( compile "$src" "$(object_of "$src")" || { echo "failed: $src" >&2; touch "$failed"; } ) &
done
wait
[ ! -e "$failed" ] || { echo "build_checks.sh: a compile failed" >&2; exit 1; }

for program in gemm_check attention_check rows_check; do
  declare -n program_sources="$program"
  objs=()
  for src in "${program_sources[@]}"; do objs+=("$(object_of "$src")"); done
  "$linker" "${objs[@]}" "${link_flags[@]}" -o "$build/$program"
  echo "built $build/$program"
done
