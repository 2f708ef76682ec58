// The driver API's tensor maps, emulated on the CPU: what tapegrad's Hopper kernels use of
// <cuda.h> (CUtensorMap and cuTensorMapEncodeTiled, reached through
// cudaGetDriverEntryPointByVersion as on a GPU). The encoder checks what the driver documents it
// checks, so a map a GPU would refuse is refused here too; the map keeps the tensor's shape for
// the emulated TMA copies of hopper_emulator.h.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

using cuuint32_t = uint32_t;
using cuuint64_t = uint64_t;

enum CUresult : int { CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1 };
enum CUtensorMapDataType : int { CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9 };
enum CUtensorMapInterleave : int { CU_TENSOR_MAP_INTERLEAVE_NONE = 0 };
enum CUtensorMapSwizzle : int { CU_TENSOR_MAP_SWIZZLE_NONE = 0, CU_TENSOR_MAP_SWIZZLE_32B, CU_TENSOR_MAP_SWIZZLE_64B,
                                CU_TENSOR_MAP_SWIZZLE_128B };
enum CUtensorMapL2promotion : int { CU_TENSOR_MAP_L2_PROMOTION_NONE = 0, CU_TENSOR_MAP_L2_PROMOTION_L2_64B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B };
enum CUtensorMapFloatOOBfill : int { CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0 };

// 128 opaque bytes, 64-byte aligned, as the driver's.
struct alignas(64) CUtensorMap {
  cuuint64_t opaque[16];
};

namespace emu {

// What an emulated CUtensorMap holds: dims and strides innermost first, strides in bytes
// (stride[0] is the element size), the box, the swizzle span in bytes (0: none).
struct TensorMap {
  const unsigned char* base;
  int rank, element_bytes, swizzle_bytes;
  uint64_t dims[5], strides[5];
  uint32_t box[5];
};
static_assert(sizeof(TensorMap) <= sizeof(CUtensorMap), "an emulated map fits the driver's 128 bytes");

inline TensorMap tensor_map_of(const CUtensorMap* map) {
  TensorMap m;
  std::memcpy(&m, map, sizeof m);
  return m;
}

// cuTensorMapEncodeTiled for the cases tapegrad uses (no interleave, element strides 1), with the
// documented limits: base 16-byte aligned; dims in [1, 2^32]; strides multiples of 16 below
// 2^40; box dims in [1, 256], the inner one a whole number of 16-byte units and, when swizzled,
// at most the swizzle span.
inline CUresult tensor_map_encode_tiled(CUtensorMap* map, CUtensorMapDataType type, cuuint32_t rank, void* base,
                                        const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
                                        const cuuint32_t* element_strides, CUtensorMapInterleave interleave,
                                        CUtensorMapSwizzle swizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill) {
  TensorMap m{};
  m.base = static_cast<const unsigned char*>(base);
  m.rank = static_cast<int>(rank);
  m.element_bytes = type == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 ? 2 : type == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ? 4 : 0;
  m.swizzle_bytes = swizzle == CU_TENSOR_MAP_SWIZZLE_NONE ? 0 : 16 << int(swizzle);
  if (m.element_bytes == 0 || rank < 1 || rank > 5 || interleave != CU_TENSOR_MAP_INTERLEAVE_NONE ||
      reinterpret_cast<uintptr_t>(base) % 16 != 0)
    return CUDA_ERROR_INVALID_VALUE;
  m.strides[0] = m.element_bytes;
  for (cuuint32_t i = 0; i < rank; ++i) {
    if (dims[i] < 1 || dims[i] > (uint64_t(1) << 32) || box[i] < 1 || box[i] > 256 || element_strides[i] != 1)
      return CUDA_ERROR_INVALID_VALUE;
    m.dims[i] = dims[i], m.box[i] = box[i];
    if (i > 0) {
      if (strides[i - 1] % 16 != 0 || strides[i - 1] >= (uint64_t(1) << 40)) return CUDA_ERROR_INVALID_VALUE;
      m.strides[i] = strides[i - 1];
    }
  }
  const uint32_t inner_bytes = box[0] * m.element_bytes;
  if (inner_bytes % 16 != 0 || (m.swizzle_bytes && inner_bytes > uint32_t(m.swizzle_bytes)))
    return CUDA_ERROR_INVALID_VALUE;
  std::memset(map, 0, sizeof *map);
  std::memcpy(map, &m, sizeof m);
  return CUDA_SUCCESS;
}

inline void* driver_entry_point(const char* symbol) {
  if (std::strcmp(symbol, "cuTensorMapEncodeTiled") == 0) return reinterpret_cast<void*>(&tensor_map_encode_tiled);
  return nullptr;
}

}  // namespace emu

// The runtime's way to the driver's entry points (declared by <cuda_runtime.h> on a GPU machine).
enum cudaDriverEntryPointQueryResult { cudaDriverEntryPointSuccess = 0, cudaDriverEntryPointSymbolNotFound = 1 };
constexpr unsigned long long cudaEnableDefault = 0;
inline cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** fn, unsigned, unsigned long long,
                                                    cudaDriverEntryPointQueryResult* found) {
  *fn = emu::driver_entry_point(symbol);
  *found = *fn ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
  return *fn ? cudaSuccess : cudaErrorSymbolNotFound;
}
