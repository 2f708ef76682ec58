// CPU-only builds link these stubs in place of the CUDA backend.
#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

bool built() { return false; }
bool is_available() { return false; }
int device_count() { return 0; }
void synchronize() { throw RuntimeError("cuda.synchronize: tapegrad was built without CUDA"); }
void* stream(int) { throw RuntimeError("cuda: tapegrad was built without CUDA"); }
void check(int err, const char* what) {
  if (err != 0) throw RuntimeError(str(what, ": CUDA error ", err));
}

}  // namespace tg::cuda
