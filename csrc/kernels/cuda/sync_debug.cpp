// The sync debug mode (runtime.h): host-side state alone, so every build links this one file. A
// CPU-only build keeps the mode too, so that code which sets and restores it runs anywhere.
#include <atomic>

#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

namespace {
std::atomic<int> sync_mode{0};
}  // namespace

void set_sync_debug_mode(int mode) {
  TG_CHECK(mode == 0 || mode == 1, ValueError, "cuda.set_sync_debug_mode: mode must be 0 or 1, got ", mode);
  sync_mode = mode;
}

int sync_debug_mode() { return sync_mode; }

void check_may_wait(const char* what) {
  TG_CHECK(sync_mode == 0, RuntimeError, what,
           ": the host would wait for the GPU here, and the sync debug mode is \"error\"");
}

}  // namespace tg::cuda
