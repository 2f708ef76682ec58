// unfold (im2col) and fold (col2im) on the CPU: the geometry is kernels/im2col.h. Both walk whole
// rows of the image, so the inner loops carry no division; threads split the patch rows (unfold)
// or the image planes (fold, which then adds into one plane per thread: no races, and each pixel
// sums its taps in the (i, j) order of the CUDA kernel's gather).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/im2col.h"

namespace tg::cpu {

void CpuBackend::im2col(DType dtype, const Im2ColArgs& a, const void* x, void* cols) {
  TG_DISPATCH_STORAGE(dtype, "unfold", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(cols);
    const T pad = static_cast<T>(static_cast<float>(a.pad_value));
    const int64_t rows = a.rows(), L = a.positions();
    parallel_for(a.N * rows, grain_for(L), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / rows, ck = t % rows;
        const int64_t j = ck % a.kw, i = (ck / a.kw) % a.kh, c = ck / (a.kw * a.kh);
        T* row = out + n * a.col_n + ck * a.col_c;
        for (int64_t ho = 0; ho < a.Ho; ++ho) {
          T* dst = row + ho * a.Wo * a.col_l;
          const int64_t h = ho * a.sh - a.ph + i * a.dh;
          if (h < 0 || h >= a.H) {
            for (int64_t wo = 0; wo < a.Wo; ++wo) dst[wo * a.col_l] = pad;
            continue;
          }
          const T* src = in + ((n * a.C + c) * a.H + h) * a.W;
          for (int64_t wo = 0; wo < a.Wo; ++wo) {
            const int64_t w = wo * a.sw - a.pw + j * a.dw;
            dst[wo * a.col_l] = w >= 0 && w < a.W ? src[w] : pad;
          }
        }
      }
    });
  });
}

void CpuBackend::col2im(DType dtype, const Im2ColArgs& a, const void* cols, void* x) {
  TG_DISPATCH_FLOAT(dtype, "fold", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(cols);
    T* out = static_cast<T*>(x);
    const int64_t plane = a.H * a.W;
    parallel_for(a.N * a.C, grain_for(plane * a.kh * a.kw), [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const int64_t n = p / a.C, c = p % a.C;
        T* dst = out + p * plane;
        for (int64_t k = 0; k < plane; ++k) dst[k] = T(0);
        for (int64_t i = 0; i < a.kh; ++i)
          for (int64_t j = 0; j < a.kw; ++j) {
            const T* src = in + n * a.col_n + ((c * a.kh + i) * a.kw + j) * a.col_c;
            for (int64_t ho = 0; ho < a.Ho; ++ho) {
              const int64_t h = ho * a.sh - a.ph + i * a.dh;
              if (h < 0 || h >= a.H) continue;
              T* dst_row = dst + h * a.W;
              const T* src_row = src + ho * a.Wo * a.col_l;
              for (int64_t wo = 0; wo < a.Wo; ++wo) {
                const int64_t w = wo * a.sw - a.pw + j * a.dw;
                if (w >= 0 && w < a.W) dst_row[w] += src_row[wo * a.col_l];
              }
            }
          }
      }
    });
  });
}

}  // namespace tg::cpu
