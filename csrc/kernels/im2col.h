// The patches of a 2-d convolution (unfold / im2col) and their adjoint (fold / col2im), as index
// arithmetic shared by the CPU kernels and their CUDA twins: one element of the result per call.
//
//   x     (N, C, H, W), contiguous
//   cols  (N, C * kh * kw, L), L = Ho * Wo, at any strides (col_n, col_c, col_l) (unfold writes it
//         contiguous; fold reads the gradient in whatever layout it arrives)
//   cols[n, (c kh + i) kw + j, ho Wo + wo] = x[n, c, ho sh - ph + i dh, wo sw - pw + j dw]
//                                            (pad_value outside the image)
//   Ho = (H + 2 ph - dh (kh - 1) - 1) / sh + 1, and Wo alike
//
// fold is the adjoint: every patch entry adds back into the pixel it was read from,
//   x[n, c, h, w] = sum over (i, j) with h = ho sh - ph + i dh and w = wo sw - pw + j dw of cols[...]
// computed per pixel (a gather over its kh kw taps: no atomics, the same order everywhere).
#pragma once
#include <cstdint>

#include "core/host_device.h"

namespace tg {

struct Im2ColArgs {
  int64_t N, C, H, W;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t Ho, Wo;
  int64_t col_n, col_c, col_l;  // strides of cols (N, C kh kw, L), in elements
  double pad_value;             // what unfold reads outside the image (0; -inf for max pooling)

  HD int64_t rows() const { return C * kh * kw; }
  HD int64_t positions() const { return Ho * Wo; }
};

// The offset in x of patch row ck at position l of image n, or -1 where it falls in the padding.
HD int64_t im2col_source(const Im2ColArgs& a, int64_t n, int64_t ck, int64_t l) {
  const int64_t j = ck % a.kw, i = (ck / a.kw) % a.kh, c = ck / (a.kw * a.kh);
  const int64_t h = (l / a.Wo) * a.sh - a.ph + i * a.dh, w = (l % a.Wo) * a.sw - a.pw + j * a.dw;
  if (h < 0 || h >= a.H || w < 0 || w >= a.W) return -1;
  return ((n * a.C + c) * a.H + h) * a.W + w;
}

// x[n, c, h, w] of fold: the sum of the patch entries read from that pixel (pixel = its flat offset).
template <class T, class Acc>
HD Acc col2im_pixel(const Im2ColArgs& a, const T* cols, int64_t pixel) {
  const int64_t w = pixel % a.W, h = (pixel / a.W) % a.H, c = (pixel / (a.W * a.H)) % a.C, n = pixel / (a.W * a.H * a.C);
  Acc sum = 0;
  for (int64_t i = 0; i < a.kh; ++i) {
    const int64_t hs = h + a.ph - i * a.dh;  // = ho sh
    if (hs < 0 || hs % a.sh != 0 || hs / a.sh >= a.Ho) continue;
    for (int64_t j = 0; j < a.kw; ++j) {
      const int64_t ws = w + a.pw - j * a.dw;
      if (ws < 0 || ws % a.sw != 0 || ws / a.sw >= a.Wo) continue;
      const int64_t ck = (c * a.kh + i) * a.kw + j, l = (hs / a.sh) * a.Wo + ws / a.sw;
      sum += static_cast<Acc>(cols[n * a.col_n + ck * a.col_c + l * a.col_l]);
    }
  }
  return sum;
}

}  // namespace tg
