// CPU-only builds link these stubs in place of the CUDA backend.
#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

bool built() { return false; }
bool is_available() { return false; }
int device_count() { return 0; }
void synchronize() { throw RuntimeError("cuda.synchronize: tapegrad was built without CUDA"); }

}  // namespace tg::cuda
