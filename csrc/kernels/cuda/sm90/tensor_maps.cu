// Host side of the Hopper kernels (tensor_maps.h): the device check and the TMA's tensor maps,
// encoded by the driver's cuTensorMapEncodeTiled (reached through the runtime, so tapegrad links
// no driver library).
#include "kernels/cuda/sm90/tensor_maps.h"

#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda::sm90 {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    check(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found),
          "cudaGetDriverEntryPointByVersion (cuTensorMapEncodeTiled)");
    TG_CHECK(found == cudaDriverEntryPointSuccess && fn, RuntimeError, "the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

}  // namespace

bool is_sm90(int device) {
  static std::mutex mutex;
  static std::map<int, bool> known;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = known.find(device);
  if (it != known.end()) return it->second;
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
  return known[device] = major == 9 && minor == 0;
}

CUtensorMap bf16_tensor_map(const void* base, int64_t contiguous, int64_t rows, int64_t ld, int64_t batch,
                            int64_t batch_stride, int box_rows, const char* who) {
  CUtensorMap map;
  const cuuint64_t dims[3] = {cuuint64_t(contiguous), cuuint64_t(rows), cuuint64_t(batch)};
  // An unbatched (or broadcast) tensor is one matrix; its batch stride only has to be valid.
  const int64_t bstride = batch > 1 ? batch_stride : ld * rows;
  const cuuint64_t strides[2] = {cuuint64_t(ld) * 2, cuuint64_t(std::max<int64_t>(bstride, ld)) * 2};
  const cuuint32_t box[3] = {64, cuuint32_t(box_rows), 1};
  const cuuint32_t unit[3] = {1, 1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims,
                                          strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  TG_CHECK(r == CUDA_SUCCESS, RuntimeError, who, ": cuTensorMapEncodeTiled failed (error ", int(r), ") for a ", rows,
           " x ", contiguous, " tensor with leading dimension ", ld);
  return map;
}

}  // namespace tg::cuda::sm90
