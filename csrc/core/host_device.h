// HD marks scalar functions that both the CPU and the CUDA kernels call (bfloat16 conversions,
// the functors of kernels/functors.h).
#pragma once

#ifdef __CUDACC__
#define HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// always_inline: the SIMD clones of a kernel (TG_SIMD_CLONES) are compiled for another target
// than these functions, and GCC inlines across targets only when forced.
#define HD inline __attribute__((always_inline))
#else
#define HD inline
#endif
