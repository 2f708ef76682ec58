// Arguments of the fused attention kernels, shared by the CPU kernel and its CUDA twin.
#pragma once
#include <cstdint>

namespace tg {

// Fused attention over N independent (batch, head) problems; the (L x S) score matrix of a
// problem is never stored whole in memory the caller sees.
//   q (N, L, E), k (N, S, E), v (N, S, Ev), out (N, L, Ev) contiguous; lse (N, L) saved for backward.
//   mask: additive (0 / -inf / any float), read at mask + mask_offsets[n] + i * mask_row + j * mask_col
//   (null: none); causal hides j > i; dropout keeps an element when its Philox uniform >= p.
//   On CUDA every pointer (mask_offsets included) is a device pointer.
struct AttentionArgs {
  int64_t N, L, S, E, Ev;
  double scale;
  const void* mask;
  const int64_t* mask_offsets;
  int64_t mask_row, mask_col;
  bool causal;
  double dropout_p;
  uint64_t seed, offset;  // dropout: element (n, i, j) is dropout_uniform(seed, offset, (n * L + i) * S + j)
};

}  // namespace tg
