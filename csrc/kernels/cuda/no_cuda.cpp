// A build without CUDA links this file in place of the CUDA backend: there is no GPU runtime, and
// asking for a GPU's kernels raises.
#include "core/error.h"
#include "kernels/backend.h"

namespace tg {

GpuRuntime* gpu_runtime() { return nullptr; }

Backend& cuda_backend(int) {
  throw RuntimeError("cuda: tapegrad was built without CUDA (rebuild with -DTAPEGRAD_CUDA=ON)");
}

}  // namespace tg
