#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer and UndefinedBehaviorSanitizer (issue 17).
#
#   bash tests/sanitize.sh                          # the whole CPU suite (about an hour on 2 cores)
#   bash tests/sanitize.sh tests/test_errors.py -x  # any pytest arguments (CI runs a fast subset)
#   TAPEGRAD_SANITIZE=thread bash tests/sanitize.sh tests/test_threads.py   # ThreadSanitizer
#
# Builds tapegrad with TAPEGRAD_SANITIZE (default address,undefined; CPU only, -O1 -g, no LTO) into its
# own virtual environment (.venv-sanitize-<sanitizers>; build/sanitize-<sanitizers> keeps the
# objects and ccache, when installed, the compiles), then runs pytest in it with the sanitizer's
# runtime preloaded: the interpreter is not built with it, so the runtime must be the first
# library loaded. An ASan or UBSan report aborts the run; TSan reports are printed and counted.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitizers=${TAPEGRAD_SANITIZE:-address,undefined}
tag=${sanitizers//,/-}
venv=${TAPEGRAD_SANITIZE_VENV:-.venv-sanitize-$tag}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet scikit-build-core "pybind11==3.1.0" numpy pytest hypothesis safetensors
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-Ccmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths relative to the clone, and -g's directory left out of the hash: another clone (CI's)
  # reuses these compiles.
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
fi
TAPEGRAD_CUDA=OFF TAPEGRAD_SANITIZE=$sanitizers python -m pip install --quiet --no-build-isolation --no-deps \
  --force-reinstall . -Cbuild-dir="build/sanitize-$tag" -Ccmake.build-type=RelWithDebInfo "${launcher[@]}"

case $sanitizers in
  *thread*) runtime_name=libtsan.so ;;
  *address*) runtime_name=libasan.so ;;
  *) runtime_name=libubsan.so ;;
esac
runtime=$("${CXX:-c++}" -print-file-name=$runtime_name)
[ -f "$runtime" ] || { echo "sanitize.sh: $runtime_name not found (install the compiler's sanitizer runtime)"; exit 2; }

# detect_leaks=0: CPython keeps its objects alive at exit by design, so leak reports are noise.
# allocator_may_return_null=1: a huge allocation returns null (tapegrad raises MemoryError, which
# the tests check) instead of ASan aborting.
# max_allocation_size_mb: allocations past 8 GB fail as they would on a small machine (the fuzzer's
# workers cannot cap their address space under a sanitizer).
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:print_summary=1:max_allocation_size_mb=8192
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# TSan: the OpenMP runtime is not instrumented, so its workers would be reported falsely; one
# kernel thread per Python thread leaves the races between Python threads, which are the question.
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1:allocator_may_return_null=1:max_allocation_size_mb=8192
[[ $sanitizers == *thread* ]] && export OMP_NUM_THREADS=1
# libstdc++ is preloaded too: the interpreter does not link it, and the sanitizer's interceptor of
# C++ throws must find the real one when it starts, or the first exception aborts.
preload="$runtime:$("${CXX:-c++}" -print-file-name=libstdc++.so)"
echo "sanitize.sh: pytest ${*:-tests} with $preload preloaded"
LD_PRELOAD="$preload" python -m pytest -p no:cacheprovider "${@:-tests}"
