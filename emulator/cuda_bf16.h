// A stand-in for <cuda_bf16.h> on the CPU: __nv_bfloat16 is tapegrad's own bfloat16 (the same
// bits, rounding to nearest even), with the conversion intrinsics the kernels call.
#pragma once
#include "core/bfloat16.h"

using __nv_bfloat16 = tg::bfloat16;
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
inline __nv_bfloat16 __float2bfloat16(float f) { return tg::bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return static_cast<float>(b); }
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) { return {tg::bfloat16(lo), tg::bfloat16(hi)}; }
inline float __low2float(__nv_bfloat162 v) { return static_cast<float>(v.x); }
inline float __high2float(__nv_bfloat162 v) { return static_cast<float>(v.y); }
