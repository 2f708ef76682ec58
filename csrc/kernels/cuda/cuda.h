// CUDA kernels: the .cu twins of kernels/cpu/cpu.h, with the same arguments plus the device
// they run on (first). Pointers are device pointers on that device; every call only queues work
// on the device's stream (runtime.h) and returns. A failed launch raises RuntimeError naming the
// kernel and the CUDA error. no_cuda.cpp gives CPU-only builds stubs that raise.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu.h"

namespace tg::cuda {

using cpu::Operand;
using cpu::RandomKind;
using cpu::ReduceOp;

// ---- elementwise (elementwise.cu, copy.cu) ------------------------------------------------------
void unary(int device, UnaryOp op, const Shape& shape, Operand out, Operand in);
void binary(int device, BinaryOp op, const Shape& shape, Operand out, Operand a, Operand b);
void where(int device, const Shape& shape, Operand out, Operand cond, Operand a, Operand b);
void copy(int device, const Shape& shape, Operand out, Operand in);
void fill(int device, void* out, int64_t n, DType dtype, double value);

// ---- reductions (reduce.cu): the middle axis of a contiguous (outer, r, inner) buffer -----------
void reduce(int device, ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out);

// ---- gathers and scatters (index.cu); indices already checked to lie in range -------------------
// How check_indices reads an index: in [0, size) is valid; a negative one counts from the end
// when `wrap_negative`; one equal to `ignored` (when `has_ignored`) becomes -1.
struct IndexRule {
  int64_t size;
  bool wrap_negative, has_ignored;
  int64_t ignored;
  int64_t fallback;  // what an out-of-range index becomes (reported, runtime.h IndexErrorSlot)
  const char* op;    // for the report: the op (a string literal) and the dim (-1: class targets)
  int64_t dim;
};
// out[i] = in[i] read by `rule`: the device checks device-resident indices, so no op waits for them.
void check_indices(int device, const int64_t* in, int64_t* out, int64_t n, const IndexRule& rule);
void index_select(int device, DType dtype, int64_t outer, int64_t n_in, int64_t inner, const void* in,
                  const int64_t* index, int64_t n_index, void* out);
void index_add(int device, DType dtype, int64_t outer, int64_t n_out, int64_t inner, void* out, const int64_t* index,
               int64_t n_index, const void* src);
void gather(int device, DType dtype, int64_t outer, int64_t n_in, int64_t n_index, int64_t inner, const void* in,
            const int64_t* index, void* out);
void scatter_add(int device, DType dtype, int64_t outer, int64_t n_out, int64_t n_index, int64_t inner, void* out,
                 const int64_t* index, const void* src);
// out[positions[i]] = values[i]; with repeated positions one of the writes wins (unordered).
void put(int device, DType dtype, void* out, const int64_t* positions, const void* values, int64_t n);

// ---- random numbers (random.cu): the same Philox counters as the CPU kernels ---------------------
void random(int device, RandomKind kind, DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset);
void random_int(int device, int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset);
void dropout(int device, DType dtype, int64_t n, const void* x, void* out, void* scale, double p, uint64_t seed,
             uint64_t offset);

// ---- row kernels of the nn functions (nn.cu) ------------------------------------------------------
void softmax_rows(int device, DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log);
void layer_norm_rows(int device, DType dtype, int64_t rows, int64_t cols, const void* in, void* out, void* mean,
                     void* rstd, double eps);
void layer_norm_backward_rows(int device, DType dtype, int64_t rows, int64_t cols, const void* g, const void* xhat,
                              const void* rstd, void* dx);
void cross_entropy_rows(int device, DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                        void* loss, void* lse);
void cross_entropy_backward_rows(int device, DType dtype, int64_t rows, int64_t C, const void* logits,
                                 const int64_t* targets, const void* lse, const void* row_scale, void* dlogits);

// ---- LSTM cell (lstm.cu) ---------------------------------------------------------------------------
void lstm_cell(int device, DType dtype, int64_t batch, int64_t hidden, const void* gates, const void* c, void* h_out,
               void* c_out, void* act_out, void* tanh_c_out);

// ---- multi-tensor optimizer steps (optim.cu): one launch updates every tensor of the list ----------
// All tensors of one call share `dtype` and `device`; buffers the update does not use are null.
struct OptimTensor {
  void* param;
  const void* grad;
  void* state0;     // SGD / RMSprop momentum buffer, Adam exp_avg, RMSprop square_avg
  void* state1;     // Adam exp_avg_sq, RMSprop momentum buffer
  int64_t numel;
  int64_t step;     // Adam: this tensor's step count (bias correction); SGD: 1 on the first step
};
void sgd_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::SGDConfig& cfg);
void adam_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::AdamConfig& cfg);
void rmsprop_update(int device, DType dtype, const std::vector<OptimTensor>& tensors, const cpu::RMSpropConfig& cfg);

}  // namespace tg::cuda
